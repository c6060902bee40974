"""``shelfwatch labels`` (COCO out for labeling, labels in) and ``shelfwatch eval``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import typer
from sqlalchemy.orm import Session

from shelfwatch.cli.common import database, fail, friendly_errors, segmenter_for, settings
from shelfwatch.db.models import LabelSet
from shelfwatch.labels.coco import LabeledImage
from shelfwatch.services import labels as label_service
from shelfwatch.services.timeutil import parse_date

labels_app = typer.Typer(
    help="Labels: export predictions for CVAT / Label Studio, import corrected labels.",
    no_args_is_help=True,
)


def _bar(desc: str, quiet: bool = False) -> Callable[[int, int], None]:
    from tqdm import tqdm

    bar = tqdm(desc=desc, unit="photo", disable=quiet)

    def update(done: int, total: int) -> None:
        bar.total = total
        bar.update(1)
        if done == total:
            bar.close()

    return update


@labels_app.command("export")
@friendly_errors
def labels_export(
    out: Path = typer.Option(..., "--out", help="Folder for annotations.json and images/."),
    fmt: str = typer.Option("coco", "--format", help="coco (the only format)."),
    store: str = typer.Option(None, "--store", help="Only this store's photos."),
    since: str = typer.Option(None, "--since", help="Only photos taken on or after YYYY-MM-DD."),
    review: bool = typer.Option(
        False,
        "--review",
        help="Only photos with a low-confidence or unknown product or a quality flag.",
    ),
    below: float = typer.Option(
        label_service.REVIEW_BELOW, "--below", min=0.0, max=1.0, help="--review's threshold."
    ),
    segmentation: str = typer.Option(
        "rle", "--segmentation", help="rle (CVAT) or polygon (Label Studio's COCO import)."
    ),
) -> None:
    """Write processed photos and their predictions as COCO pre-annotations."""
    if fmt != "coco":
        raise fail(f"unknown format {fmt!r}; only coco is supported")
    if segmentation not in ("rle", "polygon"):
        raise fail("--segmentation must be rle or polygon")
    with database()() as session:
        report = label_service.export_labels(
            session,
            settings().photo_store(),
            out,
            store,
            parse_date(since) if since else None,
            review,
            below,
            segmentation,
            _bar("exporting"),
        )
    typer.echo(f"{report.images} photos, {report.annotations} annotations -> {report.path}")


@labels_app.command("import")
@friendly_errors
def labels_import(
    file: Path = typer.Argument(..., help="COCO file (CVAT, Label Studio or ShelfWatch)."),
    images: Path = typer.Option(..., "--images", help="Folder with the labeled photos."),
    name: str = typer.Option(None, "--name", help="Label set name (default: the file's name)."),
) -> None:
    """Store labels as a new version of a named label set (all or nothing)."""
    with database().begin() as session:
        report = label_service.import_labels(session, file, images, name)
        ls = report.label_set
        for warning in report.warnings:
            typer.echo(f"warning: {warning}", err=True)
        if not report.imported:
            typer.echo(f"already imported as {ls.name} v{ls.version}; nothing changed")
            return
        labels = sum(len(i.labels) for i in ls.images)
        linked = sum(1 for i in ls.images if i.photo_id is not None)
        typer.echo(
            f"imported {ls.name} v{ls.version}: {len(ls.images)} photos ({linked} stored in "
            f"ShelfWatch), {labels} labels"
        )


@labels_app.command("list")
@friendly_errors
def labels_list() -> None:
    """Label sets: name, version, photos, labels, source, when imported."""
    from sqlalchemy import select

    with database()() as session:
        for ls in session.scalars(select(LabelSet).order_by(LabelSet.name, LabelSet.version)):
            labels = sum(len(i.labels) for i in ls.images)
            typer.echo(
                f"{ls.name}\tv{ls.version}\t{len(ls.images)} photos\t{labels} labels\t"
                f"{ls.source}\t{ls.imported_at:%Y-%m-%d %H:%M}"
            )


def _labeled_photos(
    session: Session, labels: str, images: Path | None
) -> tuple[LabelSet | None, list[tuple[Path, LabeledImage]]]:
    """(label set or None, [(photo file, labels)]) for ``--labels FILE|NAME``."""
    storage = settings().photo_store()
    path = Path(labels)
    if path.suffix.lower() == ".json" or path.is_file():
        if images is None:
            raise fail("--images DIR is needed with a labels file")
        return None, label_service.file_images(path, images)
    label_set = label_service.get_label_set(session, labels)
    return label_set, label_service.stored_images(session, label_set, storage, images)


@friendly_errors
def eval_cmd(
    labels: str = typer.Option(..., "--labels", help="A COCO file, or a label set's name."),
    images: Path = typer.Option(None, "--images", help="Folder with the labeled photos."),
    backend: str = typer.Option(None, "--backend", help="Backend (default: settings)."),
    model: Path = typer.Option(
        None, "--model", help="The backend's weights: a train --out folder or a checkpoint."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """COCO AP of a backend on labeled photos, with count MAPE and gap IoU; stored in SQL."""
    segmenter = segmenter_for(backend, model)
    with database().begin() as session:
        label_set, photos = _labeled_photos(session, labels, images)
        metrics = label_service.evaluate_backend(
            session,
            segmenter,
            photos,
            settings().photo_store(),
            label_set,
            _bar("evaluating", as_json),
        )
    if as_json:
        typer.echo(json.dumps(metrics))
        return
    for key in (
        "images",
        "backend",
        "model_version",
        "ap",
        "ap50",
        "ap75",
        "mask_ap",
        "count_mape",
        "count_mape_shelf",
        "gap_iou",
    ):
        typer.echo(f"{key:>17}: {metrics.get(key)}")
    for row in metrics["per_category"]:  # type: ignore[union-attr]
        typer.echo(f"{row['category']:>17}: AP50 {row['ap50']}  count MAPE {row['count_mape']}")


@friendly_errors
def train_cmd(
    backend: str = typer.Option(
        "default", "--backend", help="default (the facing detector), clipseg or mask2former."
    ),
    labels: str = typer.Option(
        None, "--labels", help="A COCO file, or a label set's name (optional with --shared)."
    ),
    images: Path = typer.Option(None, "--images", help="Folder with the labeled photos."),
    shared: Path = typer.Option(
        None,
        "--shared",
        help="Default backend: also train on the real material in this folder (../shared): "
        "real-products C1-C2, ShelfWatch's own boxes on real-shelves-more, real-gaps' "
        "training part.",
    ),
    out: Path = typer.Option(..., "--out", help="Model folder (checkpoint, weights)."),
    epochs: int = typer.Option(20, "--epochs", min=1),
    steps: int = typer.Option(
        None, "--steps-per-epoch", min=1, help="Default: 100 (default backend), else one pass."
    ),
    batch_size: int = typer.Option(
        None, "--batch-size", min=1, help="Photos per step (default: 8 / 4 / 2 by backend)."
    ),
    lr: float = typer.Option(None, "--lr", min=1e-9, help="Peak learning rate (by backend)."),
    renders: int = typer.Option(
        100, "--renders", min=0, help="Rendered photos mixed in (default backend)."
    ),
    base: str = typer.Option(
        None, "--from", help="Checkpoint to start from (hub id or folder; default: settings)."
    ),
    train_encoder: bool = typer.Option(
        False, "--train-encoder", help="CLIPSeg: train CLIP too (frozen by default)."
    ),
    seed: int = typer.Option(0, "--seed"),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    resume: bool = typer.Option(False, "--resume", help="Continue from out/checkpoint.pt."),
    second_detector: bool = typer.Option(
        False,
        "--second-detector",
        help="Default backend: also train the second detector (four times the steps), averaged "
        "with the first where SHELFWATCH_DETECTOR_ENSEMBLE=1.",
    ),
    detector_width: int = typer.Option(
        None,
        "--detector-width",
        min=4,
        help="Default backend: the detectors' width, channels of their first stage "
        "(default 16, the shipped weights'; the ONNX file carries it, nothing else changes).",
    ),
) -> None:
    """Fine-tune a backend on labeled photos; prints eval before and after."""
    from tqdm import tqdm

    from shelfwatch.services.catalog import catalog_items
    from shelfwatch.services.training import BACKENDS, TrainOptions, train_backend
    from shelfwatch.vision.registry import segmenter_from

    if backend not in BACKENDS:
        raise fail(f"cannot train backend {backend!r}; choose one of: {', '.join(BACKENDS)}")
    if base and backend == "default":
        raise fail("--from is for the transformers backends; the detector trains from scratch")
    if device not in ("auto", "cpu", "cuda"):
        raise fail("--device must be auto, cpu or cuda")
    if shared is not None and backend != "default":
        raise fail("--shared is for the default backend's detector")
    if second_detector and backend != "default":
        raise fail("--second-detector is for the default backend")
    if detector_width is not None and backend != "default":
        raise fail("--detector-width is for the default backend")
    if shared is not None and not shared.is_dir():
        raise fail(f"{shared}: no such folder")
    if labels is None and shared is None:
        raise fail("--labels is needed (or --shared for the default backend)")
    photos: list = []
    with database()() as session:
        if labels is not None:
            _, photos = _labeled_photos(session, labels, images)
        sku_prompts = {i.sku: i.prompt or i.name for i in catalog_items(session)}
    options = TrainOptions(
        epochs=epochs,
        steps_per_epoch=steps,
        batch_size=batch_size,
        lr=lr,
        renders=renders,
        seed=seed,
        device=device,
        resume=resume,
        base=base,
        train_encoder=train_encoder,
        shared=shared,
        second_detector=second_detector,
        detector_width=detector_width,
    )
    bars: list[tqdm] = []  # made at the first step: errors before it print no empty bar

    def progress(done: int, total: int, loss: float) -> None:
        if not bars:
            bars.append(tqdm(desc="training", unit="step", total=total))
        bars[0].n = done
        bars[0].set_postfix(loss=f"{loss:.3f}", refresh=False)
        bars[0].refresh()

    info = train_backend(backend, photos, out, options, sku_prompts, progress)
    for bar in bars:
        bar.close()
    typer.echo(f"trained {info['steps']} steps; last loss {info['history'][-1]['loss']}")
    name = "opencv" if backend == "default" else backend
    if not photos:
        typer.echo(f"model in {out}; measure it with: shelfwatch bench accuracy --model {out}")
        return
    with database().begin() as session:
        for label, source in (("before", base), ("after", str(out))):
            segmenter = segmenter_from(backend, source)
            m = label_service.evaluate_backend(session, segmenter, photos, settings().photo_store())
            typer.echo(
                f"{label}: AP50 {m['ap50']}  AP {m['ap']}  count MAPE {m['count_mape']}  "
                f"product IoU {m['product_iou']}"
            )
    typer.echo(f"model in {out}; use it with: shelfwatch eval --backend {name} --model {out} ...")
