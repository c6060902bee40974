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


def model_version(segmenter: Segmenter) -> str:
    """Which model a backend runs: its own ``model_version`` (the default backend: package
    version and detector weights), else the configured checkpoints."""
    import shelfwatch
    from shelfwatch.settings import get_settings

    own = getattr(segmenter, "model_version", None)
    if own:
        return str(own)
    name = segmenter.name
    s = get_settings()
    checkpoints = {
        "clipseg": [s.clipseg_model],
        "mask2former": [s.mask2former_model],
        "oneformer": [s.oneformer_model],
        "fused": [s.mask2former_model, s.clipseg_model],
    }
    return " + ".join(checkpoints.get(name, [f"shelfwatch {shelfwatch.__version__}"]))


def _opencv() -> Segmenter:
    from shelfwatch.vision.opencv_backend import OpenCVSegmenter

    return OpenCVSegmenter()


def _clipseg() -> Segmenter:
    from shelfwatch.settings import get_settings
    from shelfwatch.vision.models.clipseg import ClipSegReferrer, ClipSegSegmenter

    s = get_settings()
    referrer = ClipSegReferrer.from_pretrained(s.clipseg_model, s.offline, s.device, s.quantize)
    return ClipSegSegmenter(referrer, s.product_prompt, s.gap_prompt)


def _instances(name: str) -> Callable[[], Segmenter]:
    def build() -> Segmenter:
        from shelfwatch.settings import get_settings
        from shelfwatch.vision.models.instances import InstanceSegmenter

        s = get_settings()
        source = s.mask2former_model if name == "mask2former" else s.oneformer_model
        return InstanceSegmenter.from_pretrained(name, source, s.offline, s.device)

    return build


def _fused() -> Segmenter:
    from shelfwatch.settings import get_settings
    from shelfwatch.vision.models.clipseg import ClipSegReferrer
    from shelfwatch.vision.models.fused import FusedSegmenter
    from shelfwatch.vision.models.instances import InstanceSegmenter

    s = get_settings()
    return FusedSegmenter(
        InstanceSegmenter.from_pretrained("mask2former", s.mask2former_model, s.offline, s.device),
        ClipSegReferrer.from_pretrained(s.clipseg_model, s.offline, s.device),
        s.gap_prompt,
    )


def clear_cache() -> None:
    """Forget loaded backends (tests and settings changes)."""
    _LOADED.clear()


register("opencv", _opencv)
register("clipseg", _clipseg)
register("mask2former", _instances("mask2former"))
register("oneformer", _instances("oneformer"))
register("fused", _fused)
