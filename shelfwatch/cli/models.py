"""``models`` (what is configured, pull checkpoints) and ``bench`` commands."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from shelfwatch.cli.common import friendly_errors, settings

models_app = typer.Typer(help="Model checkpoints of the model backends.", no_args_is_help=True)
bench_app = typer.Typer(help="Benchmarks that print figures.", no_args_is_help=True)

MODEL_BACKENDS = {
    "clipseg": "clipseg_model",
    "mask2former": "mask2former_model",
    "oneformer": "oneformer_model",
}


def _availability(source: str) -> str:
    from shelfwatch.vision.models.loading import is_cached

    path = Path(source).expanduser()
    if path.exists():
        return "local folder" if (path / "config.json").exists() else "folder without config.json"
    try:
        return "in local cache" if is_cached(source) else "not downloaded"
    except Exception:  # noqa: BLE001 - a broken cache must not break the listing
        return "unknown"


@models_app.command("list")
@friendly_errors
def models_list() -> None:
    """Backends, their configured checkpoints and whether they are available here."""
    s = settings()
    try:
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    except ImportError:
        device = "torch not installed (pip install -e '.[models]')"
    typer.echo(f"{'backend':<12}{'checkpoint':<48}available")
    typer.echo(f"{'opencv':<12}{'(no weights)':<48}yes")
    for backend, key in MODEL_BACKENDS.items():
        source = getattr(s, key)
        typer.echo(f"{backend:<12}{source:<48}{_availability(source)}")
    typer.echo(f"{'fused':<12}{'mask2former + clipseg':<48}needs both")
    typer.echo(f"device: {device}; offline: {s.offline}")


@models_app.command("pull")
@friendly_errors
def models_pull(
    backend: list[str] = typer.Option(None, "--backend", help="Only these (default: all)."),
) -> None:
    """Download the configured checkpoints into the local cache (needs a network)."""
    from shelfwatch.vision.models.loading import ModelUnavailable, require_torch

    require_torch()
    from huggingface_hub import snapshot_download

    s = settings()
    failed = 0
    for name in backend or list(MODEL_BACKENDS):
        if name not in MODEL_BACKENDS:
            raise ModelUnavailable(f"unknown model backend {name!r}")
        source = getattr(s, MODEL_BACKENDS[name])
        if Path(source).expanduser().exists():
            typer.echo(f"{name}: local folder {source}, nothing to pull")
            continue
        try:
            path = snapshot_download(source, etag_timeout=10)
            typer.echo(f"{name}: {source} -> {path}")
        except Exception as exc:  # noqa: BLE001 - report every checkpoint, fail at the end
            typer.echo(f"error: {name}: cannot download {source} ({type(exc).__name__})", err=True)
            failed += 1
    if failed:
        raise typer.Exit(1)


@bench_app.command("models")
@friendly_errors
def bench_models(
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
    backend: list[str] = typer.Option(None, "--backend", help="clipseg and/or mask2former."),
    repeats: int = typer.Option(3, "--repeats", min=1, help="Timed runs per figure."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
) -> None:
    """ms per 1920x1080 photo and peak RSS of each model backend at its real size."""
    from shelfwatch.bench.models import run
    from shelfwatch.vision.models.loading import require_torch

    require_torch()
    rows = run(backend or ["clipseg", "mask2former"], repeats, device)
    for row in rows:
        if as_json:
            typer.echo(json.dumps(row))
        elif "error" in row:
            typer.echo(f"{row['backend']}: failed: {row['error']}")
        else:
            extra = f", {row['prompts']} prompt(s)" if row.get("prompts") else ""
            typer.echo(
                f"{row['backend']}{extra}: {row['ms_per_photo']} ms/photo vs "
                f"{row['baseline_ms']} ms baseline (x{row['speedup']}), "
                f"peak RSS {row['peak_rss_mb']} MB"
            )
