"""The artifact of an evaluation or explainability asset: JSON documents and PNG figures, saved as one generation and
loaded back verified.

This is the output object the artifact IO manager stores (defs/resources.py `ArtifactIOManager`): it calls
`save(directory)` and records the class, and `Report.load(directory)` reads the files back. A report's files are one
generation of its directory (files.publish_generation): ``generation-…/`` holds a document ``name`` as
``<name>.json``, a figure ``name`` as ``<name>.png`` and the index ``report.json``, which lists both with each file's
SHA-256; one atomic rename of ``current.json`` makes it current, so a kill mid-save leaves the previous report whole,
never new documents beside old ones. `load` refuses, in one sentence naming the file, one that is not whole (a
truncated document or figure) or that changed since it was written (still valid JSON or PNG, but not the recorded
SHA-256). A directory saved before generations (the files beside ``report.json``, no checksums) is still read as it
is, and the first save into it removes those files. No Dagster here.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from regime_platform.storage.files import (
    GENERATION_POINTER,
    REMEDY,
    current_generation,
    new_generation_name,
    parse_json,
    publish_generation,
    read_json,
    write_bytes_atomic,
    write_json_atomic,
)

INDEX = "report.json"
PNG_START, PNG_END = b"\x89PNG\r\n\x1a\n", b"IEND\xaeB`\x82"


@dataclass
class Report:
    documents: dict[str, Any] = field(default_factory=dict)  # file stem → JSON-able object
    figures: dict[str, bytes] = field(default_factory=dict)  # file stem → PNG bytes
    # the generation directory `save` publishes into, named up front so that an asset's metadata can give each file's
    # path (document_path, figure_path) before the IO manager saves the report
    generation: str = field(default_factory=new_generation_name, compare=False, repr=False)

    def figure_path(self, directory: str | os.PathLike[str], name: str) -> Path:
        """Where ``save(directory)`` puts (or put) figure ``name``."""
        return Path(directory) / self.generation / f"{name}.png"

    def document_path(self, directory: str | os.PathLike[str], name: str) -> Path:
        """Where ``save(directory)`` puts (or put) document ``name``."""
        return Path(directory) / self.generation / f"{name}.json"

    def save(self, directory: str | os.PathLike[str], extra: Mapping[str, Any] | None = None) -> list[Path]:
        """Every document and figure, then the index with their SHA-256 (and the ``extra`` documents, e.g. the IO
        manager's marker), into a new generation of ``directory``, made current once all are written; returns the
        files written, the pointer last."""
        if Path(INDEX).stem in self.documents:
            raise ValueError(f"a report cannot hold a document named {Path(INDEX).stem!r}: {INDEX} is its index; "
                             "rename the document.")
        target = Path(directory)
        if (target / self.generation).exists():  # saved here before: a new generation, never over the current one
            self.generation = new_generation_name()
        legacy = legacy_files(target)
        written = publish_generation(target, self._write, name=self.generation, extra=extra)
        for path in legacy:  # the layout before generations: unread once current.json exists
            with contextlib.suppress(OSError):
                path.unlink()
        return written

    def _write(self, into: Path) -> list[Path]:
        written = [write_json_atomic(into / f"{name}.json", document) for name, document in self.documents.items()]
        written += [write_bytes_atomic(into / f"{name}.png", png) for name, png in self.figures.items()]
        digests = {path.name: sha256(path.read_bytes()) for path in written}  # what is on disk, as the models do
        written.append(write_json_atomic(into / INDEX, {"documents": sorted(self.documents),
                                                        "figures": sorted(self.figures), "sha256": digests}))
        return written

    @staticmethod
    def saved(directory: str | os.PathLike[str]) -> bool:
        """Whether ``directory`` holds a report (either layout)."""
        return (current_generation(directory) / INDEX).exists()

    @classmethod
    def load(cls, directory: str | os.PathLike[str], *, asset: str | None = None) -> "Report":
        """The current report of ``directory``, each file checked against the SHA-256 recorded when it was saved. A
        refusal is one sentence naming the file and saying to re-materialize ``asset`` (e.g. "backtest for SPY"; the
        asset that writes ``directory`` when not given)."""
        remedy = f"re-materialize {asset}" if asset else f"re-materialize the asset that writes {directory}"
        generation = current_generation(directory)
        index_path = generation / INDEX
        if not index_path.exists():
            raise FileNotFoundError(f"{index_path} is missing: materialize {asset or 'the asset that writes it'}.")
        index = parse_json(index_path.read_bytes(), index_path, remedy)
        legacy = generation == Path(directory)  # saved before generations: no checksums to check against
        if not (isinstance(index, dict) and isinstance(index.get("documents"), list)
                and isinstance(index.get("figures"), list) and (legacy or isinstance(index.get("sha256"), dict))):
            raise ValueError(f"{index_path} is not a report's index (its documents, figures and their sha256): it "
                             f"was edited since it was written; {remedy}.")
        digests = None if legacy else index["sha256"]

        def read(name: str) -> bytes:
            path = generation / name
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                raise FileNotFoundError(f"{path} is missing though {index_path} lists it: it was removed since it "
                                        f"was written; {remedy}.") from None
            return data

        def verified(path: Path, data: bytes) -> bytes:
            if digests is None:
                return data
            recorded, found = digests.get(path.name) or "none", sha256(data)
            if found != recorded:
                raise ValueError(f"{path} changed since it was written (sha256 {found[:12]}…, {recorded[:12]}… "
                                 f"recorded in its {INDEX}): it was edited or replaced; {remedy}.")
            return data

        documents, figures = {}, {}
        for name in index["documents"]:
            path = generation / f"{name}.json"
            data = read(path.name)
            documents[name] = parse_json(data, path, remedy)  # a truncated file says so, before its checksum
            verified(path, data)
        for name in index["figures"]:
            path = generation / f"{name}.png"
            figures[name] = verified(path, png_bytes(read(path.name), path, remedy))
        return cls(documents=documents, figures=figures,
                   generation=new_generation_name() if legacy else generation.name)


def legacy_files(directory: Path) -> list[Path]:
    """A report saved before generations: its index and the files the index lists, directly in ``directory``."""
    index_path = directory / INDEX
    if not index_path.exists():
        return []
    try:
        index = read_json(index_path)
        names = [f"{n}.json" for n in index["documents"]] + [f"{n}.png" for n in index["figures"]]
    except (OSError, ValueError, KeyError, TypeError):  # a damaged index: only it is known to be the report's
        names = []
    return [directory / n for n in names if n != GENERATION_POINTER and "/" not in n] + [index_path]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_png(path: Path) -> bytes:
    """A figure's bytes; one sentence naming the file when it is not a whole PNG (truncated or replaced)."""
    return png_bytes(path.read_bytes(), path)


def png_bytes(data: bytes, path: Path, remedy: str = REMEDY) -> bytes:
    """``data``, read from ``path``, when it is a whole PNG; one sentence naming the file ending with ``remedy``
    otherwise."""
    if not (data.startswith(PNG_START) and data.endswith(PNG_END)):
        raise ValueError(f"{path} is not a whole PNG ({len(data)} bytes, without its "
                         f"{'end' if data.startswith(PNG_START) else 'signature'}): it was truncated or replaced "
                         f"since it was written; {remedy}.")
    return data
