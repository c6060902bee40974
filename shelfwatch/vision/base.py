"""The segmenter interface every backend implements."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from shelfwatch.core.scene import ShelfScene


class Segmenter(Protocol):
    """Turns one BGR photo into shelves, product instances (with masks) and gaps."""

    name: str

    def segment(self, image: np.ndarray) -> ShelfScene: ...
