"""Loading checkpoints with ``from_pretrained``: a hub id or a local folder, offline-aware."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from shelfwatch.core.errors import ShelfWatchError


class ModelUnavailable(ShelfWatchError):
    """A configured model cannot be loaded here; the message says why and what to do."""


def require_torch() -> Any:
    try:
        import torch
        import transformers  # noqa: F401
    except ImportError:
        raise ModelUnavailable(
            "model backends need torch and transformers: pip install -e '.[models]'"
        ) from None
    return torch


def pick_device(preference: str = "auto") -> Any:
    """CUDA when present (or asked for), else CPU."""
    torch = require_torch()
    if preference == "cpu":
        return torch.device("cpu")
    if preference == "cuda" and not torch.cuda.is_available():
        raise ModelUnavailable("--device cuda asked for, but no CUDA device is available")
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def check_local_folder(path: Path, model_type: str) -> None:
    """A local checkpoint folder must hold a config of the expected architecture and weights."""
    config = path / "config.json"
    if not config.exists():
        raise ModelUnavailable(f"{path}: not a model folder (config.json missing)")
    try:
        found = json.loads(config.read_text()).get("model_type")
    except json.JSONDecodeError as exc:
        raise ModelUnavailable(f"{config}: invalid JSON ({exc.msg})") from None
    if found != model_type:
        raise ModelUnavailable(f"{path}: checkpoint is a {found!r} model, expected {model_type!r}")
    weights = list(path.glob("*.safetensors")) + list(path.glob("*.bin"))
    if not weights:
        raise ModelUnavailable(f"{path}: no weights (*.safetensors or *.bin) in the model folder")


def load_pretrained(
    model_cls: Any,
    processor_cls: Any,
    source: str,
    model_type: str,
    offline: bool,
    **model_kwargs: Any,
) -> tuple[Any, Any]:
    """Model and processor from a local folder or a hub id (``model_kwargs`` go to the
    model's ``from_pretrained``, e.g. a new class head for fine-tuning).

    Offline (or when the hub is unreachable) only the local cache is used, and a missing
    checkpoint is a one-line error rather than a hang.
    """
    require_torch()
    local = Path(source).expanduser()
    if local.exists():
        check_local_folder(local, model_type)
        return _load(model_cls, processor_cls, str(local), True, None, model_kwargs)
    if offline or os.environ.get("HF_HUB_OFFLINE") == "1":
        return _load(model_cls, processor_cls, source, True, source, model_kwargs)
    try:
        return _load(model_cls, processor_cls, source, True, source, model_kwargs)
    except ModelUnavailable:
        # Short timeouts: a machine without network must fail fast, not hang.
        os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", "10")
        os.environ.setdefault("HF_HUB_DOWNLOAD_TIMEOUT", "30")
        return _load(model_cls, processor_cls, source, False, source, model_kwargs)


def _load(
    model_cls: Any,
    processor_cls: Any,
    source: str,
    local_files_only: bool,
    hub_id: str | None,
    model_kwargs: dict[str, Any],
) -> tuple[Any, Any]:
    try:
        model = model_cls.from_pretrained(source, local_files_only=local_files_only, **model_kwargs)
        processor = processor_cls.from_pretrained(source, local_files_only=local_files_only)
    except (OSError, ValueError) as exc:
        if hub_id:
            where = "in the local cache" if local_files_only else "locally or on the hub"
            raise ModelUnavailable(
                f"{hub_id}: weights not available {where} (run `shelfwatch models pull` where "
                "a network is available, or point the setting at a local model folder)"
            ) from None
        raise ModelUnavailable(
            f"{source}: cannot load model ({str(exc).splitlines()[0]})"
        ) from None
    model.eval()
    return model, processor


def is_cached(hub_id: str) -> bool:
    """Whether a hub checkpoint's config is in the local Hugging Face cache."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    found = try_to_load_from_cache(hub_id, "config.json")
    return isinstance(found, str)
