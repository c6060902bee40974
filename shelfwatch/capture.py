"""A capture (a video or several overlapping photos of one fixture) analysed as one fixture.

frames -> chosen by motion (video) -> registered into one plane (stitch) -> each frame
segmented -> products and gaps fused across frames, one instance each with a track id and
the frames that saw it -> shelves found on the stitched fixture -> SKUs, gap sizes and the
quality verdict as for a photo. The result is one ``ShelfScene`` in fixture pixels, so
compliance, KPIs and exports work on it unchanged. A photo is a capture of one frame.
No SQL here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from shelfwatch.core.errors import BadInputError, ShelfWatchError
from shelfwatch.core.imageio import load_image
from shelfwatch.core.masks import encode_rle, rle_to_text
from shelfwatch.core.scene import Gap, Products, Shelf, ShelfScene
from shelfwatch.pipeline import FixtureContext, finish
from shelfwatch.vision.base import Segmenter
from shelfwatch.vision.evaluation import iou_matrix
from shelfwatch.vision.fuse import Seen, confirmed, distinct, track, whole_views
from shelfwatch.vision.layout import (
    assign_shelves,
    edge_drop,
    join_gaps,
    keep_shelves,
    stocked,
)
from shelfwatch.vision.models.heatmaps import instances_at
from shelfwatch.vision.opencv_backend import detect_shelves
from shelfwatch.vision.stitch import (
    Fixture,
    edge_slopes,
    footprint,
    level,
    mosaic,
    register,
    to_fixture,
)
from shelfwatch.vision.video import Frame, choose_frames, is_video, read_video

GAP_IOU = 0.3  # the same empty space seen from two frames
COUNTED_BEFORE = 0.6  # share of the smaller box on a product an earlier part counted
MAX_SIZE_RATIO = 4.0  # ... and the two boxes' areas within this factor
REFER_THRESHOLD = 0.5  # a referred object's probability


@dataclass
class CaptureResult:
    """One fixture of a capture: the fused scene, the stitched image, the source frames
    used, and for each product track the source frames that saw it."""

    scene: ShelfScene
    image: np.ndarray
    frames_used: list[int]
    seen_by: list[list[int]] = field(default_factory=list)  # per product, source frames
    transforms: list[np.ndarray] = field(default_factory=list)  # frame -> fixture pixels
    referred: dict[str, Any] | None = None  # a prompt's masks per frame, with track ids

    def to_json(self, name: str) -> dict[str, object]:
        """The photo record (``analyze --json``) plus ``frames_used``, ``fixture_size`` and
        each product's ``track`` and ``frames``."""
        out = self.scene.to_json(name)
        for i, product in enumerate(out["products"]):  # type: ignore[union-attr]
            product["track"] = int(self.scene.products.track[i])
            product["frames"] = self.seen_by[i]
        out["frames_used"] = self.frames_used
        out["fixture_size"] = [self.scene.width, self.scene.height]
        if self.referred is not None:
            out["referred"] = self.referred
        return out


def load_frames(paths: list[Path]) -> list[Frame]:
    """A capture's frames: the chosen frames of one video, or photos in the order given."""
    if len(paths) == 1 and is_video(paths[0]):
        return choose_frames(read_video(paths[0]))
    if any(is_video(p) for p in paths):
        raise BadInputError(", ".join(map(str, paths)), "a capture is one video or photos")
    return [Frame(i, float(i), load_image(p)) for i, p in enumerate(paths)]


def analyze_capture(
    frames: list[Frame],
    segmenter: Segmenter,
    context: FixtureContext | None = None,
    prompt: str | None = None,
    count_once: bool = True,
) -> list[CaptureResult]:
    """One result per fixture: frames that do not overlap the ones before are a new one.

    ``prompt`` (a backend with a referring model, such as ``clipseg``): that text's masks in
    every chosen frame, linked across frames by track id (``CaptureResult.referred``).
    ``count_once``: where the walk was cut between views that overlap, a part leaves out
    the products the parts before it counted (so the parts add up); off, each part holds
    everything it saw (one part kept on its own, as the worker does).
    """
    context = context or FixtureContext()
    referrer = getattr(segmenter, "referrer", None)
    if prompt is not None and referrer is None:
        raise ShelfWatchError(
            f"--prompt needs a backend with a referring model (clipseg, fused), not "
            f"{getattr(segmenter, 'name', segmenter)!r}"
        )
    images = [f.image for f in frames]
    scenes = [segmenter.segment(image) for image in images]
    results: list[CaptureResult] = []
    counted = np.zeros((0, 4))  # products counted so far in linked parts, in the last's plane
    for fixture in register(images):
        chosen = [frames[i] for i in fixture.frames]
        prior = None
        if count_once and results and fixture.link is not None:
            # The previous parts' products in this part's first frame: that plane -> the
            # linked frame -> (the link, backwards) this part's first frame.
            linked = results[-1].transforms[fixture.linked_to]
            back = np.linalg.inv(fixture.link) @ np.linalg.inv(linked)
            prior = to_fixture(counted, back)
        result = _fuse(
            fixture, chosen, [scenes[i] for i in fixture.frames], segmenter, context, prior
        )
        counted = result.scene.products.xyxy.astype(np.float64)
        if prior is not None:
            counted = np.concatenate([counted, to_fixture(prior, result.transforms[0])])
        if prompt is not None:
            result.referred = refer(fixture, chosen, referrer, prompt)
        results.append(result)
    return results


def refer(fixture: Fixture, frames: list[Frame], referrer: Any, prompt: str) -> dict[str, Any]:
    """The prompt's instances in each frame (CLIPSeg per frame, masks upsampled inside their
    boxes), with a track id shared by the views of one object (fused in the fixture plane)."""
    maps = referrer.model_maps([f.image for f in frames], [prompt])
    parts = [
        instances_at(m[0], f.image.shape[:2], REFER_THRESHOLD)
        for f, m in zip(frames, maps, strict=True)
    ]
    views = _views(fixture, frames, parts, drop_cut=False)
    ids = {
        member: n for n, t in enumerate(track(views)) for member in t.members
    }  # (view, box) -> track
    out = []
    for v, (frame, part) in enumerate(zip(frames, parts, strict=True)):
        out.append(
            {
                "frame": frame.index,
                "instances": [
                    {
                        "track": ids[(v, b)],
                        "bbox": [int(x) for x in part.xyxy[b]],
                        "score": round(float(part.scores[b]), 4),
                        "mask": rle_to_text(encode_rle(part.box_mask(b))),
                    }
                    for b in range(len(part))
                ],
            }
        )
    return {"prompt": prompt, "frames": out}


def _views(
    fixture: Fixture, frames: list[Frame], parts: list[Products], drop_cut: bool = True
) -> list[Seen]:
    views = []
    for frame, t, part in zip(frames, fixture.transforms, parts, strict=True):
        h, w = frame.image.shape[:2]
        centres = part.centers
        central = (
            np.hypot((centres[:, 0] - w / 2) / w, (centres[:, 1] - h / 2) / h) * 2
            if len(part)
            else np.zeros(0)
        )
        views.append(
            Seen(
                frame.index,
                to_fixture(part.xyxy, t),
                central,
                part.scores,
                part.masks,
                footprint(t, frame.image.shape),
                part.xyxy.astype(np.float64),
            )
        )
    sizes = [(f.image.shape[1], f.image.shape[0]) for f in frames]
    return whole_views(views, sizes) if drop_cut and len(views) > 1 else views


def _unsure(
    fixture: Fixture, scenes: list[ShelfScene], size: tuple[int, int], counted: np.ndarray
) -> Products:
    """Every frame's unsure boxes (``ShelfScene.candidates``) in the stitched picture, less
    those on a product an earlier part of the walk counted. A pack seen unsure in several
    frames is several boxes here: the planogram takes at most one box per pack
    (``planogram.confirm``)."""
    width, height = size
    boxes, scores = [], []
    for t, scene in zip(fixture.transforms, scenes, strict=True):
        if len(scene.candidates):
            boxes.append(to_fixture(scene.candidates.xyxy, t))
            scores.append(scene.candidates.scores)
    if not boxes:
        return Products()
    xyxy = np.clip(np.round(np.concatenate(boxes)), 0, [width, height, width, height])
    keep = (xyxy[:, 2] - xyxy[:, 0] >= 2) & (xyxy[:, 3] - xyxy[:, 1] >= 2)
    keep &= ~_counted_before(xyxy, counted)
    return Products(xyxy=xyxy[keep], scores=np.concatenate(scores)[keep])


def _counted_before(boxes: np.ndarray, counted: np.ndarray) -> np.ndarray:
    """Per box, whether it lies on a product an earlier part of the walk counted: mostly
    inside it or it inside this one (a part of the walk sees a product cut by its border
    that the other sees whole), the two of about one size (a box carried through a steep
    chain of views can grow huge)."""
    if not len(boxes) or not len(counted):
        return np.zeros(len(boxes), bool)
    ratio = _areas(boxes)[:, None] / np.maximum(_areas(counted)[None, :], 1e-9)
    alike = (ratio > 1 / MAX_SIZE_RATIO) & (ratio < MAX_SIZE_RATIO)
    on = iou_matrix(boxes, counted, over="smaller") >= COUNTED_BEFORE
    return (on & alike).any(axis=1)


def _fuse(
    fixture: Fixture,
    frames: list[Frame],
    scenes: list[ShelfScene],
    segmenter: Segmenter,
    context: FixtureContext,
    prior: np.ndarray | None = None,
) -> CaptureResult:
    """One fixture's fused scene. ``prior``: where the walk was cut although the views
    overlap, the products the parts before counted, as boxes in this part's first frame; a
    product that lies on one of them was counted there and is left out here."""
    images = [f.image for f in frames]
    if len(frames) > 1:  # level the chain: the shelf edges run straight across a fixture
        level(fixture, images, edge_slopes(fixture, images, [s.shelves for s in scenes]))
    stitched = mosaic(fixture, images)
    height, width = stitched.shape[:2]
    views = _views(fixture, frames, [s.products for s in scenes])
    tracks = confirmed(track(views), views)
    if len(views) > 1:  # one frame's boxes are already one per product (the detector's NMS)
        tracks = distinct(tracks, views)
    here = to_fixture(prior, fixture.transforms[0]) if prior is not None else np.zeros((0, 4))
    if tracks:
        seen = _counted_before(np.array([t.box for t in tracks]).reshape(-1, 4), here)
        tracks = [t for t, dup in zip(tracks, seen, strict=True) if not dup]
    boxes, scores, masks, seen_by = [], [], [], []
    with_masks = all(v.masks is not None for v in views)
    for t in sorted(tracks, key=lambda t: (t.box[0], t.box[1])):
        vi, bi = min(t.members, key=lambda m: views[m[0]].centrality[m[1]])
        box = np.clip(np.round(t.box), 0, [width, height, width, height]).astype(int)
        if box[2] - box[0] < 2 or box[3] - box[1] < 2:
            continue  # outside the stitched picture after levelling
        boxes.append(box)
        scores.append(float(np.mean([views[v].scores[b] for v, b in t.members])))
        seen_by.append(sorted({views[v].frame for v, _ in t.members}))
        if with_masks:
            mask = views[vi].masks[bi].astype(np.uint8)  # type: ignore[index]
            size = (box[2] - box[0], box[3] - box[1])
            masks.append(
                cv2.resize(mask, size, interpolation=cv2.INTER_NEAREST) > 0
                if mask.size
                else np.ones(size[::-1], bool)
            )
    products = Products(
        xyxy=np.array(boxes).reshape(-1, 4),
        scores=np.array(scores),
        masks=masks if with_masks else None,
        track=np.arange(len(boxes)),
    )
    shelves = detect_shelves(stitched)
    products = assign_shelves(products, shelves)
    gaps = _fused_gaps(fixture, frames, scenes, products, shelves)
    shelves, products, gaps = _stocked(shelves, products, gaps)
    unsure = _unsure(fixture, scenes, (width, height), here)
    warnings = [w for s in scenes for w in s.warnings if "seems rotated" in w][:1]
    scene = ShelfScene(
        width=width,
        height=height,
        shelves=shelves,
        products=products,
        gaps=gaps,
        backend=scenes[0].backend if scenes else "",
        warnings=warnings,
        candidates=assign_shelves(unsure, shelves),
    )
    scene = finish(stitched, scene, segmenter, context)
    return CaptureResult(scene, stitched, [f.index for f in frames], seen_by, fixture.transforms)


def _areas(boxes: np.ndarray) -> np.ndarray:
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def _stocked(
    shelves: list[Shelf], products: Products, gaps: list[Gap]
) -> tuple[list[Shelf], Products, list[Gap]]:
    """Only shelves that hold a product or a gap (a fixture's top rail or a seam of the
    stitched image is a strong line with nothing on it), numbered again from 1."""
    return keep_shelves(shelves, products, gaps, stocked(shelves, products, gaps))


def _fused_gaps(
    fixture: Fixture,
    frames: list[Frame],
    scenes: list[ShelfScene],
    products: Products,
    shelves: list[Shelf],
) -> list[Gap]:
    """Gaps seen by at least half the frames that held them, on a shelf, off every fused
    product."""
    parts = [Products(xyxy=np.array([g.bbox for g in s.gaps]).reshape(-1, 4)) for s in scenes]
    views = _views(fixture, frames, parts)
    # A bay's columns: its shelves' edges as far as any of them was found (on a stitched
    # fixture one edge is often found only in part, broken by overhanging packs or seams,
    # and an empty stretch at its end is still on the shelf).
    bays: dict[int, tuple[int, int]] = {}
    for s in shelves:
        if s.x2 > s.x1:
            lo, hi = bays.get(s.bay, (s.x1, s.x2))
            bays[s.bay] = (min(lo, s.x1), max(hi, s.x2))
    out = []
    for t in confirmed(track(views, GAP_IOU), views):
        box = t.box
        covered = iou_matrix(box[None], products.xyxy.astype(float))
        if covered.size and covered.max() > 0.3:
            continue  # a product found from another frame: not empty
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        on = [
            s
            for s in shelves
            if s.y1 <= cy - edge_drop(s, np.array([cx]))[0] <= s.y2
            and (s.bay not in bays or bays[s.bay][0] <= cx <= bays[s.bay][1])
        ]
        if on:  # empty space off every shelf (a side panel, the floor) is no gap
            out.append(Gap(on[0].index, tuple(int(round(v)) for v in box)))  # type: ignore[arg-type]
    # Frames see one stretch to different lengths (cut by their borders), so its tracks
    # may overlap: one gap.
    return join_gaps(out)
