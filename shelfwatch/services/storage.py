"""The photo store: content-addressed files behind an fsspec URL.

Photos and catalog reference images are stored under their SHA-256 at a relative path
(``ab/cd/<sha256>.jpg``, ``refs/<sha256>.png``). The store's root is any URL fsspec
understands: a local folder (a plain path or ``file://...``, the default), ``s3://bucket/
prefix`` (with the ``s3`` extra; endpoint and keys from the usual AWS variables or
``FSSPEC_S3_ENDPOINT_URL``), ``gs://...``, ``az://...``. Workers on several machines then
share nothing but the database URL and the storage URL. Because a path names its content,
a local copy of a remote file never goes stale: the cache needs no invalidation.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

import fsspec
from fsspec.implementations.local import LocalFileSystem

from shelfwatch.core.errors import ShelfWatchError

log = logging.getLogger(__name__)


class PhotoStore:
    """Read and write content-addressed files under one fsspec root."""

    def __init__(self, url: str | Path, cache_dir: Path | None = None) -> None:
        self.url = str(url)
        try:
            self.fs, root = fsspec.core.url_to_fs(self.url)
        except (ImportError, ValueError) as exc:
            raise ShelfWatchError(f"storage {self.url}: {exc}") from None
        self.root = root.rstrip("/")
        self.local = isinstance(self.fs, LocalFileSystem)
        self.cache_dir = cache_dir or Path(tempfile.gettempdir()) / "shelfwatch-cache"

    def __repr__(self) -> str:
        return f"PhotoStore({self.url!r})"

    def _full(self, rel: str) -> str:
        return f"{self.root}/{rel}"

    def exists(self, rel: str) -> bool:
        return bool(self.fs.exists(self._full(rel)))

    def put_file(self, src: Path, rel: str) -> None:
        """Store a local file at ``rel`` unless that content is there already."""
        if self.exists(rel):
            return
        full = self._full(rel)
        if self.local:
            dest = Path(full)
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(dest.name + f".{os.getpid()}.part")
            tmp.write_bytes(src.read_bytes())
            tmp.replace(dest)  # atomic: a crash never leaves a half-copied photo under its name
        else:
            self.fs.put_file(str(src), full)  # object stores write whole objects only

    def put_bytes(self, data: bytes, rel: str) -> None:
        """Store ``data`` at ``rel`` (content-addressed paths: once is enough)."""
        if self.exists(rel):
            return
        with tempfile.NamedTemporaryFile(delete=False) as tmp:
            tmp.write(data)
        try:
            self.put_file(Path(tmp.name), rel)
        finally:
            Path(tmp.name).unlink(missing_ok=True)

    def read_bytes(self, rel: str) -> bytes:
        try:
            return bytes(self.fs.cat_file(self._full(rel)))
        except FileNotFoundError:
            raise ShelfWatchError(f"{self._full(rel)}: missing from the photo store") from None

    def local_path(self, rel: str) -> Path:
        """A local file with ``rel``'s content: the file itself, or a cached download."""
        if self.local:
            return Path(self._full(rel))
        target = self.local_root / rel
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(target.name + f".{os.getpid()}.part")
            tmp.write_bytes(self.read_bytes(rel))
            tmp.replace(target)
        return target

    def local_folder(self, rels: Iterable[str]) -> Path:
        """The local folder holding ``rels`` (fetched into the cache of a remote store);
        a file that cannot be fetched is left out with a warning."""
        for rel in rels:
            try:
                self.local_path(rel)
            except ShelfWatchError as exc:
                log.warning("%s", exc)
        return self.local_root

    @property
    def local_root(self) -> Path:
        """The folder ``local_path`` files lie under (the cache for a remote store)."""
        if self.local:
            return Path(self.root)
        safe = "".join(c if c.isalnum() else "_" for c in self.url)
        return self.cache_dir / safe
