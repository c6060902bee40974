"""``shelfwatch train``: fine-tune the default backend's facing detector on labeled photos."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

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
) -> dict[str, object]:
    """Fit the detector on labeled photos (weighted to half the batches) plus renders."""
    try:
        import torch

        from shelfwatch.vision.detector.train import train
    except ImportError:
        raise ShelfWatchError('training needs torch: pip install -e ".[models]"') from None
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
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
        seed=seed,
        device=device,
        resume=resume,
        progress=progress,
    )
