"""``shelfwatch bench models``: ms per photo and peak memory of each model backend.

Random weights at the real checkpoints' configurations: inference cost does not depend on
weight values, so no download is needed. Each backend runs in its own process so its peak
RSS is its own.
"""

from __future__ import annotations

import multiprocessing as mp
import resource
import time
from collections.abc import Callable
from typing import Any

import numpy as np

PROMPTS = [
    "orange bottles",
    "empty shelf",
    "blue cereal box",
    "red cans",
    "green pouch",
    "white milk carton",
    "yellow bottle",
    "purple snack bag",
]


def real_clipseg(device: Any) -> Any:
    """CIDAS/clipseg-rd64-refined's architecture (ViT-B/16, complex transposed conv)."""
    from transformers import (
        CLIPImageProcessor,
        CLIPSegConfig,
        CLIPSegForImageSegmentation,
        CLIPSegProcessor,
    )

    from shelfwatch.vision.models.clipseg import ClipSegReferrer

    config = CLIPSegConfig(
        vision_config={"patch_size": 16}, use_complex_transposed_convolution=True
    )
    model = CLIPSegForImageSegmentation(config).eval()
    images = CLIPImageProcessor(
        size={"height": 352, "width": 352},
        do_center_crop=False,
        image_mean=[0.485, 0.456, 0.406],
        image_std=[0.229, 0.224, 0.225],
    )
    processor = CLIPSegProcessor(image_processor=images, tokenizer=_char_tokenizer())
    return ClipSegReferrer(model, processor, device)


def _char_tokenizer() -> Any:
    import tempfile
    from pathlib import Path

    from shelfwatch.vision.models.offline import char_clip_tokenizer

    # The tokenizer holds its vocabulary in memory once loaded: the folder can go.
    with tempfile.TemporaryDirectory(prefix="shelfwatch-tok-") as folder:
        return char_clip_tokenizer(Path(folder))


def real_mask2former(device: Any) -> Any:
    """facebook/mask2former-swin-tiny-coco-instance's architecture."""
    from transformers import (
        Mask2FormerConfig,
        Mask2FormerForUniversalSegmentation,
        Mask2FormerImageProcessor,
        SwinConfig,
    )

    from shelfwatch.vision.models.instances import InstanceSegmenter

    backbone = SwinConfig(
        embed_dim=96,
        depths=[2, 2, 6, 2],
        num_heads=[3, 6, 12, 24],
        window_size=7,
        drop_path_rate=0.3,
        out_features=["stage1", "stage2", "stage3", "stage4"],
    )
    model = Mask2FormerForUniversalSegmentation(
        Mask2FormerConfig(backbone_config=backbone, num_labels=80)
    ).eval()
    processor = Mask2FormerImageProcessor(size={"shortest_edge": 800, "longest_edge": 1422})
    return InstanceSegmenter("mask2former", model, processor, device)


def _time(fn: Callable[[], Any], repeats: int) -> float:
    fn()  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats * 1000


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _bench(backend: str, repeats: int, device_name: str) -> list[dict[str, Any]]:
    import torch

    from shelfwatch.vision.models.loading import pick_device

    torch.manual_seed(0)
    device = pick_device(device_name)
    photo = (np.random.default_rng(0).random((1080, 1920, 3)) * 255).astype(np.uint8)
    rows: list[dict[str, Any]] = []
    if backend == "clipseg":
        ref = real_clipseg(device)
        for n in (1, 8):
            prompts = PROMPTS[:n]
            ms = _time(lambda p=prompts: ref.logits(photo, p), repeats)
            base = _time(lambda p=prompts: ref.standard_logits(photo, p), repeats)
            maps = _time(lambda p=prompts: ref.heatmaps(photo, p), repeats)
            rows.append(
                {
                    "backend": "clipseg",
                    "prompts": n,
                    "ms_per_photo": round(ms, 1),
                    "baseline_ms": round(base, 1),
                    "speedup": round(base / ms, 2),
                    "heatmaps_ms": round(maps, 1),
                    "peak_rss_mb": round(peak_rss_mb(), 1),
                    "device": str(device),
                }
            )
        if device.type == "cpu":
            rows.append(_int8_row(ref, photo, repeats))
    elif backend == "mask2former":
        seg = real_mask2former(device)
        inputs = seg.inputs([photo])
        outputs = seg.forward(inputs)
        seg.threshold = 0.0  # random weights: keep every query, the worst case for post-processing
        forward = _time(lambda: seg.forward(inputs), repeats)
        post = _time(lambda: seg.postprocess(outputs, inputs, 1080, 1920), repeats)
        full = _time(
            lambda: seg.processor.post_process_instance_segmentation(
                outputs, threshold=0.0, target_sizes=[(1080, 1920)]
            ),
            1,
        )
        rows.append(
            {
                "backend": "mask2former",
                "prompts": None,
                "ms_per_photo": round(forward + post, 1),
                "baseline_ms": round(forward + full, 1),
                "speedup": round((forward + full) / (forward + post), 2),
                "forward_ms": round(forward, 1),
                "postprocess_ms": round(post, 1),
                "transformers_postprocess_ms": round(full, 1),
                "peak_rss_mb": round(peak_rss_mb(), 1),
                "device": str(device),
                "input": list(inputs["pixel_values"].shape[-2:]),
            }
        )
    return rows


def _int8_row(ref: Any, photo: np.ndarray, repeats: int) -> dict[str, Any]:
    """Dynamic int8 quantisation of the linear layers: speed and how far the heatmaps move."""
    import warnings

    import torch

    warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*")
    prompts = PROMPTS[:8]
    fp32 = torch.sigmoid(ref.logits(photo, prompts))
    base = _time(lambda: ref.logits(photo, prompts), repeats)
    ref.model = torch.ao.quantization.quantize_dynamic(
        ref.model, {torch.nn.Linear}, dtype=torch.qint8
    )
    ref.forget_prompts()
    int8 = torch.sigmoid(ref.logits(photo, prompts))
    ms = _time(lambda: ref.logits(photo, prompts), repeats)
    return {
        "backend": "clipseg-int8",
        "prompts": 8,
        "ms_per_photo": round(ms, 1),
        "baseline_ms": round(base, 1),
        "speedup": round(base / ms, 2),
        "max_prob_delta": round(float((int8 - fp32).abs().max()), 4),
        "mean_prob_delta": round(float((int8 - fp32).abs().mean()), 5),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "device": "cpu",
    }


Bench = Callable[[str, int, str], list[dict[str, Any]]]


def _child(bench: Bench, backend: str, repeats: int, device: str, queue: Any) -> None:
    try:
        queue.put(bench(backend, repeats, device))
    except Exception as exc:  # noqa: BLE001 - reported to the parent as a figure-less row
        queue.put([{"backend": backend, "error": f"{type(exc).__name__}: {exc}"}])


def run(
    backends: list[str], repeats: int = 3, device: str = "auto", bench: Bench | None = None
) -> list[dict[str, Any]]:
    """``bench(backend, repeats, device)`` (default: inference) for each backend, each in a
    process of its own so its peak RSS is its own."""
    ctx = mp.get_context("spawn")
    rows: list[dict[str, Any]] = []
    for backend in backends:
        queue = ctx.Queue()
        proc = ctx.Process(target=_child, args=(bench or _bench, backend, repeats, device, queue))
        proc.start()
        rows.extend(_result(queue, proc, backend))
        proc.join()
    return rows


def _result(queue: Any, proc: Any, backend: str) -> list[dict[str, Any]]:
    """The child's rows, or an error row if it died without answering (never a hang)."""
    import queue as queue_module

    while True:
        try:
            return queue.get(timeout=5)
        except queue_module.Empty:
            if not proc.is_alive():
                return [
                    {
                        "backend": backend,
                        "error": f"benchmark process exited with code {proc.exitcode}",
                    }
                ]
