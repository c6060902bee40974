"""Video frames as a person sees them (rotation metadata applied), chosen by motion.

Decoding is PyAV's (FFmpeg): it reads the display matrix that phones write instead of
rotating the pixels, so a portrait walk stored as landscape comes out upright.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from shelfwatch.core.errors import BadInputError

MAX_SECONDS = 600.0  # a walk along one fixture; longer is a mistake, not a capture
VIDEO_SUFFIXES = {".mp4", ".mov", ".m4v", ".avi", ".mkv", ".webm"}
# Display-matrix rotation (degrees, counter-clockwise) -> the turn that makes it upright.
_UPRIGHT = {
    -90: cv2.ROTATE_90_CLOCKWISE,
    270: cv2.ROTATE_90_CLOCKWISE,
    90: cv2.ROTATE_90_COUNTERCLOCKWISE,
    -270: cv2.ROTATE_90_COUNTERCLOCKWISE,
    180: cv2.ROTATE_180,
    -180: cv2.ROTATE_180,
}


@dataclass(frozen=True)
class Frame:
    """One frame of a capture: its position in the source and the upright BGR pixels."""

    index: int
    time_s: float
    image: np.ndarray


def is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_SUFFIXES


def read_video(path: Path, max_seconds: float = MAX_SECONDS) -> Iterator[Frame]:
    """Every decodable frame, upright. Raises ``BadInputError`` for what is no video."""
    import av

    if not path.is_file():
        raise BadInputError(str(path), "no such file")
    if path.stat().st_size == 0:
        raise BadInputError(str(path), "empty file")
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise BadInputError(str(path), f"not a readable video ({exc})") from None
    with container:
        if not container.streams.video:
            raise BadInputError(str(path), "no video stream")
        stream = container.streams.video[0]
        seconds = _duration(container, stream)
        if seconds is not None and seconds > max_seconds:
            raise BadInputError(
                str(path),
                f"video too long ({seconds / 60:.0f} min; a capture is one fixture, at most "
                f"{max_seconds / 60:.0f} min)",
            )
        n = 0
        try:
            for frame in container.decode(stream):
                bgr = frame.to_ndarray(format="bgr24")
                turn = _UPRIGHT.get(int(round(getattr(frame, "rotation", 0) or 0)))
                if turn is not None:
                    bgr = cv2.rotate(bgr, turn)
                t = float(frame.time) if frame.time is not None else n / 30.0
                if t > max_seconds:
                    raise BadInputError(str(path), f"video too long (over {max_seconds:.0f} s)")
                yield Frame(n, t, bgr)
                n += 1
        except av.error.FFmpegError as exc:
            if n == 0:
                raise BadInputError(str(path), f"no decodable frame ({exc})") from None
            return  # a truncated file: the frames before the damage are kept
    if n == 0:
        raise BadInputError(str(path), "no decodable frame")


def _duration(container: object, stream: object) -> float | None:
    duration = getattr(stream, "duration", None)
    base = getattr(stream, "time_base", None)
    if duration is not None and base is not None:
        return float(duration * base)
    total = getattr(container, "duration", None)
    return total / 1_000_000 if total else None


def shift(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """How far the picture moved from small gray ``a`` to ``b`` (phase correlation, px)."""
    (dx, dy), _response = cv2.phaseCorrelate(a, b)
    return float(dx), float(dy)


# A fifth of a frame: any two frames but one apart still share more than half their view
# (phase correlation reads a handheld walk's bob and parallax as less travel than the feature
# matcher finds: a third of a frame measured left gaps no second frame bridged).
STEP = 0.2


def choose_frames(frames: Iterator[Frame], step: float = STEP, side: int = 160) -> list[Frame]:
    """Frames about ``step`` frame widths apart along the walk (not every frame): at each
    step the sharpest of the frames in its last quarter (motion blur varies frame to frame),
    and the first and last frame, so both ends of the fixture are seen.

    Motion is measured between consecutive frames on a ``side``-pixel gray thumbnail by
    phase correlation and accumulated along the path.
    """
    chosen: list[Frame] = []
    candidates: list[tuple[float, Frame]] = []
    previous: np.ndarray | None = None
    travelled = 0.0
    last: Frame | None = None
    for frame in frames:
        gray = cv2.cvtColor(frame.image, cv2.COLOR_BGR2GRAY)
        scale = side / max(gray.shape)
        thumb = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        thumb = thumb.astype(np.float32)
        if previous is None:
            chosen.append(frame)
        else:
            dx, dy = shift(previous, thumb)
            travelled += float(np.hypot(dx, dy)) / thumb.shape[1]  # in frame widths
            if travelled >= 0.75 * step:
                sharp = float(cv2.Laplacian(thumb, cv2.CV_32F).var())
                candidates.append((sharp, frame))
            if travelled >= step:
                chosen.append(max(candidates, key=lambda c: c[0])[1])
                candidates, travelled = [], 0.0
        previous, last = thumb, frame
    if last is not None and chosen[-1].index != last.index:
        chosen.append(last)
    return chosen
