"""Shelf rows from shelf-edge lines: long, near-horizontal edges that span the fixture."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, replace
from functools import cache

import cv2
import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.signal import find_peaks

from shelfwatch.vision.evaluation import interval_iou
from shelfwatch.vision.frame import reading_side

# A single thin line is a shelf edge only when it crosses this much of the width.
THIN_LINE_MIN = 0.8
# Lines of a shelf-edge strip are at least this share of its strongest line's span.
STRIP_LINE_SHARE = 0.75
# A product stands across a line when the line lies this share of its height inside it.
ACROSS = 0.2
# The shelf-edge net's map: a pixel is on a line from this score, and a shelf edge's line
# crosses this share of its bay (a price rail is often hidden in part by overhanging packs).
# Chosen on the first 20 photos of real-shelves (see the README).
LEARNED_LINE = 0.25
LEARNED_SPAN = 0.45
# A learned edge takes the photo's own edge strip that lies within this share of the
# photo's height of its line (the net's line is a few cells thick at a quarter resolution).
SNAP = 0.02
# A learned line with no strip of the photo on it counts when it crosses this share of its
# bay (the net, which learned from 69 photos, also draws weaker lines across large packs'
# print); a strip across this share of the bay counts where the net drew nothing.
UNSNAPPED_SPAN = 0.75
SURE_STRIP = 0.9
# ... but only where the photo's strips are a second opinion: where they lie under at least
# this share of the bay's other learned lines. Elsewhere (price rails hidden by packs,
# cluttered or dim shelves) a missing strip says nothing and the line counts from
# LEARNED_SPAN (real-shelves-more held out: one-to-one recall 0.788 -> 0.807; see the README).
STRIPS_SEEN = 0.5


@dataclass(frozen=True)
class ShelfEdge:
    """A shelf's front edge strip: its top and bottom rows and the fixture's x extent.
    ``in_view``: False for the base of a row of products whose shelf the photo does not show
    (cut off by the frame)."""

    y_top: int
    y_bottom: int
    x1: int
    x2: int
    strength: float
    in_view: bool = True


def estimate_tilt(gray: np.ndarray, max_deg: float = 10.0) -> float:
    """Angle (degrees, OpenCV's sign) that makes shelf edges horizontal.

    Projection-profile search: the rotation whose rows of horizontal edges are most
    concentrated wins. More robust than Hough voting, which product sides and perspective
    pull off.
    """
    scale = min(1.0, 600 / reading_side(*gray.shape))
    small = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    edges = horizontal_edge_map(small).astype(np.float32)
    # The whole-degree search on a half-size map (a quarter of the work), the fine one at
    # full size.
    half = cv2.resize(edges, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)

    def score(edges: np.ndarray, angle: float) -> float:
        h, w = edges.shape
        rot = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
        rows = cv2.reduce(cv2.warpAffine(edges, rot, (w, h)), 1, cv2.REDUCE_AVG).ravel()
        return float(np.sort(rows)[-max(3, h // 50) :].mean())

    # Angles nearest level first: a tie (a photo without horizontal edges, where every
    # angle scores 0) is no evidence of tilt, and argmax takes the first of equal scores.
    coarse = sorted(np.arange(-max_deg, max_deg + 0.01, 1.0), key=abs)
    best = float(coarse[np.argmax([score(half, a) for a in coarse])])
    fine = sorted(np.arange(best - 0.9, best + 0.91, 0.15), key=abs)
    return float(fine[np.argmax([score(edges, a) for a in fine])])


def _line_slack(height: int) -> int:
    return max(1, int(0.006 * height))


def horizontal_edge_map(gray: np.ndarray) -> np.ndarray:
    """Pixels on long horizontal edges; short breaks (price tags) are closed along x."""
    return long_runs(horizontal_edges(gray))


def horizontal_edges(gray: np.ndarray) -> np.ndarray:
    """Pixels on horizontal edges of any length, short breaks closed along x (uint8 0/1)."""
    # 16-bit integer gradients: exact for 8-bit input (at most 4 x 255) and half the memory
    # traffic of float.
    gy = np.abs(cv2.Sobel(gray, cv2.CV_16S, 0, 1, ksize=3))
    gx = np.abs(cv2.Sobel(gray, cv2.CV_16S, 1, 0, ksize=3))
    horiz = ((gy > 30) & (gy > 2 * gx)).astype(np.uint8)
    horiz = cv2.dilate(horiz, np.ones((3, 1), np.uint8))
    return cv2.morphologyEx(horiz, cv2.MORPH_CLOSE, np.ones((1, 5), np.uint8))


def long_runs(edges: np.ndarray) -> np.ndarray:
    """The runs of ``horizontal_edges`` long for their width (a fortieth of it): text and
    pack artwork make short horizontal edges everywhere. A bay's columns of a photo's edges
    are judged at the bay's width."""
    run = max(9, edges.shape[1] // 40)
    return cv2.morphologyEx(edges, cv2.MORPH_OPEN, np.ones((1, run), np.uint8))


def line_profile(horiz: np.ndarray, slack: int, slices: int = 8) -> np.ndarray:
    """Per row, how much of the width a line crosses, letting it drift ``slack`` rows per slice.

    Each vertical slice must hold a straight piece of the line; between slices the line may
    shift, which follows perspective and bent shelves without a global rotation.
    """
    h, w = horiz.shape
    bounds = np.linspace(0, w, max(1, min(slices, w)) + 1).astype(int)
    shares = np.stack(
        [_row_sums(horiz, a, b) / (b - a) for a, b in zip(bounds[:-1], bounds[1:], strict=True)],
        axis=1,
    ).astype(np.float32)
    # Each slice's column dilated on its own (one call for all: the kernel is one column wide).
    drifted = cv2.dilate(shares, np.ones((2 * slack + 1, 1), np.uint8))
    return np.ascontiguousarray(drifted.T).mean(axis=0)


def _row_sums(lines: np.ndarray, a: int, b: int) -> np.ndarray:
    """Per row, how many pixels of columns ``a``..``b`` of a 0/1 map are set (int32). The
    same sums as numpy's mean times the width (small integers add up exactly in any order),
    at a fifth of the time: the shelves stage reads thousands of such slices a photo."""
    part = lines[:, a:b].view(np.uint8) if lines.dtype == bool else lines[:, a:b]
    return cv2.reduce(part, 1, cv2.REDUCE_SUM, dtype=cv2.CV_32S)[:, 0]


def _percentile(ordered: np.ndarray, q: float) -> float:
    """``np.percentile`` (linear) of values already in ascending order, without the sort
    (called for every shelf-edge candidate of every bay)."""
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return float(ordered[low] + (ordered[high] - ordered[low]) * (position - low))


def strip_uniformity(strip: np.ndarray) -> float:
    """Share of columns whose median brightness is close to the strip's median."""
    if strip.size == 0:
        return 0.0
    columns = np.median(strip, axis=0)
    return float((np.abs(columns - np.median(columns)) < 20).mean())


def find_shelf_edges(
    gray: np.ndarray, min_span: float = 0.55, horiz: np.ndarray | None = None
) -> list[ShelfEdge]:
    """Shelf-edge strips: clusters of rows whose horizontal edges span ``min_span`` of the width.

    ``horiz``: the photo's horizontal edge map cut to the same columns as ``gray``, when
    ``gray`` is part of a photo (what counts as a long line depends on the whole width).
    """
    h, w = gray.shape
    horiz = horizontal_edge_map(gray) if horiz is None else horiz
    frac = line_profile(horiz, _line_slack(h))
    # Peaks, not thresholded runs: on real photos many rows carry some horizontal edge.
    peaks, _ = find_peaks(frac, height=min_span, prominence=0.12, distance=3)
    if len(peaks) == 0:
        return []
    # Peaks closer than a typical strip height are the top and bottom of one shelf edge.
    join = max(6, int(0.032 * h))
    clusters: list[list[int]] = [[int(peaks[0])]]
    for r in peaks[1:]:
        if r - clusters[-1][-1] <= join:
            clusters[-1].append(int(r))
        else:
            clusters.append([int(r)])
    edges = []
    slack = _line_slack(h)
    for cl in clusters:
        strength = float(frac[cl].max())
        # The strip is its strongest lines (a rail's top and bottom); weaker lines next to it
        # are product tops or shelf lips and would stretch it over the products.
        cl = [r for r in cl if frac[r] >= STRIP_LINE_SHARE * strength]
        # The rows around the peaks where the profile stays above half the peak: a strip seen
        # in perspective is a plateau with one prominent peak, still a thick strip.
        ext_top, ext_bottom = cl[0], cl[-1]
        reach = int(0.03 * h)  # a strip's plateau, not the busy rows of a whole shelf
        while ext_top > max(0, cl[0] - reach) and frac[ext_top - 1] >= 0.5 * strength:
            ext_top -= 1
        while ext_bottom < min(h - 1, cl[-1] + reach) and frac[ext_bottom + 1] >= 0.5 * strength:
            ext_bottom += 1
        y_top, y_bottom = cl[0] - 1, cl[-1] + 1
        band = horiz[y_top : y_bottom + 1].max(axis=0)
        cols = np.nonzero(band)[0]
        x1, x2 = (int(_percentile(cols, 1)), int(_percentile(cols, 99))) if len(cols) else (0, w)
        # A shelf edge is a strip (a price rail has a top and a bottom line); a single thin
        # line only counts when it spans nearly the whole width (the fixture's top or base).
        min_thickness = 2 * slack + max(4, 0.006 * h)
        if len(cl) > 1:
            thick = y_bottom - y_top >= min_thickness
        else:  # one peak: thick only if the whole plateau is high (a strip seen tilted)
            plateau = float(frac[ext_top : ext_bottom + 1].mean())
            thick = ext_bottom - ext_top >= min_thickness and plateau >= 0.65
        if not thick and strength < THIN_LINE_MIN:
            continue
        if thick and y_bottom - y_top >= 4 and strength < 0.9:
            # A price rail is one material across the fixture; a row of label bands is not.
            # (A line crossing nearly the whole width is a rail even when tags cover it.)
            uniform = strip_uniformity(gray[y_top + 1 : y_bottom, x1 : x2 + 1])
            if uniform < 0.4:
                continue
            strength *= 0.5 + 0.5 * uniform
        edges.append(ShelfEdge(y_top, y_bottom, x1, x2, strength))
    # Edges closer than a minimal shelf height: keep the stronger (product tops can line up).
    min_gap = 0.08 * h
    kept: list[ShelfEdge] = []
    for e in sorted(edges, key=lambda e: -e.strength):
        if all(abs(e.y_top - k.y_top) > min_gap for k in kept):
            kept.append(e)
    return _regularise(sorted(kept, key=lambda e: e.y_top))


@dataclass(frozen=True)
class Bay:
    """Columns of the photo whose shelves sit at the same heights, and their shelf edges.
    ``after_upright``: the bay starts at an upright of the fixture (its shelves are not the
    continuation of the bay to its left, even where they sit at the same heights)."""

    x1: int
    x2: int
    edges: list[ShelfEdge]
    after_upright: bool = False


# An upright between two bays whose shelves sit at the same heights breaks most of their
# shelf-edge strips at the same columns (price tags and overhanging packs break single
# strips anywhere). Set once, not tuned.
UPRIGHT_SHARE = 0.6  # of a bay's shelf edges broken at the same columns (and at least 3)
UPRIGHT_WIDTH = (0.003, 0.04)  # a break's width, in bay widths
UPRIGHT_MARGIN = 0.15  # no cut this close to the bay's ends, nor two cuts closer than 0.2


def uprights(horiz: np.ndarray, edges: list[ShelfEdge]) -> list[int]:
    """Columns of ``horiz`` (one bay's long-line map; ``edges`` in its columns) where an
    upright divides the bay: most shelf-edge strips break there."""
    h, w = horiz.shape
    if len(edges) < 3:
        return []
    pad = max(2, int(0.005 * w))  # breaks of one upright line up within a few pixels
    counts = np.zeros(w)
    for e in edges:
        gap = np.zeros(w, bool)
        lo, hi = max(0, e.x1), min(w, e.x2 + 1)
        gap[lo:hi] = ~horiz[e.y_top : e.y_bottom + 1, lo:hi].max(axis=0).astype(bool)
        hit = np.zeros(w, bool)
        for a, b in runs_of(gap):
            if UPRIGHT_WIDTH[0] * w <= b - a <= UPRIGHT_WIDTH[1] * w:
                hit[max(0, a - pad) : b + pad] = True
        counts += hit
    share = counts / len(edges)
    candidate = (share >= UPRIGHT_SHARE) & (counts >= 3)
    candidate[: int(UPRIGHT_MARGIN * w)] = False
    candidate[int((1 - UPRIGHT_MARGIN) * w) :] = False
    cuts: list[int] = []
    for a, b in sorted(runs_of(candidate), key=lambda r: -share[r[0] : r[1]].max()):
        cut = int(a + np.argmax(share[a:b]))
        if all(abs(cut - c) >= 0.2 * w for c in cuts):
            cuts.append(cut)
    return sorted(cuts)


# The upright net marks a column where its score reaches LEARNED_UPRIGHT on LEARNED_UPRIGHT_ROWS
# of the rows from the bay's top shelf edge to its bottom one (rows 0.15-0.4 tried on
# real-shelves, the upright net never trained on it; see the README).
LEARNED_UPRIGHT = 0.3
LEARNED_UPRIGHT_ROWS = 0.4
LEARNED_BAY_MIN = 0.1  # of the photo's width, each side of a learned cut


def learned_uprights(upright_map: np.ndarray, edges: list[ShelfEdge]) -> list[int]:
    """Columns of one bay where the upright net (``upright_map``: its scores over the bay's
    columns; ``edges`` in them) marks an upright down its shelves, the strongest first at
    least a fifth of the bay apart, none within ``UPRIGHT_MARGIN`` of its ends."""
    w = upright_map.shape[1]
    if len(edges) < 2:
        return []
    top, bottom = min(e.y_top for e in edges), max(e.y_bottom for e in edges)
    profile = (upright_map[top : bottom + 1] >= LEARNED_UPRIGHT).mean(axis=0)
    peaks, _ = find_peaks(profile, height=LEARNED_UPRIGHT_ROWS, distance=max(1, int(0.2 * w)))
    margin = UPRIGHT_MARGIN * w
    return [int(p) for p in peaks if margin <= p <= w - margin]


def runs_of(mask: np.ndarray) -> list[tuple[int, int]]:
    """Half-open (start, end) of each run of True in a 1-D mask."""
    padded = np.concatenate([[False], mask, [False]])
    starts = np.flatnonzero(~padded[:-1] & padded[1:])
    ends = np.flatnonzero(padded[:-1] & ~padded[1:])
    return list(zip(starts.tolist(), ends.tolist(), strict=True))


def learned_edges(lines: np.ndarray, min_span: float = LEARNED_SPAN) -> list[ShelfEdge]:
    """Shelf edges from the shelf-edge net's map (``lines``: 0/1, one slice of the
    photo): rows whose line crosses ``min_span`` of the width, each shelf once."""
    h, w = lines.shape
    frac = line_profile(lines, _line_slack(h))
    peaks, props = find_peaks(frac, height=min_span, distance=max(3, int(0.06 * h)))
    edges = []
    for y, strength in zip(peaks, props["peak_heights"], strict=True):
        cols = np.nonzero(lines[max(0, y - 2) : y + 3].max(axis=0))[0]
        x1, x2 = (int(_percentile(cols, 1)), int(_percentile(cols, 99))) if len(cols) else (0, w)
        edges.append(ShelfEdge(int(y), int(y), x1, x2, float(strength)))
    return edges


def snap_edges(learned: list[ShelfEdge], own: list[ShelfEdge], h: int) -> list[ShelfEdge]:
    """The shelf-edge net's edges, each replaced by the photo's own edge strip that its line
    falls on (within ``SNAP`` x the photo's height): the net says which shelves there are,
    the strip where exactly its top, on which products stand, and its bottom lie; a learned
    edge with no strip on it needs a line across ``UNSNAPPED_SPAN`` of its bay where strips
    lie under ``STRIPS_SEEN`` of the bay's other lines (elsewhere the photo's strips say
    nothing). A strip across nearly the whole bay (``SURE_STRIP``) that no learned edge is
    near is kept too: a clean shelf edge the net missed (it never saw a render's shelves)."""
    tol = SNAP * h
    out: list[ShelfEdge] = []
    nears = [[o for o in own if o.y_top - tol <= e.y_top <= o.y_bottom + tol] for e in learned]
    # For a line with no strip, the snapped lines are all among the bay's others.
    snapped, others = sum(1 for near in nears if near), len(learned) - 1
    strips_seen = others > 0 and snapped >= STRIPS_SEEN * others
    for e, near in zip(learned, nears, strict=True):
        if not near and strips_seen and e.strength < UNSNAPPED_SPAN:
            continue
        best = min(near, key=lambda o: abs((o.y_top + o.y_bottom) / 2 - e.y_top), default=e)
        if best not in out:
            out.append(best)
    for o in own:
        if o.strength >= SURE_STRIP and all(abs(o.y_top - e.y_top) > 3 * tol for e in out):
            out.append(o)
    return sorted(out, key=lambda o: o.y_top)


def find_bays(
    gray: np.ndarray,
    columns: int = 20,
    window: int = 4,
    min_correlation: float = 0.6,
    lines: np.ndarray | None = None,
    upright_map: np.ndarray | None = None,
) -> list[Bay]:
    """Side-by-side bays whose shelves sit at their own heights, each with its shelf edges.

    The photo is cut into ``columns`` columns, each summed up by its row profile of long
    horizontal edges. At each cut between columns, the mean profile of the ``window`` columns
    to its left is correlated with that of the ``window`` columns to its right: where they
    correlate less than ``min_correlation``, the shelves change height and a bay ends (the
    least correlated cuts first, at least a window apart). Each bay's edges are then found on
    its own columns; neighbouring bays whose edges all line up are one bay. A photo of one
    bay is a single bay with exactly ``find_shelf_edges(gray)``.

    A correlation of profiles, not a comparison of edges found in narrow windows, decides
    where bays are: a narrow window's edges come and go with its exact placement.

    ``lines``: the shelf-edge net's map (0/1), where it is there: bays and edges are then
    found on its lines instead of the photo's long horizontal edges (uprights still on the
    photo's strips, which break there). ``upright_map``: the upright net's scores, where it
    is there: a bay is divided at the uprights it marks too.
    """
    h, w = gray.shape
    columns = max(1, min(columns, w // 8))  # a tiny photo: columns of at least 8 px
    bounds = np.linspace(0, w, columns + 1).astype(int)
    photo_edges = horizontal_edges(gray)  # once: every bay's strips and lines are cut from it
    found_on = long_runs(photo_edges) if lines is None else lines  # bays, edges, uprights
    profiles = column_profiles(found_on, bounds)
    scores = []
    for cut in range(window, columns - window + 1):
        left = profiles[cut - window : cut].mean(axis=0)
        right = profiles[cut : cut + window].mean(axis=0)
        scores.append((_correlation(left, right), cut))
    cuts: list[int] = []
    for score, cut in sorted(scores):
        if score < min_correlation and all(abs(cut - c) >= window for c in cuts):
            cuts.append(cut)
    xs = [0, *(int(bounds[c]) for c in sorted(cuts)), w]

    @cache
    def photo_lines(a: int, b: int) -> np.ndarray:
        # A bay's own long lines of the photo (long for its width); the whole photo's may be
        # at hand. Once per bay: its edges and its uprights are both found on them.
        if (a, b) == (0, w) and lines is None:
            return found_on
        return long_runs(np.ascontiguousarray(photo_edges[:, a:b]))

    @cache
    def lines_of(a: int, b: int) -> np.ndarray:
        return photo_lines(a, b) if lines is None else np.ascontiguousarray(lines[:, a:b])

    def edges_of(a: int, b: int) -> list[ShelfEdge]:
        found = find_shelf_edges(np.ascontiguousarray(gray[:, a:b]), horiz=photo_lines(a, b))
        if lines is not None:
            found = snap_edges(learned_edges(lines_of(a, b)), found, h)
        return [replace(e, x1=e.x1 + a, x2=e.x2 + a) for e in found]

    def line_up(a: list[ShelfEdge], b: list[ShelfEdge]) -> bool:
        tol = 0.03 * h
        return len(a) == len(b) > 0 and all(
            abs(u.y_top - v.y_top) <= tol for u, v in zip(a, b, strict=True)
        )

    bays: list[Bay] = []
    for a, b in zip(xs[:-1], xs[1:], strict=True):
        edges = edges_of(a, b)
        if bays and line_up(bays[-1].edges, edges):
            a = bays.pop().x1
            edges = edges_of(a, b)
        bays.append(Bay(a, b, edges))
    # Bays side by side with shelves at the same heights: divided at their uprights, found
    # on the photo's own strips (a price rail breaks at the upright; the shelf-edge net draws
    # its line through it).
    divided = []
    for bay in bays:
        local = [replace(e, x1=e.x1 - bay.x1, x2=e.x2 - bay.x1) for e in bay.edges]
        cuts = uprights(photo_lines(bay.x1, bay.x2), local)
        if upright_map is not None:  # and where the upright net marks one
            learned = learned_uprights(upright_map[:, bay.x1 : bay.x2], local)
            near = 0.2 * (bay.x2 - bay.x1)
            # Not a sliver beside a bay end the profiles put a little off the upright.
            wide = [c for c in learned if min(c, bay.x2 - bay.x1 - c) >= LEARNED_BAY_MIN * w]
            cuts = sorted(cuts + [c for c in wide if all(abs(c - o) >= near for o in cuts)])
        xs = [bay.x1, *(bay.x1 + c for c in cuts), bay.x2]
        if len(xs) == 2:
            divided.append(bay)
            continue
        for a, b in zip(xs[:-1], xs[1:], strict=True):
            divided.append(Bay(a, b, edges_of(a, b), after_upright=a != bay.x1))
    return divided


def column_profiles(horiz: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Per column between ``bounds``: the share of its pixels on a long horizontal edge, per
    row, blurred over a few rows so a line that drifts a little still lines up."""
    shares = [
        _row_sums(horiz, a, b).astype(np.float32) / np.float32(b - a)
        for a, b in zip(bounds[:-1], bounds[1:], strict=True)
    ]
    return gaussian_filter1d(np.stack(shares), max(1.0, 0.006 * horiz.shape[0]), axis=1)


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation; 0 when a side has no lines at all (a wall is not the next bay's
    continuation)."""
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / (np.sqrt((a * a).sum() * (b * b).sum()) + 1e-9))


def _regularise(edges: list[ShelfEdge], ratio: float = 0.6) -> list[ShelfEdge]:
    """Drop the weaker edge of any shelf much lower than the fixture's typical shelf.

    Label bands of a row of identical packs also make long double lines; shelves of one
    fixture are of similar height, so a short level between two edges means one is not a
    shelf edge.
    """
    edges = list(edges)
    while len(edges) >= 3:
        heights = np.array(
            [b.y_top - a.y_bottom for a, b in zip(edges[:-1], edges[1:], strict=True)]
        )
        typical = float(np.median(heights))
        short = int(np.argmin(heights))
        if heights[short] >= ratio * typical:
            break
        a, b = edges[short], edges[short + 1]
        edges.remove(a if a.strength < b.strength else b)
    return edges


def product_rows(
    boxes: np.ndarray, min_products: int = 3, min_span: float = 6.0
) -> list[ShelfEdge]:
    """Shelf rows implied by products standing side by side: boxes whose bottoms line up.

    Returns one edge per row at the products' common bottom (where the shelf is), spanning
    the row's x extent; its ``strength`` holds the row's top (a quartile of the products'
    tops). Rows of fewer than ``min_products``, or narrower than ``min_span`` typical product
    widths, are not rows: a few boxes in line (price tags, a side bay's edge) made extra
    shelves (real-shelves one-to-one precision 0.58 -> 0.63 at 6, recall 0.82 -> 0.83;
    4 / 5 / 8 widths: 0.61 / 0.62 / 0.65 precision, 0.83 / 0.84 / 0.81 recall).
    """
    if len(boxes) == 0:
        return []
    height = float(np.median(boxes[:, 3] - boxes[:, 1]))
    width = float(np.median(boxes[:, 2] - boxes[:, 0]))
    clusters: list[list[int]] = []
    bottoms: list[list[float]] = []  # each cluster's bottoms, for its median as it grows
    medians: list[float] = []
    for i in np.argsort(boxes[:, 3]):
        bottom = float(boxes[i, 3])
        for k, c in enumerate(clusters):
            if abs(medians[k] - bottom) < 0.3 * height:
                c.append(int(i))
                bottoms[k].append(bottom)
                medians[k] = statistics.median(bottoms[k])
                break
        else:
            clusters.append([int(i)])
            bottoms.append([bottom])
            medians.append(bottom)
    rows = []
    for c in clusters:
        if len(c) < min_products or boxes[c, 2].max() - boxes[c, 0].min() < min_span * width:
            continue
        bottom = int(np.median(boxes[c, 3]))
        rows.append(
            ShelfEdge(
                y_top=bottom,
                y_bottom=bottom + max(2, int(0.05 * height)),
                x1=int(boxes[c, 0].min()),
                x2=int(boxes[c, 2].max()),
                strength=float(np.percentile(boxes[c, 1], 25)),  # the row's top
            )
        )
    return sorted(rows, key=lambda e: e.y_top)


def merge_rows(
    zones: list[tuple[int, int, ShelfEdge]],
    rows: list[ShelfEdge],
    boxes: np.ndarray | None = None,
) -> list[tuple[int, int, ShelfEdge]]:
    """Shelf zones from the edge finder corrected by product rows.

    A zone that holds two or more product rows merged several shelves (a missed edge): it is
    replaced by those rows. A product row that no zone covers is a shelf the edge finder
    missed (another bay, an angled shelf): it is added. Zones the rows agree with stay as
    they are (their edges are the more precise). An edge most of the detected products
    (``boxes``) at its height stand across is no shelf edge: its zones are one.
    """

    def share_inside(a: tuple[float, float], b: tuple[float, float]) -> float:
        return max(0.0, min(a[1], b[1]) - max(a[0], b[0])) / max(1e-6, a[1] - a[0])

    if boxes is not None:
        zones = _join_crossed(zones, boxes)
    as_zone = [(int(r.strength), r.y_top, r) for r in rows]
    merged: list[tuple[int, int, ShelfEdge]] = []
    covered: set[tuple[int, int, ShelfEdge]] = set()  # rows inside some zone
    for zone in zones:
        band = (zone[0], zone[2].y_top)
        within = [z for z in as_zone if share_inside((z[0], z[1]), band) >= 0.6]
        covered.update(within)
        within = _one_per_level(within)
        merged += within if len(within) >= 2 else [zone]
    for z in as_zone:
        if z not in covered and all(
            interval_iou((z[0], z[1]), (m[0], m[2].y_top)) < 0.3 for m in merged
        ):
            merged.append(z)
    return sorted(merged, key=lambda z: (z[2].y_top, z[2].x1))


def _crossed(boxes: np.ndarray, edge: ShelfEdge) -> bool:
    """Whether the products at an edge's height mostly stand across it (a label band of a
    row of packs, not a shelf: products stand on a shelf edge, not through it)."""
    x = (boxes[:, 0] + boxes[:, 2]) / 2
    top, bottom = boxes[:, 1], boxes[:, 3]
    margin = ACROSS * (bottom - top)
    # Through the whole strip: seen from above, products stand in a thick edge strip.
    near = (x >= edge.x1) & (x <= edge.x2) & (top - margin < edge.y_bottom)
    near &= edge.y_top < bottom + margin
    across = near & (top + margin < edge.y_top) & (edge.y_bottom < bottom - margin)
    return int(across.sum()) >= 2 and across.sum() >= 0.5 * near.sum()


def _join_crossed(
    zones: list[tuple[int, int, ShelfEdge]], boxes: np.ndarray
) -> list[tuple[int, int, ShelfEdge]]:
    """Neighbouring zones split by an edge the products stand across are one zone."""
    out: list[tuple[int, int, ShelfEdge]] = []
    for zone in zones:
        if out and _crossed(boxes, out[-1][2]):
            out[-1] = (out[-1][0], zone[1], zone[2])
        else:
            out.append(zone)
    return out


def _one_per_level(
    rows: list[tuple[int, int, ShelfEdge]],
) -> list[tuple[int, int, ShelfEdge]]:
    """Rows (top, bottom, edge) that mostly overlap in height and in columns are one shelf
    level (boxes that missed the shelf's bottom made a second row in it): one row, down to
    the lowest bottom, where the products stand. (Rows side by side are two bays' levels.)"""

    def one_level(a: tuple[int, int, ShelfEdge], b: tuple[int, int, ShelfEdge]) -> bool:
        side_by_side = min(a[2].x2, b[2].x2) - max(a[2].x1, b[2].x1)
        narrower = min(a[2].x2 - a[2].x1, b[2].x2 - b[2].x1)
        return interval_iou(a[:2], b[:2]) > 0.5 and side_by_side >= 0.5 * narrower

    out: list[tuple[int, int, ShelfEdge]] = []
    for row in sorted(rows, key=lambda r: r[1]):
        if out and one_level(out[-1], row):
            last = out[-1]
            edge = replace(row[2], x1=min(last[2].x1, row[2].x1), x2=max(last[2].x2, row[2].x2))
            out[-1] = (min(last[0], row[0]), row[1], edge)
        else:
            out.append(row)
    return out
