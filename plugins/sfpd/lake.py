"""The lake: one folder of typed Parquet files per extraction window.

Layout: ``<lake>/<dataset_id>/window=<start>_<end>/part-00000.parquet, ...``. A window's folder
is written under a temporary name and swapped in whole, so a retry replaces the previous
attempt's files and a crashed write never leaves a partial window behind.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote, urlparse

import pyarrow as pa
import pyarrow.parquet as pq

from sfpd.schema import ARROW_SCHEMA


@dataclass(frozen=True)
class LakeWrite:
    uris: list[str]
    rows: int


class LocalLake:
    """A lake in a local folder (``file:///abs/path``)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def from_uri(cls, uri: str) -> LocalLake:
        return cls(file_uri_to_path(uri))

    def window_dir(self, dataset_id: str, label: str) -> Path:
        return self.root / dataset_id / f"window={label}"

    def write_window(self, dataset_id: str, label: str, tables: Iterable[pa.Table]) -> LakeWrite:
        """Write each table as one Parquet part; an empty window still gets one (empty) part."""
        final = self.window_dir(dataset_id, label)
        staging = final.with_name(f".{final.name}.{uuid.uuid4().hex}")
        staging.mkdir(parents=True)
        try:
            rows = parts = 0
            for table in tables:
                _write_part(table, staging / f"part-{parts:05d}.parquet")
                rows += table.num_rows
                parts += 1
            if not parts:
                _write_part(ARROW_SCHEMA.empty_table(), staging / "part-00000.parquet")
            if final.exists():
                shutil.rmtree(final)
            staging.rename(final)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        parts = sorted(final.glob("part-*.parquet"))
        return LakeWrite(uris=[path_to_file_uri(p) for p in parts], rows=rows)


def _write_part(table: pa.Table, path: Path) -> None:
    if table.schema != ARROW_SCHEMA:
        raise ValueError("lake files must have the dataset schema (sfpd.schema.ARROW_SCHEMA)")
    pq.write_table(table, path, compression="zstd")


def path_to_file_uri(path: Path) -> str:
    """``file://`` URI of an absolute path, keeping ``=`` readable (Hive-style folder names)."""
    return "file://" + quote(str(path), safe="/=")


def file_uri_to_path(uri: str) -> Path:
    parsed = urlparse(uri)
    if parsed.scheme != "file" or parsed.netloc or not parsed.path.startswith("/"):
        raise ValueError(f"expected a file:///absolute/path URI, not {uri!r}")
    return Path(unquote(parsed.path))


def open_lake(uri: str) -> LocalLake:
    scheme = urlparse(uri).scheme
    if scheme == "file":
        return LocalLake.from_uri(uri)
    raise ValueError(f"unsupported lake URI {uri!r}: use file:///absolute/path")
