"""Backends by name. Heavy backends import their libraries only when chosen."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

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
        try:
            _LOADED[name] = _FACTORIES[name]()
        except ImportError as exc:
            raise _missing_extra(name, exc) from None
    return _LOADED[name]


def _missing_extra(name: str, exc: ImportError) -> ShelfWatchError:
    missing = exc.name or str(exc)
    return ShelfWatchError(
        f"backend {name!r} needs the models extra (missing {missing}): "
        "pip install 'shelfwatch[models]'"
    )


def configured_weights(name: str) -> str | None:
    """``SHELFWATCH_MODEL_DIR/<backend>`` (a ``train --out`` folder) when that folder exists; an
    error where the setting names no folder, or a training run's output lies in it rather
    than in a backend's folder."""
    from shelfwatch.settings import get_settings

    model_dir = get_settings().model_dir
    if model_dir is None:
        return None
    if not model_dir.is_dir():
        raise ShelfWatchError(f"SHELFWATCH_MODEL_DIR={model_dir}: no such folder")
    own = model_dir / ("opencv" if name == "default" else name)
    for folder in (model_dir / name, own):
        if folder.is_dir():
            return str(folder)
    # A `train --out` folder given as the setting itself (any backend's writes training.json,
    # the default one's facings.onnx) would otherwise be passed over in silence, and the
    # shipped or configured weights run in its place.
    for stray in ("training.json", "facings.onnx"):
        if (model_dir / stray).is_file():
            raise ShelfWatchError(
                f"SHELFWATCH_MODEL_DIR={model_dir} holds {stray} itself: it is a folder of "
                f"backend folders, so put the weights in {own}"
            )
    return None


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
        "clipseg": [configured_weights("clipseg") or s.clipseg_model],
        "mask2former": [configured_weights("mask2former") or s.mask2former_model],
        "oneformer": [configured_weights("oneformer") or s.oneformer_model],
        "fused": [s.mask2former_model, s.clipseg_model],
    }
    return " + ".join(checkpoints.get(name, [f"shelfwatch {shelfwatch.__version__}"]))


def segmenter_from(name: str, source: str | None = None) -> Segmenter:
    """Backend ``name`` on the given weights, else on the configured ones: a facing detector
    (``facings.onnx`` or its folder) for the default backend, a transformers checkpoint
    (hub id or folder) for the model backends. Not cached: each call loads."""
    if source is None and name != "fused":
        source = configured_weights(name)
    try:
        return _build(name, source)
    except ImportError as exc:
        raise _missing_extra(name, exc) from None


def _build(name: str, source: str | None) -> Segmenter:
    from shelfwatch.settings import get_settings

    s = get_settings()
    if name in ("opencv", "default"):
        from shelfwatch.vision.opencv_backend import OpenCVSegmenter

        if source is None:
            return OpenCVSegmenter()
        weights = Path(source) / "facings.onnx" if Path(source).is_dir() else Path(source)
        if not weights.is_file():
            raise ShelfWatchError(f"{source}: no facings.onnx (train one with: shelfwatch train)")
        return OpenCVSegmenter(weights)
    if name == "clipseg":
        from shelfwatch.vision.models.clipseg import ClipSegReferrer, ClipSegSegmenter

        referrer = ClipSegReferrer.from_pretrained(
            source or s.clipseg_model, s.offline, s.device, s.quantize
        )
        return ClipSegSegmenter(referrer, s.product_prompt, s.gap_prompt)
    if name in ("mask2former", "oneformer"):
        from shelfwatch.vision.models.instances import InstanceSegmenter

        configured = s.mask2former_model if name == "mask2former" else s.oneformer_model
        return InstanceSegmenter.from_pretrained(name, source or configured, s.offline, s.device)
    if source is not None:
        raise ShelfWatchError(f"backend {name!r} takes no --model (it combines two models)")
    return get_segmenter(name)


def _factory(name: str) -> Callable[[], Segmenter]:
    return lambda: segmenter_from(name)


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


for _name in ("opencv", "clipseg", "mask2former", "oneformer"):
    register(_name, _factory(_name))
register("fused", _fused)
