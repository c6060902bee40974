"""Ingest: validate, hash and store photos content-addressed, then queue them."""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from shelfwatch.core.errors import BadInputError, ShelfWatchError
from shelfwatch.core.imageio import load_image
from shelfwatch.db.models import Photo, PhotoStatus
from shelfwatch.services.stores import get_fixture
from shelfwatch.services.timeutil import parse_timestamp

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"}


@dataclass
class IngestReport:
    added: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)


def expand_paths(paths: Iterable[Path]) -> Iterator[Path]:
    """Files as given, and image files inside folders (sorted, recursively)."""
    for path in paths:
        if path.is_dir():
            yield from sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
            )
        else:
            yield path


def exif_capture_time(path: Path) -> str | None:
    try:
        with Image.open(path) as img:
            exif = img.getexif().get_ifd(0x8769)
            raw = exif.get(0x9003) or img.getexif().get(0x0132)
    except Exception:  # noqa: BLE001 - EXIF is optional; a bad tag must not reject a photo
        return None
    if not raw:
        return None
    try:
        return dt.datetime.strptime(str(raw).strip(), "%Y:%m:%d %H:%M:%S").isoformat()
    except ValueError:
        return None


def ingest_one(
    session: Session,
    path: Path,
    store_code: str,
    fixture_code: str,
    storage_dir: Path,
    captured_at: str | None = None,
) -> tuple[str, Photo]:
    """Ingest one photo; returns ("added" | "duplicate", photo). Raises BadInputError."""
    fixture = get_fixture(session, store_code, fixture_code)
    store = fixture.store
    image = load_image(path)  # validates: exists, decodes, size limits, EXIF orientation
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    existing = session.scalar(select(Photo).where(Photo.sha256 == digest))
    if existing is not None:
        return "duplicate", existing
    when_text = captured_at or exif_capture_time(path)
    when = (
        parse_timestamp(when_text, store.timezone)
        if when_text
        else dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)
    )
    suffix = path.suffix.lower() if path.suffix.lower() in IMAGE_SUFFIXES else ".img"
    rel = Path(digest[:2]) / digest[2:4] / f"{digest}{suffix}"
    dest = storage_dir / rel
    if not dest.exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_suffix(dest.suffix + ".part")
        shutil.copyfile(path, tmp)
        tmp.replace(dest)  # atomic: a crash never leaves a half-copied photo under its name
    photo = Photo(
        store_id=store.id,
        fixture_id=fixture.id,
        captured_at=when,
        sha256=digest,
        storage_path=rel.as_posix(),
        original_name=path.name,
        size_bytes=len(data),
        width=image.shape[1],
        height=image.shape[0],
        status=PhotoStatus.queued.value,
    )
    session.add(photo)
    session.flush()
    return "added", photo


def ingest_paths(
    factory: sessionmaker[Session],
    paths: list[Path],
    store_code: str,
    fixture_code: str,
    storage_dir: Path,
    captured_at: str | None = None,
    progress: bool = False,
) -> IngestReport:
    """Ingest files and folders; each photo commits on its own so one bad file stops nothing."""
    from tqdm import tqdm

    with factory() as session:  # unknown store/fixture is an error for the whole batch
        get_fixture(session, store_code, fixture_code)
    report = IngestReport()
    files = list(expand_paths(paths))
    for path in tqdm(
        files, desc="ingesting", unit="photo", disable=not progress or len(files) < 10
    ):
        try:
            with factory.begin() as session:
                status, _ = ingest_one(
                    session, path, store_code, fixture_code, storage_dir, captured_at
                )
        except BadInputError as exc:
            report.rejected.append((str(path), exc.reason))
            continue
        except ShelfWatchError as exc:
            report.rejected.append((str(path), str(exc)))
            continue
        (report.added if status == "added" else report.duplicates).append(str(path))
    return report


PARTIAL_SUFFIXES = (".part", ".tmp", ".crdownload", ".partial", ".download")


@dataclass
class _Seen:
    size: int
    mtime: float
    since: float
    done: bool = False


def watch(
    factory: sessionmaker[Session],
    root: Path,
    storage_dir: Path,
    interval_s: float = 2.0,
    settle_s: float = 2.0,
    stop: Callable[[], bool] | None = None,
    report: Callable[[str, str], None] | None = None,
) -> IngestReport:
    """Ingest photos dropped under ``root/<store>/<fixture>/`` as they arrive.

    A file is read only once its size and modification time have not changed for
    ``settle_s`` seconds (uploads in progress are left alone), and names that upload tools
    use for partial files (``*.part``, ``*.tmp``, dot-files) are skipped. Each file is
    ingested once; the same bytes under another name are a duplicate, as with ``ingest``.
    """
    seen: dict[Path, _Seen] = {}
    total = IngestReport()
    say = report or (lambda _status, _msg: None)
    while stop is None or not stop():
        now = time.monotonic()
        for path in sorted(root.glob("*/*/*")):
            if (
                not path.is_file()
                or path.name.startswith(".")
                or path.name.lower().endswith(PARTIAL_SUFFIXES)
            ):
                continue
            try:
                st = path.stat()
            except OSError:
                continue
            entry = seen.get(path)
            if entry is None or (entry.size, entry.mtime) != (st.st_size, st.st_mtime):
                seen[path] = _Seen(st.st_size, st.st_mtime, now)
                continue
            if entry.done or now - entry.since < settle_s:
                continue
            entry.done = True
            store, fixture = path.parent.parent.name, path.parent.name
            try:
                with factory.begin() as session:
                    status, _ = ingest_one(session, path, store, fixture, storage_dir)
            except BadInputError as exc:
                total.rejected.append((str(path), exc.reason))
                say("rejected", f"{path}: {exc.reason}")
                continue
            except ShelfWatchError as exc:
                total.rejected.append((str(path), str(exc)))
                say("rejected", f"{path}: {exc}")
                continue
            (total.added if status == "added" else total.duplicates).append(str(path))
            say(status, str(path))
        if stop is not None and stop():
            break
        time.sleep(interval_s)
    return total
