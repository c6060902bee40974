"""Frames of a walk registered into one fixture plane, and the stitched fixture.

Consecutive frames are matched with ORB features and a RANSAC homography (a fixture front
is a plane, so one homography maps two views of it exactly); the transforms are chained
into the plane of each run's middle frame. A similarity (4 degrees of freedom) was tried first and
drifted 1-2 cm over a 3 m bay on rendered walks (it cannot follow the phone's keystone),
the homography 0.03-0.2 cm. A link that zooms implausibly is refused, so one bad fit
cannot bend the rest; frames that match nothing start a new fixture.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import lru_cache

import cv2
import numpy as np

MATCH_SIDE = 800  # features are found on frames scaled to this longer side
MIN_INLIERS = 25  # fewer RANSAC inliers: the two frames do not overlap
RATIO_TEST = 0.8  # Lowe's ratio test at his paper's value (0.75 left blurred walks unlinked)
MAX_ZOOM_STEP = 2.0  # a link that zooms more than this between chosen frames is wrong ...
SURE_INLIERS = 4 * MIN_INLIERS  # ... unless this many matches agree (a step toward the shelf)
MAX_ZOOM = 3.0  # never more
LEVEL_DEG = 0.3  # shelf edges sloping less than this are level enough
MAX_AREA_RATIO = 3.0  # a frame mapped into the fixture plane keeps about its own size
BRIDGE_FRAMES = 6  # a part that matched nothing next to it tries this many earlier frames


@dataclass
class Fixture:
    """Frames registered into one plane: ``transforms[i]`` maps frame ``frames[i]``'s pixels
    into fixture pixels (3x3); ``size`` is the fixture's (width, height)."""

    frames: list[int] = field(default_factory=list)
    transforms: list[np.ndarray] = field(default_factory=list)
    size: tuple[int, int] = (0, 0)
    # Where the walk was cut although the views overlap (the chain would no longer look
    # like a flat front, or the next frame matched too little but an earlier one matches):
    # the homography from this fixture's first frame to the previous fixture's frame
    # ``linked_to`` (its position there), so what both parts saw is counted once.
    link: np.ndarray | None = None
    linked_to: int = -1


def _features(image: np.ndarray, orb: cv2.ORB) -> tuple[list, np.ndarray | None, float, bytes]:
    """ORB keypoints and descriptors of a frame, their scale, and a digest of the frame's
    pixels that orders any two frames the same way whichever way the walk went."""
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    scale = min(1.0, MATCH_SIDE / max(gray.shape))
    small = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    keypoints, descriptors = orb.detectAndCompute(small, None)
    digest = hashlib.blake2b(np.ascontiguousarray(small).tobytes(), digest_size=16).digest()
    return keypoints, descriptors, scale, digest


def _link(a: tuple, b: tuple, matcher: cv2.BFMatcher) -> tuple[np.ndarray | None, int]:
    """The homography taking frame b's pixels onto frame a's, and its RANSAC inliers.

    Matching and RANSAC are not symmetric (b's features query a's; the fit minimises the
    error in a's pixels), so each pair is estimated in the order of its frames' digests and
    inverted where needed: a walk and the same walk reversed see exactly the same links, not
    two estimates a hair apart on either side of a threshold."""
    if a[3] > b[3]:
        matrix, count = _estimate(b, a, matcher)
        return (np.linalg.inv(matrix) if matrix is not None else None), count
    return _estimate(a, b, matcher)


def _estimate(a: tuple, b: tuple, matcher: cv2.BFMatcher) -> tuple[np.ndarray | None, int]:
    (ka, da, sa, _), (kb, db, sb, _) = a, b
    if da is None or db is None or len(ka) < 8 or len(kb) < 8:
        return None, 0
    pairs = matcher.knnMatch(db, da, k=2)
    good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < RATIO_TEST * p[1].distance]
    if len(good) < MIN_INLIERS:
        return None, len(good)
    src = np.float32([kb[m.queryIdx].pt for m in good]) / sb
    dst = np.float32([ka[m.trainIdx].pt for m in good]) / sa
    matrix, inliers = cv2.findHomography(src, dst, cv2.RANSAC, 4.0, maxIters=4000)
    count = int(inliers.sum()) if inliers is not None else 0
    if matrix is None or count < MIN_INLIERS:
        return None, count
    zoom = float(np.sqrt(abs(np.linalg.det(matrix[:2, :2]))))
    limit = MAX_ZOOM if count >= SURE_INLIERS else MAX_ZOOM_STEP
    if not 1 / limit < zoom < limit:
        return None, count
    return matrix, count


def register(images: list[np.ndarray]) -> list[Fixture]:
    """Frames registered into fixtures: consecutive frames are linked (feature matches, a
    RANSAC homography); a run of linked frames is one fixture in the plane of its middle
    frame, so a walk and the same walk reversed give the same parts. Where some frame would
    no longer look like a flat front in that plane (a walk that turns down the aisle), the
    run is cut at its weakest link (fewest inliers) and each side tried again. Frames that
    do not overlap are never fused."""
    orb = cv2.ORB_create(nfeatures=3000)
    matcher = cv2.BFMatcher(cv2.NORM_HAMMING)
    features = [_features(image, orb) for image in images]
    # links[i]: frame i+1 -> frame i, and its inliers (None where they do not overlap).
    links = [_link(features[i], features[i + 1], matcher) for i in range(len(images) - 1)]
    runs: list[list[int]] = [[0]] if images else []
    for i, (link, _) in enumerate(links):
        if link is None:
            runs.append([i + 1])
        else:
            runs[-1].append(i + 1)
    fixtures = [f for run in runs for f in _anchor(run, links, images)]
    for before, fixture in zip(fixtures, fixtures[1:], strict=False):
        if fixture.link is None:
            _bridge(before, fixture, features, matcher, images)
    for fixture in fixtures:
        _place(fixture, [images[i] for i in fixture.frames])
    return fixtures


def _bridge(
    before: Fixture,
    fixture: Fixture,
    features: list[tuple],
    matcher: cv2.BFMatcher,
    images: list[np.ndarray],
) -> None:
    """Link a part whose first frame matched too little of the frame before it to a
    nearby earlier frame of the previous part (a walk that bobs or zooms: the frame before
    looked elsewhere, the one before that saw the same products), so the products both
    parts saw are counted once. The parts stay apart: one link is no chain."""
    first = fixture.frames[0]
    for position in range(len(before.frames) - 2, -1, -1)[:BRIDGE_FRAMES]:
        link, _ = _link(features[before.frames[position]], features[first], matcher)
        if link is not None and plausible(link, images[first].shape):
            fixture.link, fixture.linked_to = link, position
            return


def _anchor(
    run: list[int], links: list[tuple[np.ndarray | None, int]], images: list[np.ndarray]
) -> list[Fixture]:
    """A run of linked frames as fixtures: one in its middle frame's plane when every frame
    stays plausible there (either middle of an even run), else cut at the weakest link."""
    middles = sorted({run[(len(run) - 1) // 2], run[len(run) // 2]})
    for ref in middles:
        transforms = _chain(run, ref, links)
        if all(plausible(t, images[i].shape) for i, t in zip(run, transforms, strict=True)):
            return [Fixture(frames=list(run), transforms=transforms)]
    # The weakest link; ties go to the one nearest the middle (the same cut either way).
    cut = min(
        range(1, len(run)),
        key=lambda k: (links[run[k] - 1][1], abs(2 * k - len(run))),
    )
    right = _anchor(run[cut:], links, images)
    right[0].link = links[run[cut] - 1][0]  # to the left part's last frame
    return _anchor(run[:cut], links, images) + right


def _chain(
    run: list[int], ref: int, links: list[tuple[np.ndarray | None, int]]
) -> list[np.ndarray]:
    """Each frame of ``run`` -> the ``ref`` frame's pixels, through the links between."""
    out = {ref: np.eye(3)}
    for i in range(ref + 1, run[-1] + 1):  # later frames: i -> i-1 -> ... -> ref
        out[i] = out[i - 1] @ links[i - 1][0]  # type: ignore[operator]
    for i in range(ref - 1, run[0] - 1, -1):  # earlier frames: i -> i+1 -> ... -> ref
        out[i] = out[i + 1] @ np.linalg.inv(links[i][0])  # type: ignore[arg-type]
    return [out[i] for i in run]


def plausible(t: np.ndarray, shape: tuple[int, ...]) -> bool:
    """A frame placed in the fixture plane still looks like a view of a flat front: a convex
    outline of about its own size (a walk that turns down the aisle bends the chain into
    huge, folded outlines; that part is a different view, not the same fixture)."""
    outline = footprint(t, shape).astype(np.float32)
    if not cv2.isContourConvex(outline.reshape(-1, 1, 2)):
        return False
    h, w = shape[:2]
    ratio = abs(cv2.contourArea(outline)) / float(w * h)
    sides = np.linalg.norm(outline - np.roll(outline, 1, axis=0), axis=1)
    return 1 / MAX_AREA_RATIO < ratio < MAX_AREA_RATIO and sides.max() < 3 * sides.min()


def _place(fixture: Fixture, images: list[np.ndarray]) -> None:
    """Shift the fixture plane so every frame lands at positive coordinates."""
    corners = []
    for image, t in zip(images, fixture.transforms, strict=True):
        h, w = image.shape[:2]
        box = np.float32([[[0, 0]], [[w, 0]], [[w, h]], [[0, h]]])
        corners.append(cv2.perspectiveTransform(box, t).reshape(-1, 2))
    allc = np.concatenate(corners)
    x0, y0 = np.floor(allc.min(axis=0))
    x1, y1 = np.ceil(allc.max(axis=0))
    offset = np.array([[1, 0, -x0], [0, 1, -y0], [0, 0, 1]], dtype=np.float64)
    fixture.transforms = [offset @ t for t in fixture.transforms]
    fixture.size = (int(x1 - x0), int(y1 - y0))


def level(fixture: Fixture, images: list[np.ndarray], slopes: list[float]) -> bool:
    """Turn the fixture plane so its shelf edges run level (the chain's roll drift, and the
    middle frame's own roll); ``slopes``: the shelf edges' angles in the fixture plane
    (degrees). True when it turned."""
    if not slopes or abs(float(np.median(slopes))) < LEVEL_DEG:
        return False
    w, h = fixture.size
    turn = np.vstack([cv2.getRotationMatrix2D((w / 2, h / 2), float(np.median(slopes)), 1.0),
                      [0, 0, 1]])  # fmt: skip
    fixture.transforms = [turn @ t for t in fixture.transforms]
    _place(fixture, images)
    return True


def edge_slopes(fixture: Fixture, images: list[np.ndarray], shelves: list[list]) -> list[float]:
    """The angles (degrees) in the fixture plane of the shelf edges each frame found
    (``shelves[i]``: frame i's shelves), those crossing a third of their frame or more. Read
    frame by frame, not on the stitched picture: there the canvas's own straight borders
    (where the frames end) outweighed shelves sloping 1 deg, and the tilt read 0."""
    slopes = []
    for image, t, found in zip(images, fixture.transforms, shelves, strict=True):
        for s in found:
            if s.edge is None or s.edge[2] - s.edge[0] < image.shape[1] / 3:
                continue
            ends = np.float32([[s.edge[:2]], [s.edge[2:]]])
            (x1, y1), (x2, y2) = cv2.perspectiveTransform(ends, t).reshape(2, 2)
            slopes.append(float(np.degrees(np.arctan2(y2 - y1, x2 - x1))))
    return slopes


def footprint(t: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The frame's outline in fixture pixels (4, 2)."""
    h, w = shape[:2]
    box = np.float32([[[0, 0]], [[w, 0]], [[w, h]], [[0, h]]])
    return cv2.perspectiveTransform(box, t).reshape(-1, 2)


def to_fixture(boxes: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Boxes (N, 4) of a frame as axis-aligned boxes in fixture pixels."""
    if len(boxes) == 0:
        return np.zeros((0, 4), np.float64)
    x1, y1, x2, y2 = (boxes[:, k].astype(np.float32) for k in range(4))
    pts = np.stack([np.stack([x1, y1], 1), np.stack([x2, y1], 1), np.stack([x2, y2], 1),
                    np.stack([x1, y2], 1)], 1)  # fmt: skip
    out = cv2.perspectiveTransform(pts.reshape(-1, 1, 2), t).reshape(-1, 4, 2)
    return np.concatenate([out.min(axis=1), out.max(axis=1)], axis=1).astype(np.float64)


def mosaic(fixture: Fixture, images: list[np.ndarray]) -> np.ndarray:
    """The stitched fixture: each pixel from the frame whose centre it is nearest to (the
    least distorted and least blurred view); what no frame saw is the mean colour, so the
    shelf finder sees no edge there. Each frame is warped only over its own footprint (a
    long walk's canvas is many frames wide)."""
    w, h = fixture.size
    canvas = np.zeros((h, w, 3), np.uint8)
    best = np.full((h, w), np.inf, np.float32)
    for image, t in zip(images, fixture.transforms, strict=True):
        ih, iw = image.shape[:2]
        outline = footprint(t, image.shape)
        x0, y0 = np.clip(np.floor(outline.min(axis=0)).astype(int), 0, [w, h])
        x1, y1 = np.clip(np.ceil(outline.max(axis=0)).astype(int) + 1, 0, [w, h])
        if x1 <= x0 or y1 <= y0:
            continue
        local = np.array([[1, 0, -x0], [0, 1, -y0], [0, 0, 1]], dtype=np.float64) @ t
        size = (int(x1 - x0), int(y1 - y0))
        warped = cv2.warpPerspective(image, local, size, flags=cv2.INTER_LINEAR)
        d = cv2.warpPerspective(_centre_distance(ih, iw), local, size, flags=cv2.INTER_LINEAR,
                                borderValue=0)  # fmt: skip
        region = best[y0:y1, x0:x1]
        take = (d > 0) & (d < region)
        np.copyto(canvas[y0:y1, x0:x1], warped, where=take[..., None])
        np.copyto(region, d, where=take)
    seen = np.isfinite(best)
    if seen.any() and not seen.all():
        mean = cv2.mean(canvas, mask=seen.astype(np.uint8))[:3]
        np.copyto(canvas, np.array(mean, dtype=np.uint8), where=~seen[..., None])
    return canvas


@lru_cache(maxsize=4)
def _centre_distance(height: int, width: int) -> np.ndarray:
    """Per pixel of a frame, its distance from the centre in frame sizes (never 0: 0 is
    outside the frame once warped)."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    return np.hypot((xx - width / 2) / width, (yy - height / 2) / height) + 1e-3
