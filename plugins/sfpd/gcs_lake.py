"""The lake in a GCS bucket (``gs://bucket/prefix``): a window's old objects are deleted, then
each part uploaded (:mod:`sfpd.lake` has the layout and the local lake)."""

from __future__ import annotations

import datetime as dt
import io
import logging
from collections.abc import Iterable
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.parquet as pq

from sfpd.lake import (
    DOCS,
    REPORTS,
    WINDOWS,
    LakeEntry,
    LakeWrite,
    check_schema,
    part_name,
    with_empty_part,
)

log = logging.getLogger(__name__)
PARQUET_CONTENT_TYPE = "application/vnd.apache.parquet"


class GcsLake:
    """A lake in a GCS bucket (``gs://bucket/prefix``), written with a google-cloud-storage
    client (in DAG tasks: GCSHook(...).get_conn())."""

    def __init__(self, client, bucket: str, prefix: str = "") -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")

    @classmethod
    def from_uri(cls, uri: str, client) -> GcsLake:
        parsed = urlparse(uri)
        if parsed.scheme != "gs" or not parsed.netloc:
            raise ValueError(f"expected a gs://bucket/prefix URI, not {uri!r}")
        return cls(client, parsed.netloc, parsed.path)

    def _key(self, *parts: str) -> str:
        """An object name under the lake's prefix."""
        return "/".join(p for p in (self.prefix, *parts) if p)

    def location(self) -> str:
        """The bucket's location (a region, dual- or multi-region: BigQuery loads need it to
        serve the dataset's)."""
        return self.client.get_bucket(self.bucket).location

    def window_prefix(self, dataset_id: str, label: str) -> str:
        return self._key(dataset_id, WINDOWS, label) + "/"

    def write_window(self, dataset_id: str, label: str, tables: Iterable[pa.Table]) -> LakeWrite:
        prefix = self.window_prefix(dataset_id, label)
        bucket = self.client.bucket(self.bucket)
        stale = list(self.client.list_blobs(self.bucket, prefix=prefix))
        for blob in stale:
            blob.delete()
        if stale:
            log.info("Deleted %d object(s) of an earlier attempt under %s", len(stale), prefix)
        uris, rows = [], 0
        for index, table in enumerate(with_empty_part(tables)):
            check_schema(table)
            uris.append(self._upload(bucket, prefix + part_name(index), table))
            rows += table.num_rows
        return LakeWrite(uris=uris, rows=rows)

    def write_file(self, dataset_id: str, label: str, name: str, table: pa.Table) -> str:
        bucket = self.client.bucket(self.bucket)
        return self._upload(bucket, self.window_prefix(dataset_id, label) + name, table)

    def write_report(self, dataset_id: str, name: str, html: str) -> str:
        key = self._key(dataset_id, REPORTS, name)
        blob = self.client.bucket(self.bucket).blob(key)
        blob.upload_from_string(html.encode("utf-8"), content_type="text/html; charset=utf-8")
        return f"gs://{self.bucket}/{key}"

    def write_docs(self, dataset_id: str, files: dict[str, bytes]) -> str:
        folder = self._key(dataset_id, DOCS)
        bucket = self.client.bucket(self.bucket)
        for name, content in files.items():
            kind = "text/html; charset=utf-8" if name.endswith(".html") else "application/json"
            bucket.blob(f"{folder}/{name}").upload_from_string(content, content_type=kind)
        return f"gs://{self.bucket}/{folder}"

    def entries(self, dataset_id: str) -> list[LakeEntry]:
        root = self._key(dataset_id) + "/"
        written: dict[tuple[str, str], dt.datetime] = {}
        for blob in self.client.list_blobs(self.bucket, prefix=root):
            kind, _, rest = blob.name.removeprefix(root).partition("/")
            if kind in (WINDOWS, REPORTS) and rest:
                key = (kind, rest.split("/")[0] if kind == WINDOWS else rest)
                written[key] = max(written.get(key, blob.updated), blob.updated)
        return [LakeEntry(kind, name, at) for (kind, name), at in sorted(written.items())]

    def remove(self, dataset_id: str, entry: LakeEntry) -> None:
        key = self._key(dataset_id, entry.kind, entry.name)
        prefix = key + "/" if entry.kind == WINDOWS else key
        for blob in self.client.list_blobs(self.bucket, prefix=prefix):
            blob.delete()

    def _upload(self, bucket, name: str, table: pa.Table) -> str:
        buffer = io.BytesIO()
        pq.write_table(table, buffer, compression="zstd")
        buffer.seek(0)
        bucket.blob(name).upload_from_file(buffer, content_type=PARQUET_CONTENT_TYPE)
        return f"gs://{self.bucket}/{name}"
