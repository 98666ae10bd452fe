"""Atomic file writes for model, scaler and fold artifacts, reports and figures.

Every artifact is written to a temporary name in the destination directory and renamed on success
(`os.replace` is atomic on one filesystem), so a crash leaves either the old file or the new one, never a
half-written file. A set of files that must match one another (a model's weights, its config, scaler and production
metadata; a report's documents, figures and index) is published as one generation: written into a new directory and
made current by one atomic rename of a pointer file, so a crash leaves the previous set current and whole, never a mix
of two. No pickle anywhere: JSON here, torch ``state_dict`` and skops in the models.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (dt.date, dt.datetime)):
        return obj.isoformat()
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


def unwritable(directory: Path) -> str | None:
    """Why ``directory`` cannot hold the platform's files, in a few words; None when it can. Nothing is created: the
    nearest existing ancestor is probed with a temporary file, removed at once."""
    existing = next(p for p in [directory.absolute(), *directory.absolute().parents] if p.exists())
    if not existing.is_dir():
        return f"{existing} is not a directory"
    try:
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".write-test-"):
            pass
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    return None


def to_jsonable(obj: Any) -> Any:
    """Round-trip ``obj`` through JSON (dates → ISO strings, numpy scalars → Python numbers)."""
    return json.loads(json.dumps(obj, default=_json_default))


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` when the block succeeds.

    On an exception the temporary file is removed and ``path`` is left untouched.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    os.chmod(tmp, 0o644)  # mkstemp creates 0600; artifacts are ordinary readable files
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def write_json_atomic(path: str | os.PathLike[str], obj: Any, *, indent: int = 2) -> Path:
    """Write ``obj`` as JSON (dates as ISO strings, numpy types as numbers) atomically; return the path."""
    target = Path(path)
    text = json.dumps(obj, default=_json_default, indent=indent, sort_keys=False, allow_nan=True)
    with atomic_path(target) as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
    return target


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` (a PNG, say) atomically and durably; return the path."""
    target = Path(path)
    with atomic_path(target) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    return target


def discard(path: str | os.PathLike[str]) -> bool:
    """Remove a file the platform no longer reads (a layout since replaced); whether there was one."""
    try:
        Path(path).unlink()
    except FileNotFoundError:
        return False
    return True


REMEDY = "re-materialize the asset that writes it"  # what a refusal of a damaged artifact file ends with


def read_json(path: str | os.PathLike[str]) -> Any:
    """The JSON document at ``path``; one sentence naming the file when it is not whole JSON (truncated or edited)."""
    return parse_json(Path(path).read_bytes(), path)


def parse_json(data: bytes, path: str | os.PathLike[str], remedy: str = REMEDY) -> Any:
    """``data``, the bytes read from ``path``, as JSON; one sentence naming the file when they are not whole JSON,
    ending with ``remedy`` (what to re-materialize)."""
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not whole JSON (not UTF-8 text): it was truncated or edited since it was "
                         f"written; {remedy}.") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not whole JSON ({exc.msg} at line {exc.lineno}): it was truncated or edited "
                         f"since it was written; {remedy}.") from None


GENERATION_POINTER = "current.json"  # names the current generation directory, e.g. {"generation": "generation-1a2b"}
GENERATION_PREFIX = "generation-"


# the generations a directory keeps: its current one and the two made current before it (a report is kilobytes, a
# production model a few megabytes): the UI's links to the last three materializations still open
GENERATIONS_KEPT = 3


def new_generation_name() -> str:
    """A fresh name for a generation directory (random: no two saves share one)."""
    return f"{GENERATION_PREFIX}{secrets.token_hex(6)}"


def _generation_name_refusal(name: Any, where: str, directory: Path) -> str | None:
    if isinstance(name, str) and name.startswith(GENERATION_PREFIX) and "/" not in name:
        return None
    return f"{where} names {name!r}, not a generation directory of {directory}"


def publish_generation(directory: str | os.PathLike[str], write: Callable[[Path], list[Path]], *,
                       name: str | None = None, extra: Mapping[str, Any] | None = None) -> list[Path]:
    """Write a new generation of ``directory``'s files with ``write(new_generation_dir)`` and make it current with one
    atomic rename of ``directory/current.json``; then remove the generations older than the last ``GENERATIONS_KEPT``
    made current (and any a killed writer left, never current).
    ``name`` (from :func:`new_generation_name`, not yet taken) names the new generation's directory when the caller
    must know its files' paths before they are written; otherwise a fresh one is made. ``extra`` maps file names to
    JSON documents a caller adds to the generation after ``write``'s files (the artifact IO manager's ``artifact.json``,
    which class loads them): current with the rest or not at all; a file of that name directly in ``directory`` (the
    layout before generations) is superseded and removed. Returns the files written, the pointer last."""
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    if name is None:
        generation = Path(tempfile.mkdtemp(prefix=GENERATION_PREFIX, dir=target))
    else:
        refusal = _generation_name_refusal(name, "publish_generation", target)
        if refusal:
            raise ValueError(refusal)
        generation = target / name
        generation.mkdir()  # FileExistsError when taken: never write into a generation that may be current
    os.chmod(generation, 0o755)  # mkdtemp creates 0700; artifacts are ordinary readable files
    try:
        files = write(generation)
        for file_name, document in (extra or {}).items():
            if "/" in file_name or file_name == GENERATION_POINTER or (generation / file_name).exists():
                raise ValueError(f"publish_generation: {file_name!r} is not a free file name of the generation.")
            files.append(write_json_atomic(generation / file_name, document))
    except BaseException:
        shutil.rmtree(generation, ignore_errors=True)
        raise
    kept = [generation.name, *kept_generations(target)][:GENERATIONS_KEPT]
    pointer = write_json_atomic(target / GENERATION_POINTER, {"generation": generation.name, "previous": kept[1:]})
    for old in target.glob(f"{GENERATION_PREFIX}*"):  # older ones, and any a killed writer left (never current)
        if old.name not in kept and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
    for file_name in extra or {}:  # superseded by the generation's own copy
        with contextlib.suppress(FileNotFoundError):
            (target / file_name).unlink()
    return [*files, pointer]


def kept_generations(directory: str | os.PathLike[str]) -> list[str]:
    """The generations of ``directory`` that are kept, newest first: the current one, then those made current before
    it — what the UI's links to its last materializations, and a reader that resolved the pointer just before the
    latest save, still find. An unreadable pointer keeps none."""
    pointer = Path(directory) / GENERATION_POINTER
    try:
        document = read_json(pointer)
    except (OSError, ValueError):
        return []
    names = [document.get("generation"), *(document.get("previous") or [])] if isinstance(document, dict) else []
    return [n for n in names if _generation_name_refusal(n, "", Path(directory)) is None
            and (Path(directory) / n).is_dir()]


def current_generation(directory: str | os.PathLike[str]) -> Path:
    """The directory holding ``directory``'s current generation (``directory`` itself for files saved before
    generations, which sit in it directly)."""
    target = Path(directory)
    pointer = target / GENERATION_POINTER
    if not pointer.exists():
        return target
    document = read_json(pointer)
    name = document.get("generation") if isinstance(document, dict) else None
    refusal = _generation_name_refusal(name, str(pointer), target)
    if refusal:
        raise ValueError(f"{refusal}: it was edited since it was written; {REMEDY}.")
    return target / name
