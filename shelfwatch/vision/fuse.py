"""Detections of overlapping frames fused into one instance per physical object.

After registration the fixture is static in one plane, so following a product from frame
to frame is an assignment problem in that plane, not a motion-prediction one: each frame's
boxes are matched one-to-one (Hungarian, scipy) to the tracks seen so far by IoU, or by a
box lying mostly inside the other (the detector boxed only part of a tall product in one
frame); unmatched boxes start tracks. A track is kept when the frames that saw it are at
least half of the frames whose view held it whole (a one-frame false detection in an area
three frames saw is dropped; a product at the walk's end seen by its one frame is kept),
and of two kept tracks over one product the one more frames saw.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment

from shelfwatch.vision.evaluation import iou_matrix as iou

MATCH_IOU = 0.4  # same product in two registered frames (boxes shift by parallax)
# Front faces do not overlap in the fixture plane: a box mostly inside another frame's box is
# the same product seen in part, not a second one.
MATCH_INSIDE = 0.6


@dataclass
class Seen:
    """One frame's view of objects: boxes in fixture pixels, how central each is in its
    frame (0 = centre, 1 = corner), scores and box-local masks (or None)."""

    frame: int
    boxes: np.ndarray
    centrality: np.ndarray
    scores: np.ndarray
    masks: list[np.ndarray] | None
    outline: np.ndarray  # the frame's footprint in fixture pixels (4, 2)
    local: np.ndarray  # the same boxes in the frame's own pixels


@dataclass
class Track:
    members: list[tuple[int, int]] = field(default_factory=list)  # (view index, box index)
    box: np.ndarray = field(default_factory=lambda: np.zeros(4))


def track(views: list[Seen], min_iou: float = MATCH_IOU) -> list[Track]:
    """Tracks over the views in walk order; each track's box is the median of its views'
    boxes (one frame's box that is a little too tall or short does not decide it)."""
    tracks: list[Track] = []
    for v, view in enumerate(views):
        current = np.array([t.box for t in tracks]).reshape(-1, 4)
        overlap = iou(view.boxes, current)
        inside = iou(view.boxes, current, over="smaller")
        same = (overlap >= min_iou) | (inside >= MATCH_INSIDE)
        matched: set[int] = set()
        if overlap.size:
            rows, cols = linear_sum_assignment(-(overlap + inside))
            for r, c in zip(rows, cols, strict=True):
                if same[r, c]:
                    tracks[c].members.append((v, int(r)))
                    matched.add(int(r))
        for r in range(len(view.boxes)):
            if r not in matched:
                tracks.append(Track(members=[(v, r)]))
        for t in tracks:
            t.box = np.median([views[vi].boxes[bi] for vi, bi in t.members], axis=0)
    return tracks


def distinct(tracks: list[Track], views: list[Seen]) -> list[Track]:
    """One track per product: of two tracks that overlap like one product's views (the
    detector boxed a tall product's upper and lower part in different frames, or twice in
    one), the one more frames saw (then the surer one)."""

    def weight(t: Track) -> tuple[int, float]:
        return len({v for v, _ in t.members}), float(
            np.mean([views[v].scores[b] for v, b in t.members])
        )

    kept: list[Track] = []
    for t in sorted(tracks, key=weight, reverse=True):
        if kept:
            boxes = np.array([k.box for k in kept])
            if (iou(t.box[None], boxes) >= MATCH_IOU).any() or (
                iou(t.box[None], boxes, over="smaller") >= MATCH_INSIDE
            ).any():
                continue
        kept.append(t)
    return kept


def whole_views(views: list[Seen], frame_sizes: list[tuple[int, int]]) -> list[Seen]:
    """Each view without the boxes cut by its frame's border that another view holds whole
    (a product half out of one frame is counted from the frame that sees all of it)."""
    out = []
    for v, (view, (w, h)) in enumerate(zip(views, frame_sizes, strict=True)):
        others = views[:v] + views[v + 1 :]
        keep = np.array(
            [
                not _cut(c, w, h) or seen_whole_by(b, others) == 0
                for b, c in zip(view.boxes, view.local, strict=True)
            ],
            dtype=bool,
        ).reshape(-1)
        out.append(
            Seen(
                view.frame,
                view.boxes[keep],
                view.centrality[keep],
                view.scores[keep],
                None if view.masks is None else [view.masks[i] for i in np.flatnonzero(keep)],
                view.outline,
                view.local[keep],
            )
        )
    return out


def _cut(box: np.ndarray, w: int, h: int, margin: float = 3.0) -> bool:
    return bool(
        box[0] <= margin or box[1] <= margin or box[2] >= w - margin or box[3] >= h - margin
    )


def seen_whole_by(box: np.ndarray, views: list[Seen]) -> int:
    """How many views held the box entirely."""
    corners = [(box[0], box[1]), (box[2], box[1]), (box[2], box[3]), (box[0], box[3])]
    n = 0
    for view in views:
        outline = view.outline.astype(np.float32).reshape(-1, 1, 2)
        if all(cv2.pointPolygonTest(outline, (float(x), float(y)), False) >= 0 for x, y in corners):
            n += 1
    return n


def confirmed(tracks: list[Track], views: list[Seen]) -> list[Track]:
    """Tracks seen by at least half the views that held them whole."""
    keep = []
    for t in tracks:
        could = max(1, seen_whole_by(t.box, views))
        if len({v for v, _ in t.members}) * 2 >= could:
            keep.append(t)
    return keep
