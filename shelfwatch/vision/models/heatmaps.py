"""Referring heatmaps to instance masks: threshold, connected components, watershed split."""

from __future__ import annotations

import cv2
import numpy as np

from shelfwatch.core.scene import Products


def heatmap_to_instances(
    prob: np.ndarray, threshold: float = 0.5, min_area: int = 64, split_ratio: float = 0.55
) -> Products:
    """Instances of a probability map at image resolution.

    Touching facings of one SKU form one blob. The heatmap dips at the seams between packs
    and the blob narrows there, so cores that are both confident (above the midpoint between
    the threshold and the blob's peak) and interior (above ``split_ratio`` of its peak
    distance) seed a watershed that splits the blob into packs.
    """
    fg = (prob > threshold).astype(np.uint8)
    if fg.sum() == 0:
        return Products()
    fg = cv2.morphologyEx(fg, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    count, blobs = cv2.connectedComponents(fg)
    dist = cv2.distanceTransform(fg, cv2.DIST_L2, 5)
    markers = np.zeros(fg.shape, np.int32)
    next_id = 1
    for blob in range(1, count):
        inside = blobs == blob
        if inside.sum() < min_area:
            continue
        peak = float(dist[inside].max())
        level = threshold + 0.5 * (float(prob[inside].max()) - threshold)
        cores = (inside & (dist > split_ratio * peak) & (prob > level)).astype(np.uint8)
        n, core_labels = cv2.connectedComponents(cores)
        for c in range(1, n):
            markers[core_labels == c] = next_id
            next_id += 1
    if next_id == 1:
        return Products()
    background = next_id
    markers[fg == 0] = background  # seeded, so the flood never leaves the blobs
    shade = cv2.cvtColor((np.clip(prob, 0, 1) * 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)
    cv2.watershed(shade, markers)
    boxes, masks, scores = [], [], []
    for label in range(1, background):
        m = markers == label
        area = int(m.sum())
        if area < min_area:
            continue
        ys, xs = np.nonzero(m)
        x1, y1, x2, y2 = int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1
        boxes.append((x1, y1, x2, y2))
        masks.append(m[y1:y2, x1:x2])
        scores.append(float(prob[m].mean()))
    return Products(xyxy=np.array(boxes).reshape(-1, 4), scores=np.array(scores), masks=masks)


def instances_at(prob: np.ndarray, size: tuple[int, int], threshold: float = 0.5) -> Products:
    """Instances of a low-resolution probability map, in a photo of ``size`` (h, w): found at
    the map's resolution, each mask upsampled only inside its own box."""
    h, w = size
    sy, sx = h / prob.shape[0], w / prob.shape[1]
    small = heatmap_to_instances(prob, threshold, min_area=max(4, int(64 / (sx * sy))))
    boxes, masks = [], []
    for (x1, y1, x2, y2), mask in zip(small.xyxy.astype(int), small.masks, strict=True):
        bx1, by1 = int(np.floor(x1 * sx)), int(np.floor(y1 * sy))
        bx2, by2 = min(w, int(np.ceil(x2 * sx))), min(h, int(np.ceil(y2 * sy)))
        # The instance's own region (nearest: neighbours stay apart) where the upsampled
        # probability is above the threshold (smooth edges).
        own = cv2.resize(
            mask.astype(np.uint8), (bx2 - bx1, by2 - by1), interpolation=cv2.INTER_NEAREST
        )
        local = cv2.resize(
            prob[y1:y2, x1:x2], (bx2 - bx1, by2 - by1), interpolation=cv2.INTER_LINEAR
        )
        boxes.append((bx1, by1, bx2, by2))
        masks.append((own > 0) & (local > threshold))
    return Products(
        xyxy=np.array(boxes, dtype=float).reshape(-1, 4), scores=small.scores, masks=masks
    )
