"""``shelfwatch bench training``: training throughput of each backend at its real size.

Random weights at the real checkpoints' configurations (cost does not depend on weight
values), rendered photos with their exact labels, and the real training code: each step is
``shelfwatch train``'s step. The first step is a warm-up and is not timed.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from shelfwatch.bench.models import peak_rss_mb, real_clipseg, real_mask2former
from shelfwatch.bench.models import run as run_isolated

BACKENDS = ["default", "clipseg", "mask2former"]
PHOTOS = 4


def _photos(folder: Path) -> list[tuple[Path, Any]]:
    from shelfwatch.labels.coco import read_coco
    from shelfwatch.synth import SynthConfig, render_dataset

    render_dataset(folder, SynthConfig(photos=PHOTOS, seed=77), progress=False)
    coco = read_coco(folder / "annotations.json")
    return [(folder / "images" / im.file_name, im) for im in coco.images]


def _bench(backend: str, steps: int, device_name: str) -> list[dict[str, Any]]:
    import torch

    from shelfwatch.services.training import DEFAULTS
    from shelfwatch.vision.fitting import Plan
    from shelfwatch.vision.models.loading import pick_device

    torch.manual_seed(0)
    device = pick_device(device_name)
    _, batch, lr = DEFAULTS[backend]
    stamps: list[float] = []

    def progress(done: int, total: int, loss: float) -> None:
        stamps.append(time.perf_counter())

    with tempfile.TemporaryDirectory() as tmp:
        photos = _photos(Path(tmp) / "photos")
        out = Path(tmp) / "model"
        plan = Plan(epochs=1, steps_per_epoch=steps + 1, lr=lr)
        if backend == "default":
            from shelfwatch.services.training import sources_from
            from shelfwatch.vision.detector.data import CROP
            from shelfwatch.vision.detector.train import train

            train(
                sources_from(photos),
                out,
                epochs=plan.epochs,
                steps_per_epoch=plan.steps_per_epoch,
                batch_size=batch,
                lr=lr,
                device=str(device),
                progress=progress,
            )
            unit, size = "crop", f"{CROP}x{CROP} crops"
        elif backend == "clipseg":
            from shelfwatch.vision.models.train_clipseg import prompt_vocabulary, train_clipseg

            referrer = real_clipseg(device)
            prompts = prompt_vocabulary(photos, "a product on a shelf", "empty shelf", {})
            train_clipseg(referrer, photos, prompts, out, plan, {}, batch, progress=progress)
            unit, size = "photo", "352x352, 8 prompts a photo, CLIP frozen"
        else:
            from shelfwatch.vision.models.train_mask2former import train_mask2former

            segmenter = real_mask2former(device)
            train_mask2former(segmenter, photos, out, plan, {}, batch, progress)
            unit, size = "photo", "800x1422 (shortest 800, longest 1422)"
    seconds = (stamps[-1] - stamps[0]) / steps  # per step, the warm-up step left out
    return [
        {
            "backend": backend,
            "input": size,
            "batch": batch,
            "steps_timed": steps,
            "s_per_step": round(seconds, 3),
            f"{unit}s_per_s": round(batch / seconds, 2),
            "peak_rss_mb": round(peak_rss_mb(), 1),
            "device": str(device),
            "threads": torch.get_num_threads(),
        }
    ]


def run(backends: list[str], steps: int = 5, device: str = "auto") -> list[dict[str, Any]]:
    """One row per backend, each measured in a process of its own."""
    return run_isolated(backends, steps, device, bench=_bench)
