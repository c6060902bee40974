"""The one training loop every trainable backend uses (torch, the ``models`` extra).

AdamW with a one-cycle schedule over the trainable parameters; a checkpoint after every
epoch, written atomically; ``resume`` continues from it after a kill and draws the same
batches the killed run would have drawn (each epoch's random generator is seeded from the
seed and the epoch). Frozen parameters are not checkpointed: they come from the base model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from shelfwatch.core.errors import ShelfWatchError

StepLoss = Callable[[np.random.Generator], torch.Tensor]
Progress = Callable[[int, int, float], None]
CHECKPOINT = "checkpoint.pt"


@dataclass(frozen=True)
class Plan:
    """How long and how fast to train."""

    epochs: int
    steps_per_epoch: int
    lr: float
    seed: int = 0
    resume: bool = False  # continue from out_dir's checkpoint when there is one
    weight_decay: float = 1e-4


def fit(
    model: nn.Module,
    step_loss: StepLoss,
    out_dir: Path,
    plan: Plan,
    meta: dict[str, Any],
    progress: Progress | None = None,
) -> list[dict[str, float]]:
    """Train ``model`` on ``step_loss(rng)`` (one batch's loss); returns the loss per epoch.

    ``meta`` says what is being trained (backend, base model, data); resuming a checkpoint
    made with other ``meta`` is refused, since its weights would not fit this run.
    """
    epochs, steps_per_epoch, lr, seed = plan.epochs, plan.steps_per_epoch, plan.lr, plan.seed
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    trainable = [p for p in model.parameters() if p.requires_grad]
    if not trainable:
        raise ShelfWatchError("nothing to train: every parameter is frozen")
    frozen = {name for name, p in model.named_parameters() if not p.requires_grad}
    opt = torch.optim.AdamW(trainable, lr=lr, weight_decay=plan.weight_decay)
    total = epochs * steps_per_epoch
    if total >= 4:
        warm_up = max(2, round(0.1 * total))  # whole steps: neither phase may be empty
        sched: Any = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=lr, total_steps=total, pct_start=warm_up / total
        )
    else:  # too short to schedule
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)
    start_epoch, history = 0, []
    ckpt = out_dir / CHECKPOINT
    if plan.resume and ckpt.exists():
        state = torch.load(ckpt, map_location="cpu", weights_only=False)
        if state.get("meta") != meta:
            raise ShelfWatchError(
                f"{ckpt} was made by another training run ({state.get('meta')}); "
                "train without --resume or into another --out folder"
            )
        model.load_state_dict(state["model"], strict=False)
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])
        start_epoch, history = state["epoch"], state["history"]
    for epoch in range(start_epoch, epochs):
        rng = np.random.default_rng(seed * 100_003 + epoch)
        model.train()
        losses: list[float] = []
        for step in range(steps_per_epoch):
            loss = step_loss(rng)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
            if progress:
                progress(epoch * steps_per_epoch + step + 1, total, float(np.mean(losses[-20:])))
        history.append({"epoch": epoch + 1, "loss": round(float(np.mean(losses)), 4)})
        tmp = ckpt.with_suffix(".tmp")
        torch.save(
            {
                "model": {k: v for k, v in model.state_dict().items() if k not in frozen},
                "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(),
                "torch_rng": torch.get_rng_state(),
                "epoch": epoch + 1,
                "history": history,
                "meta": meta,
            },
            tmp,
        )
        tmp.replace(ckpt)  # atomic: a kill never leaves half a checkpoint
    model.eval()
    return history
