"""Ingest: validate, hash and store photos content-addressed, then queue them."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from shelfwatch.core.errors import BadInputError, ShelfWatchError
from shelfwatch.core.imageio import decode_image
from shelfwatch.db.models import Photo, PhotoStatus
from shelfwatch.services.storage import PhotoStore
from shelfwatch.services.stores import get_fixture
from shelfwatch.services.timeutil import parse_timestamp
from shelfwatch.vision.video import VIDEO_SUFFIXES, is_video

MEDIA_SUFFIXES = {
    ".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".heic", ".heif", ".gif",
    *VIDEO_SUFFIXES,
}  # fmt: skip
# Files a camera or a copy leaves beside photos: skipped in folders without a word.
IGNORED_NAMES = {"thumbs.db", "desktop.ini"}


@dataclass
class IngestReport:
    added: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # in folders: not photos


def expand_paths(paths: Iterable[Path], report: IngestReport | None = None) -> Iterator[Path]:
    """Files as given, and photo files inside folders (sorted, recursively); other files in
    folders are named in ``report.skipped`` with the reason."""
    for path in paths:
        if not path.is_dir():
            yield path
            continue
        for p in sorted(path.rglob("*")):
            if not p.is_file() or p.name.startswith(".") or p.name.lower() in IGNORED_NAMES:
                continue
            if p.suffix.lower() in MEDIA_SUFFIXES:
                yield p
            elif report is not None:
                kind = p.suffix.lower() or "no extension"
                report.skipped.append((str(p), f"not a photo file ({kind})"))


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
    photos: PhotoStore,
    captured_at: str | None = None,
) -> tuple[str, Photo]:
    """Ingest one photo (or one video: a capture); returns ("added" | "duplicate", photo).
    Raises BadInputError."""
    if is_video(path):
        return ingest_capture(session, [path], store_code, fixture_code, photos, captured_at)
    fixture = get_fixture(session, store_code, fixture_code)
    store = fixture.store
    if not path.is_file():
        raise BadInputError(str(path), "no such file" if not path.exists() else "not a file")
    data = path.read_bytes()
    image = decode_image(data, str(path))  # validates: decodes, size limits, orientation
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
    suffix = path.suffix.lower() if path.suffix.lower() in MEDIA_SUFFIXES else ".img"
    rel = f"{digest[:2]}/{digest[2:4]}/{digest}{suffix}"
    photos.put_file(path, rel)
    photo = Photo(
        store_id=store.id,
        fixture_id=fixture.id,
        captured_at=when,
        sha256=digest,
        storage_path=rel,
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
    photos: PhotoStore,
    captured_at: str | None = None,
    progress: bool = False,
) -> IngestReport:
    """Ingest files and folders; each photo commits on its own so one bad file stops nothing."""
    from tqdm import tqdm

    with factory() as session:  # unknown store/fixture is an error for the whole batch
        get_fixture(session, store_code, fixture_code)
    report = IngestReport()
    files = list(expand_paths(paths, report))
    for path in tqdm(
        files, desc="ingesting", unit="photo", disable=not progress or len(files) < 10
    ):
        try:
            with factory.begin() as session:
                status, _ = ingest_one(session, path, store_code, fixture_code, photos, captured_at)
        except BadInputError as exc:
            report.rejected.append((str(path), exc.reason))
            continue
        except ShelfWatchError as exc:
            report.rejected.append((str(path), str(exc)))
            continue
        (report.added if status == "added" else report.duplicates).append(str(path))
    return report


def ingest_capture(
    session: Session,
    paths: list[Path],
    store_code: str,
    fixture_code: str,
    photos: PhotoStore,
    captured_at: str | None = None,
) -> tuple[str, Photo]:
    """Ingest a capture of one fixture: a video, or photos in walk order (stored each, with
    a manifest listing them). Returns ("added" | "duplicate", the capture's row)."""
    from shelfwatch.vision.video import read_video

    fixture = get_fixture(session, store_code, fixture_code)
    if len(paths) == 1 and is_video(paths[0]):
        path = paths[0]
        first = next(read_video(path))  # validates: decodes, duration limit
        data, media, suffix = path.read_bytes(), "video", path.suffix.lower()
        height, width = first.image.shape[:2]
    else:
        if len(paths) < 2:
            raise BadInputError(str(paths[0]), "a photo series needs two photos or more")
        members = []
        for path in paths:
            member = path.read_bytes() if path.is_file() else b""
            image = decode_image(member, str(path))
            digest = hashlib.sha256(member).hexdigest()
            rel = f"{digest[:2]}/{digest[2:4]}/{digest}{path.suffix.lower()}"
            photos.put_file(path, rel)
            members.append(rel)
        data = json.dumps({"frames": members}).encode()
        media, suffix = "series", ".json"
        height, width = image.shape[:2]
        path = paths[0]
    digest = hashlib.sha256(data).hexdigest()
    existing = session.scalar(select(Photo).where(Photo.sha256 == digest))
    if existing is not None:
        return "duplicate", existing
    when_text = captured_at or (exif_capture_time(path) if media == "series" else None)
    when = (
        parse_timestamp(when_text, fixture.store.timezone)
        if when_text
        else dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)
    )
    rel = f"{digest[:2]}/{digest[2:4]}/{digest}{suffix}"
    photos.put_bytes(data, rel)
    photo = Photo(
        store_id=fixture.store.id,
        fixture_id=fixture.id,
        captured_at=when,
        sha256=digest,
        storage_path=rel,
        original_name=path.name if media == "video" else f"{path.name} (+{len(paths) - 1})",
        size_bytes=len(data),
        width=width,
        height=height,
        status=PhotoStatus.queued.value,
        media=media,
    )
    session.add(photo)
    session.flush()
    return "added", photo


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
    photos: PhotoStore,
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
                    status, _ = ingest_one(session, path, store, fixture, photos)
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
