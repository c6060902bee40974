"""Mask2Former / OneFormer universal segmentation as product instances.

Post-processing keeps the confident queries first and upsamples only those, and each only
inside its own box, straight to the photo's resolution. transformers' default
post-processing upsamples every query to full size, which costs about as much as the
forward pass on a CPU.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from shelfwatch.core.scene import Products, ShelfScene
from shelfwatch.vision.models.clipseg import scene_from_maps
from shelfwatch.vision.models.loading import load_pretrained, pick_device, require_torch

MODEL_TYPES = {"mask2former": "mask2former", "oneformer": "oneformer"}


class InstanceSegmenter:
    """Class-agnostic product instances (optionally only some labels of the checkpoint)."""

    def __init__(
        self,
        name: str,
        model: Any,
        processor: Any,
        device: Any = None,
        threshold: float = 0.5,
        labels: set[str] | None = None,
    ) -> None:
        self.torch = require_torch()
        self.name = name
        self.model = model
        self.processor = processor
        self.device = device or pick_device()
        self.model.to(self.device)
        self.threshold = threshold
        id2label = getattr(model.config, "id2label", {}) or {}
        self.keep_ids = None if not labels else {int(i) for i, n in id2label.items() if n in labels}
        self.model_version: str | None = None  # the checkpoint, when loaded by from_pretrained

    @classmethod
    def from_pretrained(
        cls,
        name: str,
        source: str,
        offline: bool = False,
        device: str = "auto",
        **model_kwargs: Any,
    ) -> InstanceSegmenter:
        if name == "oneformer":
            from transformers import OneFormerForUniversalSegmentation as Model
            from transformers import OneFormerProcessor as Processor
        else:
            from transformers import AutoImageProcessor as Processor
            from transformers import Mask2FormerForUniversalSegmentation as Model
        model, processor = load_pretrained(
            Model, Processor, source, MODEL_TYPES[name], offline, **model_kwargs
        )
        segmenter = cls(name, model, processor, pick_device(device))
        segmenter.model_version = source
        return segmenter

    def inputs(self, images: list[np.ndarray]) -> dict[str, Any]:
        """One padded batch for the model (photos may differ in size)."""
        if isinstance(images, np.ndarray):  # one photo's rows would become a huge "batch"
            raise TypeError("inputs() takes a list of photos")
        rgb = [cv2.cvtColor(image, cv2.COLOR_BGR2RGB) for image in images]
        if self.name == "oneformer":
            batch = self.processor(
                images=rgb, task_inputs=["instance"] * len(rgb), return_tensors="pt"
            )
        else:
            batch = self.processor(images=rgb, return_tensors="pt")
        return {k: v.to(self.device) for k, v in batch.items() if hasattr(v, "to")}

    def forward(self, inputs: dict[str, Any]) -> Any:
        with self.torch.inference_mode():
            return self.model(**inputs)

    def postprocess(
        self, outputs: Any, inputs: dict[str, Any], height: int, width: int, index: int = 0
    ) -> Products:
        """Confident queries of photo ``index`` of the batch as cropped masks at its resolution."""
        torch = self.torch
        b = index
        with torch.inference_mode():
            probs = outputs.class_queries_logits[b].softmax(-1)[:, :-1]
            scores, labels = probs.max(-1)
            keep = scores > self.threshold
            if self.keep_ids is not None:
                keep &= torch.tensor([int(v) in self.keep_ids for v in labels], device=keep.device)
            idx = torch.nonzero(keep).flatten()
            if len(idx) == 0:
                return Products()
            low = outputs.masks_queries_logits[b, idx].float()  # (k, h/4, w/4) of padded input
            pad_h, pad_w = inputs["pixel_values"].shape[-2:]
            mask = inputs.get("pixel_mask")
            in_h = int(mask[b].any(1).sum()) if mask is not None else pad_h
            in_w = int(mask[b].any(0).sum()) if mask is not None else pad_w
            # Low-res cell -> photo pixel scale (the input was resized, then padded).
            sy = height / (in_h * low.shape[1] / pad_h)
            sx = width / (in_w * low.shape[2] / pad_w)
            boxes, masks, kept_scores = [], [], []
            for k in range(len(idx)):
                on = low[k] > 0
                if not bool(on.any()):
                    continue
                ys, xs = torch.nonzero(on, as_tuple=True)
                ly1, ly2 = int(ys.min()), int(ys.max()) + 1
                lx1, lx2 = int(xs.min()), int(xs.max()) + 1
                x1, y1 = int(lx1 * sx), int(ly1 * sy)
                x2, y2 = min(width, int(round(lx2 * sx))), min(height, int(round(ly2 * sy)))
                if x2 - x1 < 2 or y2 - y1 < 2:
                    continue
                crop = low[k, ly1:ly2, lx1:lx2][None, None]
                up = torch.nn.functional.interpolate(
                    crop, size=(y2 - y1, x2 - x1), mode="bilinear", align_corners=False
                )
                masks.append((up[0, 0] > 0).cpu().numpy())
                boxes.append((x1, y1, x2, y2))
                kept_scores.append(float(scores[idx[k]]))
        return Products(
            xyxy=np.array(boxes).reshape(-1, 4), scores=np.array(kept_scores), masks=masks
        )

    def predict_batch(self, images: list[np.ndarray]) -> list[Products]:
        """Instances of several photos in one forward pass."""
        inputs = self.inputs(images)
        outputs = self.forward(inputs)
        return [
            self.postprocess(outputs, inputs, *image.shape[:2], index=i)
            for i, image in enumerate(images)
        ]

    def predict(self, image: np.ndarray) -> Products:
        return self.predict_batch([image])[0]

    def segment(self, image: np.ndarray) -> ShelfScene:
        return self.segment_batch([image])[0]

    def segment_batch(self, images: list[np.ndarray]) -> list[ShelfScene]:
        return [
            scene_from_maps(image, products, None, self.name)
            for image, products in zip(images, self.predict_batch(images), strict=True)
        ]
