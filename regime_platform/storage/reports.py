"""The artifact of an evaluation or explainability asset: JSON documents and PNG figures, saved atomically and
loaded back.

This is the output object the artifact IO manager stores (defs/resources.py `ArtifactIOManager`): it calls
`save(directory)` and records the class, and `Report.load(directory)` reads the files back. A document
``name`` is the file ``<name>.json``, a figure ``name`` the file ``<name>.png``, and ``report.json`` lists
both. Each file is written to a temporary name in the directory and renamed (files.atomic_path). No Dagster here.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from regime_platform.storage.files import read_json, write_bytes_atomic, write_json_atomic

INDEX = "report.json"


@dataclass
class Report:
    documents: dict[str, Any] = field(default_factory=dict)  # file stem → JSON-able object
    figures: dict[str, bytes] = field(default_factory=dict)  # file stem → PNG bytes

    @staticmethod
    def figure_path(directory: str | os.PathLike[str], name: str) -> Path:
        return Path(directory) / f"{name}.png"

    @staticmethod
    def document_path(directory: str | os.PathLike[str], name: str) -> Path:
        return Path(directory) / f"{name}.json"

    def save(self, directory: str | os.PathLike[str]) -> list[Path]:
        written = [write_json_atomic(self.document_path(directory, name), document)
                   for name, document in self.documents.items()]
        written += [write_bytes_atomic(self.figure_path(directory, name), png) for name, png in self.figures.items()]
        written.append(write_json_atomic(Path(directory) / INDEX, {"documents": sorted(self.documents),
                                                                    "figures": sorted(self.figures)}))
        return written

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> "Report":
        index_path = Path(directory) / INDEX
        if not index_path.exists():
            raise FileNotFoundError(f"{index_path} is missing: materialize the asset that writes it.")
        index = read_json(index_path)
        return cls(documents={n: read_json(cls.document_path(directory, n)) for n in index["documents"]},
                   figures={n: read_png(cls.figure_path(directory, n)) for n in index["figures"]})


PNG_START, PNG_END = b"\x89PNG\r\n\x1a\n", b"IEND\xaeB`\x82"


def read_png(path: Path) -> bytes:
    """A figure's bytes; one sentence naming the file when it is not a whole PNG (truncated or replaced)."""
    data = path.read_bytes()
    if not (data.startswith(PNG_START) and data.endswith(PNG_END)):
        raise ValueError(f"{path} is not a whole PNG ({len(data)} bytes, without its "
                         f"{'end' if data.startswith(PNG_START) else 'signature'}): it was truncated or replaced "
                         "since it was written; re-materialize the asset that writes it.")
    return data
