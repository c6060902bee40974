"""Label sets: export predictions for labeling, import corrected labels, read them back."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shelfwatch.core.errors import BadInputError, ShelfWatchError
from shelfwatch.core.masks import rle_from_text, rle_to_text
from shelfwatch.db.convert import load_scene
from shelfwatch.db.models import (
    CatalogProduct,
    Evaluation,
    Fixture,
    Label,
    LabelImage,
    LabelSet,
    Photo,
    PhotoStatus,
    Store,
)
from shelfwatch.labels.coco import (
    GAP,
    PRODUCT,
    LabeledImage,
    LabeledObject,
    read_coco,
    resolve_image,
    scene_objects,
    to_coco,
)
from shelfwatch.services.storage import PhotoStore
from shelfwatch.services.timeutil import as_utc, local_day_bounds
from shelfwatch.vision.base import Segmenter

REVIEW_BELOW = 0.5  # --review: a product scored under this makes its photo worth a look


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class ExportReport:
    images: int
    annotations: int
    path: Path


def needs_review(photo: Photo, objects: list[LabeledObject], below: float) -> bool:
    """A low-confidence product, an unknown product, or a photo-quality flag."""
    if (photo.quality or {}).get("low_confidence"):
        return True
    products = [o for o in objects if o.category != GAP]
    return any(o.category == PRODUCT or (o.score or 0) < below for o in products)


def export_labels(
    session: Session,
    photos_store: PhotoStore,
    out: Path,
    store: str | None = None,
    since: dt.date | None = None,
    review: bool = False,
    below: float = REVIEW_BELOW,
    segmentation: str = "rle",
    progress: Callable[[int, int], None] | None = None,
) -> ExportReport:
    """Write ``out/annotations.json`` (COCO, predictions as pre-annotations) and ``out/images``."""
    query = (
        select(Photo, Store.code, Fixture.code)
        .join(Store, Photo.store_id == Store.id)
        .join(Fixture, Photo.fixture_id == Fixture.id)
        .where(Photo.status == PhotoStatus.done.value)
        .order_by(Photo.captured_at, Photo.id)
    )
    if store:
        if session.scalar(select(Store.id).where(Store.code == store)) is None:
            raise ShelfWatchError(f"unknown store {store!r}")
        query = query.where(Store.code == store)
    if since:
        query = query.where(Photo.captured_at >= local_day_bounds(since, "UTC")[0])
    photos = session.execute(query).all()
    categories = [s for (s,) in session.execute(select(CatalogProduct.sku).order_by("sku"))]
    images: list[LabeledImage] = []
    (out / "images").mkdir(parents=True, exist_ok=True)
    for n, (photo, store_code, fixture_code) in enumerate(photos, start=1):
        objects = scene_objects(load_scene(session, photo, with_masks=True))
        if not review or needs_review(photo, objects, below):
            taken = as_utc(photo.captured_at).strftime("%Y%m%dT%H%M%S")
            name = f"{store_code}_{fixture_code}_{taken}_{photo.sha256[:8]}"
            name += Path(photo.storage_path).suffix
            (out / "images" / name).write_bytes(photos_store.read_bytes(photo.storage_path))
            images.append(LabeledImage(name, photo.width, photo.height, objects))
            categories += [o.category for o in objects if o.category not in categories]
        if progress:
            progress(n, len(photos))
    names = sorted(c for c in set(categories) if c not in (PRODUCT, GAP)) + [PRODUCT, GAP]
    doc = to_coco(images, names, segmentation)
    path = out / "annotations.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return ExportReport(len(images), len(doc["annotations"]), path)  # type: ignore[arg-type]


@dataclass
class ImportReport:
    label_set: LabelSet
    imported: bool  # False: this very file was imported before (nothing changed)
    warnings: list[str] = field(default_factory=list)


def import_labels(
    session: Session, path: Path, images_dir: Path, name: str | None = None
) -> ImportReport:
    """Store a COCO labels file as a new version of a label set (the caller's transaction).

    Images are found in ``images_dir`` by name and known by content hash; a file imported
    before is a no-op. Every problem is raised before anything is added.
    """
    if not path.is_file():
        raise BadInputError(str(path), "no such file")
    if not images_dir.is_dir():
        raise BadInputError(str(images_dir), "no such folder")
    digest = file_sha256(path)
    existing = session.scalar(select(LabelSet).where(LabelSet.source_sha256 == digest))
    if existing is not None:
        return ImportReport(existing, False)
    coco = read_coco(path)
    if not any(im.objects for im in coco.images):
        raise BadInputError(str(path), "no annotations")
    skus = set(session.scalars(select(CatalogProduct.sku)))
    warnings = [
        f"category {c!r} matches no SKU in the catalog; kept as its own label"
        for c in coco.categories
        if c not in skus and c not in (PRODUCT, GAP)
    ]
    rows: list[LabelImage] = []
    seen: dict[str, str] = {}
    for image in coco.images:
        file = resolve_image(images_dir, image.file_name)
        if file is None:
            raise BadInputError(image.file_name, f"image not found in {images_dir}")
        sha = file_sha256(file)
        if sha in seen:
            warnings.append(f"{image.file_name}: same photo as {seen[sha]}; labels merged")
            row = next(r for r in rows if r.sha256 == sha)
        else:
            seen[sha] = image.file_name
            photo_id = session.scalar(select(Photo.id).where(Photo.sha256 == sha))
            row = LabelImage(
                sha256=sha,
                file_name=image.file_name,
                width=image.width,
                height=image.height,
                photo_id=photo_id,
            )
            rows.append(row)
        row.labels += [
            Label(
                category=o.category,
                x1=o.bbox[0],
                y1=o.bbox[1],
                x2=o.bbox[2],
                y2=o.bbox[3],
                mask_rle=rle_to_text(o.rle) if o.rle else None,
                iscrowd=o.iscrowd,
            )
            for o in image.objects
        ]
    set_name = name or path.stem
    version = (
        session.scalar(select(func.max(LabelSet.version)).where(LabelSet.name == set_name)) or 0
    ) + 1
    label_set = LabelSet(
        name=set_name, version=version, source=str(path), source_sha256=digest, images=rows
    )
    session.add(label_set)
    session.flush()
    return ImportReport(label_set, True, warnings)


def get_label_set(session: Session, name: str, version: int | None = None) -> LabelSet:
    """A stored label set by name (the newest version unless ``version``)."""
    query = select(LabelSet).where(LabelSet.name == name)
    if version is not None:
        query = query.where(LabelSet.version == version)
    found = session.scalar(query.order_by(LabelSet.version.desc()))
    if found is None:
        raise ShelfWatchError(f"no label set {name!r} (import one with: shelfwatch labels import)")
    return found


def stored_images(
    session: Session, label_set: LabelSet, photos: PhotoStore, images_dir: Path | None
) -> list[tuple[Path, LabeledImage]]:
    """The label set's photos on disk with their labels: stored photos, else in ``images_dir``."""
    out = []
    for row in label_set.images:
        file = None
        if row.photo_id is not None:
            photo = session.get(Photo, row.photo_id)
            file = photos.local_path(photo.storage_path) if photo else None
        if (file is None or not file.is_file()) and images_dir is not None:
            file = resolve_image(images_dir, row.file_name)
            if file is not None and file_sha256(file) != row.sha256:
                raise BadInputError(str(file), "not the labeled photo (its content changed)")
        if file is None or not file.is_file():
            raise BadInputError(row.file_name, "labeled photo not on disk (give --images DIR)")
        objects = [
            LabeledObject(
                lab.category,
                (lab.x1, lab.y1, lab.x2, lab.y2),
                rle_from_text(lab.mask_rle) if lab.mask_rle else None,
                None,
                lab.iscrowd,
            )
            for lab in row.labels
        ]
        out.append((file, LabeledImage(row.file_name, row.width, row.height, objects)))
    return out


def file_images(path: Path, images_dir: Path) -> list[tuple[Path, LabeledImage]]:
    """A COCO file's photos (found in ``images_dir``) with their labels, without the database."""
    out = []
    for image in read_coco(path).images:
        file = resolve_image(images_dir, image.file_name)
        if file is None:
            raise BadInputError(image.file_name, f"image not found in {images_dir}")
        out.append((file, image))
    return out


def evaluate_backend(
    session: Session,
    segmenter: Segmenter,
    photos: list[tuple[Path, LabeledImage]],
    store: PhotoStore,
    label_set: LabelSet | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, object]:
    """Run ``segmenter`` (with the catalog's SKU signatures) on labeled photos, score it,
    and store the result with the backend's name and model version."""
    from shelfwatch.core.imageio import load_image
    from shelfwatch.labels.evaluate import Scored, evaluate
    from shelfwatch.pipeline import FixtureContext, analyze
    from shelfwatch.planogram.sku import load_signatures
    from shelfwatch.services.catalog import catalog_items
    from shelfwatch.vision.registry import model_version

    if not photos:
        raise ShelfWatchError("no labeled photos to evaluate on")
    items = catalog_items(session)
    refs = store.local_folder(i.reference_image for i in items if i.reference_image)
    context = FixtureContext(
        catalog={i.sku: i for i in items},
        signatures=load_signatures(refs, items),
        catalog_dir=refs,
    )
    scored = []
    for n, (file, truth) in enumerate(photos, start=1):
        image = load_image(file)
        if (image.shape[1], image.shape[0]) != (truth.width, truth.height):
            raise BadInputError(
                str(file),
                f"is {image.shape[1]}x{image.shape[0]} but labeled as {truth.width}x{truth.height}",
            )
        scene = analyze(image, segmenter, context)
        scored.append(Scored(truth, scene_objects(scene), scene))
        if progress:
            progress(n, len(photos))
    metrics = {
        **evaluate(scored),
        "backend": segmenter.name,
        "model_version": model_version(segmenter),
    }
    if label_set is not None:
        metrics["label_set"] = f"{label_set.name} v{label_set.version}"
    session.add(
        Evaluation(
            label_set_id=label_set.id if label_set else None,
            backend=segmenter.name,
            model_version=str(metrics["model_version"]),
            metrics=metrics,
        )
    )
    return metrics
