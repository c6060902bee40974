"""Backends by name. Heavy backends import their libraries only when chosen."""

from __future__ import annotations

from collections.abc import Callable

from shelfwatch.core.errors import ShelfWatchError
from shelfwatch.vision.base import Segmenter

_FACTORIES: dict[str, Callable[[], Segmenter]] = {}
_LOADED: dict[str, Segmenter] = {}


def register(name: str, factory: Callable[[], Segmenter]) -> None:
    _FACTORIES[name] = factory


def available_backends() -> list[str]:
    return sorted(_FACTORIES)


def get_segmenter(name: str) -> Segmenter:
    """The segmenter called ``name``, built once per process (models load once)."""
    if name not in _FACTORIES:
        raise ShelfWatchError(
            f"unknown backend {name!r}; choose one of: {', '.join(available_backends())}"
        )
    if name not in _LOADED:
        _LOADED[name] = _FACTORIES[name]()
    return _LOADED[name]


def _opencv() -> Segmenter:
    from shelfwatch.vision.opencv_backend import OpenCVSegmenter

    return OpenCVSegmenter()


register("opencv", _opencv)
