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


def sources_from(photos: list[tuple[Path, LabeledImage]]) -> list[Source]:
    """Detector training sources: product boxes, crowd boxes as areas to ignore."""
    out = []
    for file, image in photos:
        products = [o.bbox for o in image.objects if o.category != GAP and not o.iscrowd]
        ignore = [o.bbox for o in image.objects if o.iscrowd]
        if not products:
            continue
        out.append(
            Source(
                load_image(file),
                np.array(products, dtype=np.float32),
                np.array(ignore, dtype=np.float32).reshape(-1, 4),
            )
        )
    return out


def rendered_sources(count: int, seed: int) -> list[Source]:
    """``count`` rendered photos with exact boxes (the renderer's own truth)."""
    from shelfwatch.synth import SynthConfig, render_dataset

    if count <= 0:
        return []
    with tempfile.TemporaryDirectory() as tmp:
        render_dataset(Path(tmp), SynthConfig(photos=count, seed=seed), progress=False)
        coco = read_coco(Path(tmp) / "annotations.json")
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
    if not photos:
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
) -> dict[str, object]:
    """Fit the detector on labeled photos (weighted to half the batches) plus renders."""
    from shelfwatch.vision.detector.train import train

    labeled = sources_from(photos)
    if not labeled:
        raise ShelfWatchError("no usable annotations: the labels hold no product boxes")
    rendered = rendered_sources(renders, seed + 1)
    # Labeled photos are few and real: repeat them so they make at least half of the batches.
    repeat = max(1, -(-len(rendered) // len(labeled)))
    return train(
        labeled * repeat + rendered,
        out,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        device=device,
        resume=resume,
        progress=progress,
    )
