"""``shelfwatch train``: fine-tune a backend on labeled photos.

The default backend's facing detector, CLIPSeg (decoder; prompts from the catalog) and
Mask2Former (instances of one class, "product") all train through ``vision.fitting.fit``:
the same progress, checkpoints, ``--resume`` and seed handling.
"""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from shelfwatch.core.errors import ShelfWatchError
from shelfwatch.core.imageio import load_image
from shelfwatch.labels.coco import GAP, LabeledImage, read_coco
from shelfwatch.vision.detector.data import Source

# Per photo (file name): its shelf boxes and the boxes of the area where every shelf is boxed.
ShelfLabels = dict[str, tuple[np.ndarray, np.ndarray]]


def sources_from(
    photos: list[tuple[Path, LabeledImage]],
    voids_only: bool = False,
    shelves: ShelfLabels | None = None,
) -> list[Source]:
    """Detector training sources: product boxes, void boxes (category ``gap``) and crowd
    boxes as areas to ignore. A kind with no box in a photo counts as unlabeled there (a
    label set of products alone says nothing of voids, and the other way round); with
    ``voids_only`` products are unlabeled in every photo (a set of void boxes alone).
    ``shelves``: shelf boxes where known (photos without them teach no shelf edges)."""
    shelves = shelves or {}
    out = []
    for file, image in photos:
        products, gaps = (
            np.array(
                [o.bbox for o in image.objects if (o.category == GAP) == void and not o.iscrowd],
                dtype=np.float32,
            ).reshape(-1, 4)
            for void in (False, True)
        )
        ignore = [o.bbox for o in image.objects if o.iscrowd]
        if not len(products) and not len(gaps):
            continue
        out.append(
            Source(
                load_image(file),
                products,
                np.array(ignore, dtype=np.float32).reshape(-1, 4),
                gaps,
                products_known=not voids_only and len(products) > 0,
                gaps_known=len(gaps) > 0,
                shelves=shelves.get(image.file_name, (None, None))[0],
                shelf_region=shelves.get(image.file_name, (None, None))[1],
            )
        )
    return out


def shelf_labels(csv_path: Path) -> ShelfLabels:
    """A ``shelves.csv`` of the shared sets: every shelf of the photo's centre bay is boxed,
    so the box around them is where shelf edges are known."""
    from shelfwatch.labels.shared import read_boxes

    out = {}
    for name, boxes in read_boxes(csv_path).items():
        b = np.array(boxes, np.float32).reshape(-1, 4)
        region = np.array([[b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max()]])
        out[name] = (b, region.astype(np.float32))
    return out


def shared_sources(shared: Path) -> tuple[list[Source], list[Source], list[Source]]:
    """The shipped detector's real training material in ``shared`` (``../shared``): (racks,
    supermarket shelves, voids). Racks: cameras C1-C2 of real-products; supermarket shelves:
    ShelfWatch's own boxes on real-shelves-more photos; voids: the training part of real-gaps.
    Held-out parts (real-products C3-C4, real-shelves, a third of real-gaps) are never used."""
    from shelfwatch.labels.shared import real_gaps, real_products, supermarket_products

    folder = shared / "real-products"
    if not (folder / "labels.csv").is_file():
        raise ShelfWatchError(f"{shared}: no real-products/labels.csv (is it the shared folder?)")
    racks = [(folder / "images" / im.file_name, im) for im in real_products(folder, ("C1", "C2"))]
    voids = real_gaps(shared / "real-gaps", "train")
    return (
        sources_from(racks),
        sources_from(
            supermarket_products(shared),
            shelves=shelf_labels(shared / "real-shelves-more" / "shelves.csv"),
        ),
        sources_from(voids, voids_only=True),
    )


def rendered_sources(count: int, seed: int) -> list[Source]:
    """``count`` rendered photos with exact boxes (the renderer's own truth)."""
    from shelfwatch.synth import SynthConfig, render_dataset

    if count <= 0:
        return []
    with tempfile.TemporaryDirectory() as tmp:
        render_dataset(Path(tmp), SynthConfig(photos=count, seed=seed), progress=False)
        coco = read_coco(Path(tmp) / "annotations.json")
        # No shelf boxes: a render's shelves are tilted and warped, its truth holds their
        # heights at the centre only.
        return sources_from([(Path(tmp) / "images" / im.file_name, im) for im in coco.images])


BACKENDS = ("default", "clipseg", "mask2former")
# Per backend: steps per epoch (None: one pass over the photos), photos per step, learning
# rate. The transformers rates are their papers' fine-tuning rates.
DEFAULTS: dict[str, tuple[int | None, int, float]] = {
    "default": (100, 8, 2e-3),
    "clipseg": (None, 4, 1e-3),
    "mask2former": (None, 2, 1e-4),
}


@dataclass
class TrainOptions:
    epochs: int = 20
    steps_per_epoch: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    renders: int = 100  # rendered photos mixed in (default backend)
    seed: int = 0
    device: str = "auto"
    resume: bool = False
    base: str | None = None  # transformers checkpoint to start from (default: settings)
    train_encoder: bool = False  # CLIPSeg: train CLIP too
    shared: Path | None = None  # the default backend's real material (see shared_sources)
    second_detector: bool = False  # default backend: also the second detector (4x the steps)
    detector_width: int | None = None  # default backend: the detectors' width (default: WIDTH)


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        raise ShelfWatchError('training needs torch: pip install -e ".[models]"') from None
    return torch


def train_backend(
    backend: str,
    photos: list[tuple[Path, LabeledImage]],
    out: Path,
    options: TrainOptions,
    sku_prompts: dict[str, str] | None = None,
    progress: Callable[[int, int, float], None] | None = None,
) -> dict[str, object]:
    """Fine-tune ``backend`` on labeled photos into ``out``; returns what training.json holds."""
    if backend not in BACKENDS:
        raise ShelfWatchError(
            f"cannot train backend {backend!r}; choose one of: {', '.join(BACKENDS)}"
        )
    if not photos and not (backend == "default" and options.shared):
        raise ShelfWatchError("no usable annotations: no labeled photos")
    steps, batch, lr = DEFAULTS[backend]
    batch = options.batch_size or batch
    lr = options.lr or lr
    steps = options.steps_per_epoch or steps or math.ceil(len(photos) / batch)
    torch = _torch()
    from shelfwatch.vision.fitting import Plan

    device = options.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if backend == "default":
        return train_default(
            photos,
            out,
            options.epochs,
            steps,
            options.renders,
            options.seed,
            device,
            options.resume,
            progress,
            batch,
            lr,
            options.shared,
            options.second_detector,
            options.detector_width,
        )
    from shelfwatch.settings import get_settings

    s = get_settings()
    base = options.base or (s.clipseg_model if backend == "clipseg" else s.mask2former_model)
    plan = Plan(options.epochs, steps, lr, options.seed, options.resume)
    meta: dict[str, Any] = {
        "backend": backend,
        "base": base,
        "epochs": options.epochs,
        "steps": steps,
        "batch": batch,
        "photos": len(photos),
    }
    if backend == "clipseg":
        from shelfwatch.vision.models.clipseg import ClipSegReferrer
        from shelfwatch.vision.models.train_clipseg import prompt_vocabulary, train_clipseg

        referrer = ClipSegReferrer.from_pretrained(base, s.offline, device)
        prompts = prompt_vocabulary(photos, s.product_prompt, s.gap_prompt, sku_prompts or {})
        meta |= {"prompts": prompts, "train_encoder": options.train_encoder}
        history = train_clipseg(
            referrer, photos, prompts, out, plan, meta, batch, options.train_encoder, progress
        )
    else:
        from shelfwatch.vision.models.instances import InstanceSegmenter
        from shelfwatch.vision.models.train_mask2former import PRODUCT_CLASS, train_mask2former

        segmenter = InstanceSegmenter.from_pretrained(
            "mask2former", base, s.offline, device, ignore_mismatched_sizes=True, **PRODUCT_CLASS
        )
        # Mask2Former's own fine-tuning recipe: AdamW, weight decay 0.05.
        plan = replace(plan, weight_decay=0.05)
        history = train_mask2former(segmenter, photos, out, plan, meta, batch, progress)
    info = {
        **meta,
        "steps": options.epochs * steps,
        "lr": lr,
        "seed": options.seed,
        "history": history,
    }
    (out / "training.json").write_text(json.dumps(info, indent=1), encoding="utf-8")
    return info


def mix(groups: list[tuple[list[Source], float]], draws: int = 2000) -> list[Source]:
    """One list to draw sources from uniformly, in which each group makes about its share
    (its weight over the weights' sum): small real sets are repeated, not drowned."""
    groups = [(g, w) for g, w in groups if g and w > 0]
    total = sum(w for _, w in groups)
    out: list[Source] = []
    for group, weight in groups:
        out += group * max(1, round(draws * weight / total / len(group)))
    return out


def train_default(
    photos: list[tuple[Path, LabeledImage]],
    out: Path,
    epochs: int,
    steps_per_epoch: int,
    renders: int,
    seed: int,
    device: str,
    resume: bool,
    progress: Callable[[int, int, float], None] | None = None,
    batch_size: int = 8,
    lr: float = 2e-3,
    shared: Path | None = None,
    second_detector: bool = False,
    width: int | None = None,
) -> dict[str, object]:
    """Fit the detector on labeled photos, ``shared``'s real material (see
    ``shared_sources``) and renders: real photos make four fifths of the batches, racks of
    cigarette packs a fifth so the many supermarket photos do not drown them. With
    ``second_detector``, a second one on the same material at four times the steps; ``width``:
    both detectors' (default: the shipped ``WIDTH``)."""
    from shelfwatch.vision.detector.train import WIDTH, train

    labeled = sources_from(photos)
    racks, shelves, voids = shared_sources(shared) if shared is not None else ([], [], [])
    if not any(len(s.boxes) for s in labeled + racks + shelves):
        raise ShelfWatchError("no usable annotations: the labels hold no product boxes")
    rendered = rendered_sources(renders, seed + 1)
    sources = mix([(labeled, 0.4), (racks, 0.2), (shelves, 0.35), (voids, 0.25), (rendered, 0.2)])
    args = dict(
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        device=device,
        resume=resume,
        progress=progress,
    )
    detectors = args | {"width": width or WIDTH}
    info = train(sources, out, **detectors)
    if second_detector:
        # Averaged with the first where the detector_ensemble setting asks for it. Alone it
        # trades racks for renders; the two together beat either. Four times the steps, not
        # twice: our held-out supermarket boxes and varied renders gain (see the README).
        longer = detectors | {"epochs": 4 * epochs}
        info["facings_long"] = train(sources, out, kind="facings-long", **longer)
    boxed = [s for s in shelves if s.shelf_region is not None]
    if boxed:  # the shelf-edge and upright nets, on the photos whose every shelf is boxed
        info["shelf_edges"] = train(boxed, out, kind="shelf-edges", **args)
        # Twice the steps at half the rate: at the detector's rate its loss stalled (2,600
        # steps: flat maps); see the README.
        slower = args | {"epochs": 2 * epochs, "lr": lr / 2}
        info["uprights"] = train(boxed, out, kind="uprights", **slower)
    if any(s.gaps is not None and len(s.gaps) for s in labeled + voids + rendered):
        # Twice the steps: real-gaps held out 0.578 -> 0.595 void recall at the same
        # precision, rendered captures' gap F1 0.964 -> 0.988 (see the README).
        info["void_mask"] = train(
            void_mask_sources(labeled, racks, shelves, voids, rendered),
            out,
            kind="void-mask",
            **(args | {"epochs": 2 * epochs}),
        )
    (out / "training.json").write_text(json.dumps(info, indent=1), encoding="utf-8")
    return info


def void_mask_sources(
    labeled: list[Source],
    racks: list[Source],
    shelves: list[Source],
    voids: list[Source],
    rendered: list[Source],
) -> list[Source]:
    """The void-mask net's mix: photos with every void boxed (real-gaps, renders, labels with
    voids) make most of it; the product boxes of the rest teach where no void is."""
    return mix([(labeled, 0.2), (voids, 0.7), (shelves, 0.2), (racks, 0.1), (rendered, 0.2)])
