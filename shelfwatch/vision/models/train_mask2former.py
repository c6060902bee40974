"""Fine-tune Mask2Former on labeled photos: every product is one instance of one class.

transformers computes Mask2Former's own loss (Hungarian matching, class cross-entropy, mask
BCE and dice on sampled points) when given ``mask_labels`` and ``class_labels``; the image
processor makes both from an instance map, resized and padded exactly as the photo is.
SKU identity is left to the SKU step (colour signatures, CLIPSeg prompts), so the model
learns one class, "product", and a checkpoint with other classes gets a new class head.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from shelfwatch.core.errors import ShelfWatchError
from shelfwatch.core.imageio import load_image
from shelfwatch.labels.coco import GAP, LabeledImage, object_mask
from shelfwatch.vision.fitting import Plan, Progress, fit
from shelfwatch.vision.models.instances import InstanceSegmenter

PRODUCT_CLASS = {"num_labels": 1, "id2label": {0: "product"}, "label2id": {"product": 0}}


def instance_map(image: LabeledImage) -> np.ndarray:
    """(H, W) int32: 0 where no product, else the product's index + 1 (later ones on top)."""
    out = np.zeros((image.height, image.width), np.int32)
    products = [o for o in image.objects if o.category != GAP and not o.iscrowd]
    for n, obj in enumerate(products, start=1):
        out[object_mask(obj, image.height, image.width)] = n
    return out


def train_mask2former(
    segmenter: InstanceSegmenter,
    photos: list[tuple[Path, LabeledImage]],
    out_dir: Path,
    plan: Plan,
    meta: dict[str, Any],
    batch_size: int = 2,
    progress: Progress | None = None,
) -> list[dict[str, float]]:
    """Fit the whole model on the photos' product instances; saved with ``save_pretrained``."""
    model, processor, device = segmenter.model, segmenter.processor, segmenter.device
    usable = [
        (file, image)
        for file, image in photos
        if any(o.category != GAP and not o.iscrowd for o in image.objects)
    ]
    if not usable:
        raise ShelfWatchError("no usable annotations: the labels hold no product instances")

    def step_loss(rng: np.random.Generator) -> torch.Tensor:
        images, maps = [], []
        for i in rng.integers(len(usable), size=batch_size):
            file, labeled = usable[int(i)]
            rgb, ids = cv2.cvtColor(load_image(file), cv2.COLOR_BGR2RGB), instance_map(labeled)
            if rng.random() < 0.5:
                rgb, ids = rgb[:, ::-1], ids[:, ::-1]
            images.append(np.ascontiguousarray(rgb))
            maps.append(np.ascontiguousarray(ids))
        batch = processor(
            images=images,
            segmentation_maps=maps,
            instance_id_to_semantic_id=[{int(k): 0 for k in np.unique(m) if k} for m in maps],
            ignore_index=0,  # 0 is "no product": background, and the padding
            return_tensors="pt",
        )
        outputs = model(
            pixel_values=batch["pixel_values"].to(device),
            pixel_mask=batch["pixel_mask"].to(device),
            mask_labels=[m.to(device) for m in batch["mask_labels"]],
            class_labels=[c.to(device) for c in batch["class_labels"]],
        )
        return outputs.loss

    history = fit(model, step_loss, out_dir, plan, meta, progress)
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    return history
