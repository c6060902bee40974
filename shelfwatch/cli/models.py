"""``models`` (what is configured, pull checkpoints) and ``bench`` commands."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from shelfwatch.cli.common import fail, friendly_errors, segmenter_for, settings

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


@bench_app.command("training")
@friendly_errors
def bench_training(
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
    backend: list[str] = typer.Option(
        None, "--backend", help="default, clipseg and/or mask2former (default: all)."
    ),
    steps: int = typer.Option(5, "--steps", min=1, help="Timed training steps per backend."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
) -> None:
    """Training photos/s of each backend at its real default size (random weights)."""
    from shelfwatch.bench.training import BACKENDS, run
    from shelfwatch.vision.models.loading import require_torch

    require_torch()
    chosen = backend or BACKENDS
    unknown = sorted(set(chosen) - set(BACKENDS))
    if unknown:
        raise fail(f"unknown backend(s) {', '.join(unknown)}; choose from {', '.join(BACKENDS)}")
    for row in run(chosen, steps, device):
        if as_json:
            typer.echo(json.dumps(row))
        elif "error" in row:
            typer.echo(f"{row['backend']}: failed: {row['error']}")
        else:
            rate = next(f"{v} {k.split('_')[0]}" for k, v in row.items() if k.endswith("_per_s"))
            typer.echo(
                f"{row['backend']}: {rate}/s ({row['s_per_step']} s per step of {row['batch']}; "
                f"{row['input']}), peak RSS {row['peak_rss_mb']} MB on {row['device']}"
            )


def _default_shared() -> Path | None:
    import shelfwatch

    for candidate in (
        Path.cwd().parent / "shared",
        Path(shelfwatch.__file__).resolve().parents[2] / "shared",
    ):
        if (candidate / "README.md").exists():
            return candidate
    return None


SETS = (
    "rendered",
    "varied",
    "real-shelves",
    "real-shelves-more",
    "real-counts",
    "real-shelves-more-products",
    "real-products",
    "real-gaps",
    "speed",
)


@bench_app.command("accuracy")
@friendly_errors
def bench_accuracy(
    ctx: typer.Context,
    data: Path = typer.Option(None, "--data", help="Rendered set (default: render one)."),
    photos: int = typer.Option(200, "--photos", min=1, help="Photos to render without --data."),
    seed: int = typer.Option(9001, "--seed", help="Render seed (never used for tuning)."),
    varied_seed: int = typer.Option(
        9401,
        "--varied-seed",
        help="Seed of the varied renders (packed or spread facings, 3-19 cm packs, shared "
        "colours, no outlines; never used for tuning).",
    ),
    shared: Path = typer.Option(
        None,
        "--shared",
        help="Folder with real-shelves/, real-products/ and real-gaps/ (default: ../shared "
        "when present).",
    ),
    backend: str = typer.Option(None, "--backend", help="Backend (default: settings)."),
    model: Path = typer.Option(
        None, "--model", help="The backend's weights: a train --out folder or a checkpoint."
    ),
    sets: str = typer.Option(
        ",".join(SETS), "--sets", help=f"Comma-separated sets to score: {', '.join(SETS)}."
    ),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
    overlay: Path = typer.Option(None, "--overlay", help="Write an overlay of every photo."),
    photo_scale: float = typer.Option(
        1.0,
        "--photo-scale",
        min=0.1,
        max=4.0,
        help="Read every photo resized by this factor, scored against the same truth (how "
        "the figures hold at another camera's resolution); printed as photo_scale.",
    ),
) -> None:
    """Accuracy on rendered photos and on the real photos in ../shared."""
    import tempfile

    from tqdm import tqdm

    from shelfwatch.bench import accuracy
    from shelfwatch.synth import SynthConfig, render_dataset

    chosen = [s.strip() for s in sets.split(",") if s.strip()]
    unknown = sorted(set(chosen) - set(SETS))
    if unknown:
        raise fail(f"unknown set {', '.join(unknown)}; choose from: {', '.join(SETS)}")
    unscaled = segmenter_for(backend, model)
    # The speed set sizes its photos itself (1600x1200, 8 MP): it reads them as they are.
    segmenter = accuracy.Resized(unscaled, photo_scale) if photo_scale != 1 else unscaled
    lines: list[dict] = []
    # The bench's own renders, removed when the command ends (ok or not).
    scratch = tempfile.TemporaryDirectory(prefix="shelfwatch-bench-")
    ctx.call_on_close(scratch.cleanup)

    def score(folder: Path, label: str, kept: bool) -> None:
        bar = tqdm(desc=f"scoring {label}", unit="photo", disable=as_json)
        scored = accuracy.score_rendered(
            folder,
            segmenter,
            overlay / label if overlay else None,
            progress=lambda done, total: (setattr(bar, "total", total), bar.update(1)),
        )
        bar.close()
        # "data": the rendered set's folder where it is the user's (--data), else None.
        lines.append(scored.summary() | {"set": label, "data": str(folder) if kept else None})

    given = data is not None
    if "rendered" in chosen:
        if data is None:
            data = Path(scratch.name) / "rendered"
            render_dataset(data, SynthConfig(photos=photos, seed=seed), progress=not as_json)
        score(data, "rendered", given)
    if "varied" in chosen:
        varied = Path(scratch.name) / "varied"
        config = SynthConfig(photos=photos, seed=varied_seed, variety=True)
        render_dataset(varied, config, progress=not as_json)
        score(varied, "rendered-varied", False)
    shared = shared or _default_shared()
    if shared is not None and "real-shelves" in chosen and (shared / "real-shelves").exists():
        rows = accuracy.score_real_shelves(
            shared / "real-shelves", segmenter, overlay / "real" if overlay else None
        )
        half = len(rows) // 2
        lines += [
            accuracy.summarise_shelves(rows[:half], "first half"),
            accuracy.summarise_shelves(rows[half:], "second half"),
            accuracy.summarise_shelves(rows, "all"),
        ]
        lines += rows
    more = shared / "real-shelves-more" if shared is not None else None
    if more is not None and "real-shelves-more" in chosen and more.exists():
        # Shelf boxes on 147 more photos. The shelf-edge net trained on those of the 70
        # photos the detector learned products from; the other 77 were never trained or
        # tuned on.
        from shelfwatch.labels.shared import supermarket_products

        trained = {file.name for file, _ in supermarket_products(shared, "train")}
        rows = [
            r | {"set": "real-shelves-more"} for r in accuracy.score_real_shelves(more, segmenter)
        ]
        for part, chosen_rows in (
            ("held-out", [r for r in rows if r["image"] not in trained]),
            ("train", [r for r in rows if r["image"] in trained]),
            ("all", rows),
        ):
            lines.append(
                accuracy.summarise_shelves(chosen_rows, part) | {"set": "real-shelves-more"}
            )
        lines += rows
    counts = shared / "real-shelves" / "counts.csv" if shared is not None else None
    if counts is not None and "real-counts" in chosen and counts.exists():
        rows = accuracy.score_real_counts(shared / "real-shelves", segmenter)
        names = sorted({r["image"] for r in rows})
        tuned = set(names[: len(names) // 2])
        lines += [
            accuracy.summarise_counts([r for r in rows if r["image"] in tuned], "tuned on"),
            accuracy.summarise_counts([r for r in rows if r["image"] not in tuned], "held out"),
            accuracy.summarise_counts(rows, "all"),
        ]
        lines += rows
    more = shared / "real-shelves-more" if shared is not None else None
    if more is not None and "real-shelves-more-products" in chosen and more.exists():
        # Our own boxes (data/labels): the second batch was never trained or tuned on; the
        # first batch's (trained on) figure is printed beside it.
        for part in ("held-out", "train"):
            rows = accuracy.score_supermarket_products(shared, segmenter, part)
            lines.append(accuracy.summarise_supermarket_products(rows, part))
            lines += rows
    if shared is not None and "real-products" in chosen and (shared / "real-products").exists():
        rows = accuracy.score_real_products(
            shared / "real-products", segmenter, overlay / "real" if overlay else None
        )
        lines += [
            accuracy.summarise_products(
                [r for r in rows if r["camera"] in ("C1", "C2")], "cameras C1-C2"
            ),
            accuracy.summarise_products(
                [r for r in rows if r["camera"] in ("C3", "C4")], "cameras C3-C4"
            ),
            accuracy.summarise_products(rows, "all"),
        ]
        lines += rows
    if shared is not None and "real-gaps" in chosen and (shared / "real-gaps").exists():
        rows = accuracy.score_real_gaps(shared / "real-gaps", segmenter)
        lines += [
            accuracy.summarise_gaps([r for r in rows if r["part"] == "train"], "train"),
            accuracy.summarise_gaps([r for r in rows if r["part"] == "held-out"], "held-out"),
            accuracy.summarise_gaps(rows, "all"),
        ]
        lines += rows
    if "speed" in chosen:
        # Real supermarket photos when there, else rendered ones.
        folder = shared / "real-shelves" / "images" if shared is not None else None
        if folder is None or not folder.is_dir():
            if data is None:
                data = Path(scratch.name) / "rendered"
                render_dataset(data, SynthConfig(photos=20, seed=seed), progress=not as_json)
            folder = data / "images"
        lines += accuracy.score_speed(sorted(folder.iterdir())[:20], unscaled)
    if shared is None and set(chosen) - {"rendered", "varied", "speed"}:  # real sets asked for
        lines.append({"set": "real", "skipped": "no ../shared folder with real photos"})
    for line in lines:
        if photo_scale != 1 and line.get("set") != "speed":
            line = line | {"photo_scale": photo_scale}
        if as_json:
            typer.echo(json.dumps(line))
        elif "image" not in line:
            typer.echo("  ".join(f"{k}={v}" for k, v in line.items()))


@bench_app.command("worker")
@friendly_errors
def bench_worker(
    photos: int = typer.Option(120, "--photos", min=4, help="Photos per run."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
) -> None:
    """Queue throughput with 1 and 2 worker processes, and queue overhead per photo."""
    from shelfwatch.bench import worker
    from shelfwatch.services.demo import sample_data_dir

    rows = worker.run(photos, sample_data_dir() / "sample" / "images")
    for row in rows:
        typer.echo(json.dumps(row) if as_json else "  ".join(f"{k}={v}" for k, v in row.items()))


@bench_app.command("captures")
@friendly_errors
def bench_captures(
    seeds: str = typer.Option("9101,9102,9103", "--seeds", help="Render seeds (comma-separated)."),
    shared: Path = typer.Option(None, "--shared", help="../shared: also its real videos."),
    backend: str = typer.Option(None, "--backend", help="Segmentation backend."),
    model: Path = typer.Option(
        None, "--model", help="The backend's weights: a train --out folder or a checkpoint."
    ),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
) -> None:
    """Rendered captures (videos and 5-photo series) scored against exact truth, and the
    real aisle videos: counts, consistency and time per second of video."""
    import tempfile

    from shelfwatch.bench import captures

    segmenter = segmenter_for(backend, model)
    say = (lambda _m: None) if as_json else typer.echo
    try:
        seed_list = [int(s) for s in seeds.split(",") if s.strip()]
    except ValueError:
        raise fail(f"--seeds must be whole numbers, got {seeds!r}") from None
    with tempfile.TemporaryDirectory() as tmp:
        rows = captures.rendered(segmenter, Path(tmp), seed_list, say)
    out = [*rows, captures.summary(rows)] if rows else []  # --seeds "": the real videos only
    if shared is not None:
        out += captures.real_videos(segmenter, shared / "real-video", say)
    for row in out:
        typer.echo(json.dumps(row) if as_json else "  ".join(f"{k}={v}" for k, v in row.items()))


@bench_app.command("quality")
@friendly_errors
def bench_quality(
    shared: Path = typer.Option(Path("../shared"), "--shared", help="The shared data folder."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
) -> None:
    """The quality gate's measures (min / 5th pct / median / max) and retakes on real photos
    and on degraded copies of them: how its thresholds were chosen."""
    from shelfwatch.bench import quality

    if not shared.is_dir():
        raise fail(f"{shared}: no such folder (give --shared DIR)")
    for row in quality.run(shared):
        typer.echo(json.dumps(row) if as_json else "  ".join(f"{k}={v}" for k, v in row.items()))


@bench_app.command("dashboard")
@friendly_errors
def bench_dashboard(
    stores: int = typer.Option(100, "--stores", min=1, help="Stores in the built database."),
    days: int = typer.Option(90, "--days", min=1, help="Days of audits per store."),
    home: Path = typer.Option(
        None,
        "--home",
        help="Build (or reuse) the database and photos here; default a temp dir, removed after.",
    ),
    database_url: str = typer.Option(
        None, "--database-url", help="Build into this empty database instead of SQLite in --home."
    ),
    repeats: int = typer.Option(5, "--repeats", min=1, help="Warm renders per page."),
    build_only: bool = typer.Option(False, "--build-only", help="Build the database, no timing."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
) -> None:
    """Build a chain-sized database (100 stores x 90 days: ~1 M product instances) and time
    every dashboard page on it as an admin (all stores) and as a store manager."""
    import os
    import shutil
    import tempfile

    from sqlalchemy import func, select

    from shelfwatch.bench import dashboard as bench
    from shelfwatch.cli.operations import dashboard_script
    from shelfwatch.db.engine import session_factory
    from shelfwatch.db.models import Store
    from shelfwatch.settings import get_settings

    root = home or Path(tempfile.mkdtemp(prefix="shelfwatch-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    url = database_url or f"sqlite:///{(root / 'shelfwatch.db').as_posix()}"
    try:
        built = False
        if (root / "shelfwatch.db").exists() or database_url:
            try:
                with session_factory(url)() as session:
                    built = bool(session.scalar(select(func.count(Store.id))))
            except Exception:  # noqa: BLE001 - not migrated yet: build it
                built = False
        if built:
            typer.echo(f"reusing the database at {url}", err=True)
        else:
            info = bench.build_database(
                url, root / "photos", stores, days, say=lambda m: typer.echo(m, err=True)
            )
            typer.echo(json.dumps({"built": info}) if as_json else f"built: {info}")
        if build_only:
            return
        os.environ["SHELFWATCH_HOME"] = str(root)
        os.environ["SHELFWATCH_DATABASE_URL"] = url
        os.environ["SHELFWATCH_STORAGE_DIR"] = str(root / "photos")
        get_settings.cache_clear()
        app_script = dashboard_script()
        pages = {"overview": app_script}
        for script in sorted((app_script.parent / "pages").glob("*.py")):
            pages[script.stem.split("_", 1)[1].lower()] = script
        for row in bench.time_pages(pages, ["bench-admin", "bench-manager"], repeats):
            row["under_1s"] = row["median_ms"] < 1000
            typer.echo(
                json.dumps(row) if as_json else "  ".join(f"{k}={v}" for k, v in row.items())
            )
    finally:
        if home is None:
            shutil.rmtree(root, ignore_errors=True)


@bench_app.command("real-products-coco")
@friendly_errors
def bench_real_products_coco(
    out: Path = typer.Option(..., "--out", help="COCO file to write."),
    cameras: str = typer.Option("C1,C2", "--cameras", help="Comma-separated cameras."),
    shared: Path = typer.Option(None, "--shared", help="Folder with real-products/."),
) -> None:
    """../shared/real-products as COCO (outside each annotated region: crowd boxes), for
    ``train`` and ``eval`` with ``--images <shared>/real-products/images``."""
    from shelfwatch.bench.accuracy import real_products_coco

    shared = shared or _default_shared()
    if shared is None or not (shared / "real-products" / "labels.csv").exists():
        raise fail("no real-products folder (../shared/real-products or --shared)")
    doc = real_products_coco(shared / "real-products", tuple(cameras.split(",")))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc), encoding="utf-8")
    typer.echo(f"{len(doc['images'])} photos, {len(doc['annotations'])} boxes -> {out}")
