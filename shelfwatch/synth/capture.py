"""Rendered captures with exact truth: a long bay, filmed by a camera panning along it (a
video with blur, bob, zoom and perspective drift) or photographed as overlapping stills.

Truth is in bay pixels (the long render), with each frame's exact bay -> frame homography,
so a capture's fused result can be mapped back and scored product by product.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from shelfwatch.planogram.formats import expected_layout
from shelfwatch.synth.catalog import make_catalog, make_planogram
from shelfwatch.synth.render import SynthConfig, render_photo

BAY_CM = 300.0
BAY_PX = 3000  # the long render's width
FRAME_W, FRAME_H = 960, 800  # the camera's frames
WALL = (150, 160, 165)  # around the bay (the render's own background)


@dataclass
class CaptureTruth:
    kind: str  # "video" or "series"
    files: list[str]
    products: list[dict]  # {"bbox": [x1, y1, x2, y2], "shelf": n, "sku": ...} in bay pixels
    gaps: list[dict]
    shelves: int
    homographies: list[list[list[float]]]  # per frame: bay -> frame
    px_per_cm: float


def _camera(rng: np.random.Generator, x: float, bay_h: int, zoom: float, roll: float) -> np.ndarray:
    """The homography from bay pixels to a frame whose left edge looks at bay column ``x``."""
    view_h = bay_h * 1.04  # the whole bay height, a little floor and top around it
    view_w = view_h * FRAME_W / FRAME_H
    s = FRAME_H / view_h * zoom
    cx, cy = x + view_w / 2, bay_h / 2
    shift = np.array([[1, 0, -cx], [0, 1, -cy], [0, 0, 1]], np.float64)
    a = np.deg2rad(roll)
    rot = np.array(
        [[s * np.cos(a), -s * np.sin(a), 0], [s * np.sin(a), s * np.cos(a), 0], [0, 0, 1]]
    )
    centre = np.array([[1, 0, FRAME_W / 2], [0, 1, FRAME_H / 2], [0, 0, 1]], np.float64)
    persp = np.eye(3)
    persp[2, 0] = rng.uniform(-1.5e-5, 1.5e-5)  # a little keystone as the phone turns
    return centre @ persp @ rot @ shift


def render_capture(out: Path, seed: int, kind: str = "video", frames: int = 48) -> CaptureTruth:
    """Render one capture into ``out``: ``capture.mp4`` or ``frame_00.jpg``..., and
    ``truth.json``."""
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    items, looks = make_catalog(rng, 16)
    catalog = {c.sku: c for c in items}
    cfg = SynthConfig(width_px=BAY_PX, fixture_width_cm=BAY_CM, shelves=4)
    plan = make_planogram(rng, items, "BAY", "F1", None, BAY_CM, cfg.shelves, cfg.shelf_height_cm)
    # A long bay: every shelf departs from the planogram once (half of those leave a gap).
    bay, truth, instances = render_photo(rng, expected_layout(plan), catalog, looks, cfg, 2.7)
    bay_h, bay_w = bay.shape[:2]
    view_w = bay_h * 1.04 * FRAME_W / FRAME_H
    n = frames if kind == "video" else 5
    # The walk stays in front of the bay: past its ends the frames would show the render's
    # border, not a store.
    xs = np.linspace(0.02 * view_w, bay_w - 1.04 * view_w, n)
    homographies, files = [], []
    writer = _VideoWriter(out / "capture.mp4") if kind == "video" else None
    for k, x in enumerate(xs):
        if kind == "video":  # a steady walk with a bobbing hand and slow zoom drift
            zoom = 1.0 + 0.03 * np.sin(k / 9.0) + rng.normal(0, 0.004)
            roll = 0.8 * np.sin(k / 7.0)
            x = x + rng.normal(0, 4)
        else:  # stills: each framed anew
            zoom, roll = rng.uniform(0.95, 1.05), rng.uniform(-2, 2)
        h = _camera(rng, float(x), bay_h, zoom, roll)
        h[1, 2] += 12 * np.sin(k / 3.0) if kind == "video" else rng.normal(0, 15)
        frame = cv2.warpPerspective(
            bay, h, (FRAME_W, FRAME_H), borderMode=cv2.BORDER_CONSTANT, borderValue=WALL
        )
        if kind == "video":
            length = int(rng.integers(1, 6))  # motion blur along the walk
            kernel = np.zeros((1, length), np.float32)
            kernel[:] = 1.0 / length
            frame = cv2.filter2D(frame, -1, kernel)
            assert writer is not None
            writer.add(frame)
        else:
            name = f"frame_{k:02d}.jpg"
            cv2.imwrite(str(out / name), frame, [cv2.IMWRITE_JPEG_QUALITY, 88])
            files.append(name)
        homographies.append(h.tolist())
    if writer is not None:
        writer.close()
        files = ["capture.mp4"]
    result = CaptureTruth(
        kind=kind,
        files=files,
        products=[{"bbox": i["bbox"], "shelf": i["shelf"], "sku": i["sku"]} for i in instances],
        gaps=truth["gaps"],
        shelves=cfg.shelves,
        homographies=homographies,
        px_per_cm=truth["px_per_cm"],
    )
    (out / "truth.json").write_text(json.dumps(result.__dict__))
    return result


class _VideoWriter:
    """H.264 in MP4 through PyAV (FFmpeg), as phones write it."""

    def __init__(self, path: Path, fps: int = 30) -> None:
        import av

        self.container = av.open(str(path), mode="w")
        self.stream = self.container.add_stream("libx264", rate=fps)
        self.stream.width, self.stream.height = FRAME_W, FRAME_H
        self.stream.pix_fmt = "yuv420p"
        # x264's own C code, not its assembly: on a Xeon with AVX-512 the same frames gave a
        # slightly different stream from run to run (a different count now and then), and
        # a render with exact truth must be the same video on every machine.
        self.stream.options = {"crf": "23", "preset": "veryfast", "x264-params": "no-asm=1"}

    def add(self, bgr: np.ndarray) -> None:
        import av

        frame = av.VideoFrame.from_ndarray(bgr, format="bgr24")
        for packet in self.stream.encode(frame):
            self.container.mux(packet)

    def close(self) -> None:
        for packet in self.stream.encode():
            self.container.mux(packet)
        self.container.close()


def load_truth(folder: Path) -> CaptureTruth:
    return CaptureTruth(**json.loads((folder / "truth.json").read_text()))
