"""Fused: instances from an instance model, SKUs and gaps from referring heatmaps."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from shelfwatch.core.imageio import load_image
from shelfwatch.core.scene import ShelfScene
from shelfwatch.vision.models.clipseg import ClipSegReferrer, scene_from_maps
from shelfwatch.vision.models.instances import InstanceSegmenter

MIN_PROMPT_SCORE = 0.5


class FusedSegmenter:
    name = "fused"

    def __init__(
        self,
        instances: InstanceSegmenter,
        referrer: ClipSegReferrer,
        gap_prompt: str = "empty shelf",
    ) -> None:
        self.instances = instances
        self.referrer = referrer
        self.gap_prompt = gap_prompt

    def segment(self, image: np.ndarray) -> ShelfScene:
        return self.segment_batch([image])[0]

    def segment_batch(self, images: list[np.ndarray]) -> list[ShelfScene]:
        products = self.instances.predict_batch(images)
        gap_maps = self.referrer.heatmaps_batch(images, [self.gap_prompt])
        return [
            scene_from_maps(image, p, g[0], self.name)
            for image, p, g in zip(images, products, gap_maps, strict=True)
        ]

    def identify(
        self, image: np.ndarray, scene: ShelfScene, catalog: list[Any], catalog_dir: Path | None
    ) -> ShelfScene:
        """Label instances by the catalog's text prompts, else by its reference images."""
        prompts: list[str | np.ndarray] = []
        skus: list[str] = []
        for item in catalog:
            if item.prompt:
                prompts.append(item.prompt)
                skus.append(item.sku)
            elif item.reference_image and catalog_dir is not None:
                ref = catalog_dir / item.reference_image
                if ref.exists():
                    prompts.append(load_image(ref))
                    skus.append(item.sku)
        p = scene.products
        if not prompts or len(p) == 0:
            return scene
        maps = self.referrer.heatmaps(image, prompts)
        labels: list[str | None] = []
        scores = np.zeros(len(p), dtype=np.float32)
        for i in range(len(p)):
            full = p.full_mask(i, scene.height, scene.width)
            inside = maps[:, full].mean(axis=1) if full.any() else np.zeros(len(prompts))
            best = int(np.argmax(inside))
            scores[i] = float(inside[best])
            labels.append(skus[best] if inside[best] >= MIN_PROMPT_SCORE else None)
        return replace(
            scene,
            products=p.labelled(labels, scores),
        )
