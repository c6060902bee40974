"""Fit the facing detector (torch) and export it to ONNX for ``infer``."""

from __future__ import annotations

import json
import random
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from shelfwatch.vision.detector.data import (
    Source,
    edge_targets,
    sample,
    targets,
    upright_targets,
    void_mask_targets,
)
from shelfwatch.vision.detector.quantize import QUANTIZED_KINDS, calibration_inputs, quantize
from shelfwatch.vision.fitting import Plan, fit

# Output channels: product heatmap, log width, log height, x and y offset, void heatmap.
OUTPUTS = 6
GAP_HEAT = 5
# The shelf-edge net (``shelf_edges.onnx``): the same layout at half the width, one heatmap
# of the line each shelf's products stand on. A net of its own, not a head of the
# detector's: as a seventh channel of the detector it cost cigarette racks 2 and 11 points
# of precision in two training runs (a third diverged). The upright net (``uprights.onnx``)
# has the same layout: one map of the sides of every annotated bay.
EDGE_WIDTH = 8
# The void-mask net (``void_mask.onnx``): the same layout, one map of the inside of every void
# box. The void heatmap marks a void's centre; real voids are judged by the area they cover
# (the bench's area rule), and a mask learns that area directly.
VOID_WIDTH = 16
# The detector's width (channels of its first stage; 0.53 M parameters). A net 1.5 times as
# wide (24: 1.19 M parameters, 2.3 times the time per pass) trained with the shipped recipe
# fitted its training photos no better and counted worse (see the README), so it stays.
WIDTH = 16


def _block(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, 1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, 1, 1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class FacingNet(nn.Module):
    """Five strided stages, a top-down path to 1/4 resolution, one head: a heatmap of product
    centres, box size and offset (shared by both classes), and a heatmap of void centres."""

    def __init__(self, width: int = WIDTH, outputs: int = OUTPUTS) -> None:
        super().__init__()
        c = [width, 2 * width, 4 * width, 6 * width, 8 * width]
        self.stages = nn.ModuleList(
            [_block(3, c[0], 2)] + [_block(a, b, 2) for a, b in zip(c[:-1], c[1:], strict=True)]
        )
        self.lateral = nn.ModuleList([nn.Conv2d(ch, 4 * width, 1) for ch in c[1:]])
        self.head = nn.Sequential(
            nn.Conv2d(4 * width, 4 * width, 3, 1, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(4 * width, outputs, 1),
        )
        nn.init.constant_(self.head[-1].bias, 0.0)
        with torch.no_grad():
            for k in (0, GAP_HEAT) if outputs == OUTPUTS else range(outputs):
                self.head[-1].bias[k] = -2.19  # heatmaps start at p = 0.1 (CenterNet's prior)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        top = self.lateral[-1](feats[-1])
        for lat, f in zip(reversed(self.lateral[:-1]), reversed(feats[1:-1]), strict=True):
            top = F.interpolate(top, scale_factor=2.0, mode="nearest") + lat(f)
        return self.head(top)


def focal(
    logits: torch.Tensor, heat: torch.Tensor, centre: torch.Tensor, valid: torch.Tensor
) -> torch.Tensor:
    """CenterNet's focal loss on each heatmap where its kind is labeled, each over its own
    centres (voids are far fewer than products and would otherwise hardly count)."""
    p = torch.sigmoid(logits).clamp(1e-4, 1 - 1e-4)
    pos = centre * valid
    neg = (1 - centre) * valid
    pos_loss = -(torch.log(p) * (1 - p) ** 2 * pos).sum(dim=(0, 2, 3))
    neg_loss = -(torch.log(1 - p) * p**2 * (1 - heat) ** 4 * neg).sum(dim=(0, 2, 3))
    return ((pos_loss + neg_loss) / pos.sum(dim=(0, 2, 3)).clamp(min=1)).sum()


def loss_fn(
    out: torch.Tensor,
    heat: torch.Tensor,
    size: torch.Tensor,
    offset: torch.Tensor,
    centre: torch.Tensor,
    valid: torch.Tensor,
) -> torch.Tensor:
    """The focal loss on the product and void heatmaps, and L1 on size and offset at the
    centres."""
    logits = torch.stack([out[:, 0], out[:, GAP_HEAT]], dim=1)
    pos = centre * valid
    n = pos.sum().clamp(min=1)
    at = pos.amax(dim=1, keepdim=True)
    reg = ((out[:, 1:3] - size).abs() * at).sum() + ((out[:, 3:5] - offset).abs() * at).sum()
    return focal(logits, heat, centre, valid) + 0.5 * reg / n


def batch(sources: list[Source], rng: np.random.Generator, size: int) -> tuple[torch.Tensor, ...]:
    xs, hs, ss, os_, cs, vs = [], [], [], [], [], []
    for _ in range(size):
        s = sample(sources[int(rng.integers(len(sources)))], rng)
        heat, sz, off, centre = targets(s.boxes, s.image.shape[1], s.image.shape[2])
        valid = s.valid[:2]  # products and voids; the shelf edges' map is the edge net's
        for lst, v in zip(
            (xs, hs, ss, os_, cs, vs), (s.image, heat, sz, off, centre, valid), strict=True
        ):
            lst.append(v)
    return tuple(torch.from_numpy(np.stack(v)) for v in (xs, hs, ss, os_, cs, vs))


def line_batch(
    sources: list[Source], rng: np.random.Generator, size: int, uprights: bool = False
) -> tuple[torch.Tensor, ...]:
    """A batch for a line net: the shelf-edge net (lines under the shelf boxes) or, with
    ``uprights``, the upright net (lines down the bays' sides), each with its own valid map."""
    xs, hs, cs, vs = [], [], [], []
    for _ in range(size):
        s = sample(sources[int(rng.integers(len(sources)))], rng)
        h, w = s.image.shape[1:]
        if uprights:
            (heat, centre), valid = upright_targets(s.uprights, h, w), s.valid[3:4]
        else:
            (heat, centre), valid = edge_targets(s.shelves, h, w), s.valid[2:3]
        for lst, v in zip((xs, hs, cs, vs), (s.image, heat, centre, valid), strict=True):
            lst.append(v)
    return tuple(torch.from_numpy(np.stack(v)) for v in (xs, hs, cs, vs))


def void_mask_batch(
    sources: list[Source], rng: np.random.Generator, size: int
) -> tuple[torch.Tensor, ...]:
    xs, ms, vs = [], [], []
    for _ in range(size):
        s = sample(sources[int(rng.integers(len(sources)))], rng)
        mask = void_mask_targets(s.boxes[1], s.image.shape[1], s.image.shape[2])
        for lst, v in zip((xs, ms, vs), (s.image, mask, s.valid[1:2]), strict=True):
            lst.append(v)
    return tuple(torch.from_numpy(np.stack(v)) for v in (xs, ms, vs))


def mask_loss(logits: torch.Tensor, mask: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy where the map is labeled (void cells weigh three times: voids
    cover a small share of a photo) plus the soft Dice loss, which scores the area as a
    whole as the bench does."""
    bce = F.binary_cross_entropy_with_logits(logits, mask, reduction="none")
    bce = (bce * valid * (1 + 2 * mask)).sum() / valid.sum().clamp(min=1)
    p = torch.sigmoid(logits) * valid
    dice = 1 - (2 * (p * mask).sum() + 1) / (p.sum() + (mask * valid).sum() + 1)
    return bce + dice


def train(
    sources: list[Source],
    out_dir: Path,
    epochs: int = 30,
    steps_per_epoch: int = 100,
    batch_size: int = 8,
    lr: float = 2e-3,
    seed: int = 0,
    device: str = "cpu",
    resume: bool = False,
    progress: Callable[[int, int, float], None] | None = None,
    kind: str = "facings",
    width: int = WIDTH,
) -> dict[str, object]:
    """Train the facing detector (``kind="facings"``: ``out_dir/facings.onnx``), the second
    detector (``"facings-long"``, the same net, the caller gives it four times the epochs:
    ``out_dir/facings_long.onnx``, its checkpoint in ``out_dir/facings-long``), the
    shelf-edge net (``"shelf-edges"``, on sources with shelf boxes:
    ``out_dir/shelf_edges.onnx``, its checkpoint in ``out_dir/shelf-edges``), the upright
    net (``"uprights"``, likewise: ``out_dir/uprights.onnx``, ``out_dir/uprights``) or the
    void-mask net (``"void-mask"``, on sources with void boxes: ``out_dir/void_mask.onnx``,
    checkpoint in ``out_dir/void-mask``) from ``sources`` (see ``fitting.fit``). ``width``:
    the detectors' (``FacingNet``'s; the one-map nets keep theirs). The detectors and the
    void-mask net are written as int8 (``quantize``; calibrated on ``sources``' photos), their
    float export kept beside the checkpoint as ``*_float.onnx``."""
    random.seed(seed)
    torch.manual_seed(seed)
    detector = kind in ("facings", "facings-long")
    if detector:
        if width < 4:
            raise ValueError(f"detector width {width}: at least 4")
        net = FacingNet(width).to(device)
        folder, onnx_name, backend = (
            (out_dir, "facings.onnx", "default")
            if kind == "facings"
            else (out_dir / kind, "facings_long.onnx", f"default-{kind}")
        )

        def step_loss(rng: np.random.Generator) -> torch.Tensor:
            x, heat, size, offset, centre, valid = (
                t.to(device) for t in batch(sources, rng, batch_size)
            )
            return loss_fn(net(x), heat, size, offset, centre, valid)

    elif kind in ("shelf-edges", "uprights"):  # the line nets, on photos with shelf boxes
        if not any(s.shelf_region is not None for s in sources):
            raise ValueError("no source has shelf boxes")
        net = FacingNet(EDGE_WIDTH, outputs=1).to(device)
        folder, onnx_name = out_dir / kind, f"{kind.replace('-', '_')}.onnx"
        backend, uprights = f"default-{kind}", kind == "uprights"

        def step_loss(rng: np.random.Generator) -> torch.Tensor:
            x, heat, centre, valid = (
                t.to(device) for t in line_batch(sources, rng, batch_size, uprights)
            )
            return focal(net(x), heat, centre, valid)

    elif kind == "void-mask":
        if not any(s.gaps is not None and len(s.gaps) for s in sources):
            raise ValueError("no source has void boxes")
        net = FacingNet(VOID_WIDTH, outputs=1).to(device)
        folder, onnx_name, backend = out_dir / "void-mask", "void_mask.onnx", "default-void-mask"

        def step_loss(rng: np.random.Generator) -> torch.Tensor:
            x, mask, valid = (t.to(device) for t in void_mask_batch(sources, rng, batch_size))
            return mask_loss(net(x), mask, valid)

    else:
        raise ValueError(f"unknown kind {kind!r}")
    meta = {"backend": backend, "epochs": epochs, "steps": steps_per_epoch, "batch": batch_size}
    if detector and width != WIDTH:
        # Named only when not the shipped width, so checkpoints made before the option was
        # there still resume; a checkpoint of another width is refused.
        meta["width"] = width
    plan = Plan(epochs, steps_per_epoch, lr, seed, resume)
    history = fit(net, step_loss, folder, plan, meta, progress)
    # Int8 for OpenCV where it is faster, the float export then kept in the run's folder.
    int8 = kind in QUANTIZED_KINDS
    exported = folder / onnx_name.replace(".onnx", "_float.onnx") if int8 else out_dir / onnx_name
    export_onnx(net.cpu().eval(), exported)
    if int8:
        photos = list({id(s.image): s.image for s in sources}.values())  # each photo once
        quantize(exported, out_dir / onnx_name, calibration_inputs(photos))
    info = {"epochs": epochs, "steps": epochs * steps_per_epoch, "history": history, "seed": seed}
    if detector:
        info["width"] = width
    (folder / "training.json").write_text(json.dumps(info, indent=1), encoding="utf-8")
    return info


def export_onnx(net: nn.Module, path: Path) -> None:
    """ONNX for OpenCV's DNN module (any input size that is a multiple of 32)."""
    x = torch.zeros(1, 3, 320, 320)
    # The TorchScript exporter, on purpose: the newer one needs onnxscript and gives OpenCV
    # nothing more for this plain network; torch warns that it is legacy.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        _export(net, x, path)


def _export(net: nn.Module, x: torch.Tensor, path: Path) -> None:
    torch.onnx.export(
        net,
        (x,),
        str(path),
        input_names=["image"],
        output_names=["maps"],
        opset_version=13,
        dynamic_axes={"image": {2: "h", 3: "w"}, "maps": {2: "oh", 3: "ow"}},
        dynamo=False,
    )
