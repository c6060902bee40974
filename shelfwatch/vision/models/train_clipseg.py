"""Fine-tune CLIPSeg on labeled photos: each category is a text prompt, and the decoder
learns where that prompt's objects are.

CLIP (both encoders) stays frozen by default, as in the CLIPSeg paper: only the light
decoder (about 1 M parameters at rd64) learns, so a few hundred photos do not wash out
what CLIP knows, and each step runs the vision encoder once per photo without gradients.
Targets are soft masks at the model's input size: the fraction of each cell a category's
objects cover. Every photo also sees prompts of categories it does not hold, with empty
targets, so a prompt learns to stay quiet where its product is absent.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from shelfwatch.core.errors import ShelfWatchError
from shelfwatch.core.imageio import load_image
from shelfwatch.labels.coco import GAP, LabeledImage, object_mask
from shelfwatch.vision.fitting import Plan, Progress, fit
from shelfwatch.vision.models.clipseg import ClipSegReferrer, decode, encoder_activations

MAX_PROMPTS_PER_PHOTO = 8  # bounds a step's decoder work when the catalog is large


@dataclass
class PromptedPhoto:
    """One photo at the model's input size with a soft target per prompt it holds."""

    pixels: torch.Tensor  # (3, S, S), on the CPU
    targets: dict[int, np.ndarray]  # prompt index -> (S, S) float32 coverage


def prompt_vocabulary(
    photos: list[tuple[Path, LabeledImage]],
    product_prompt: str,
    gap_prompt: str,
    sku_prompts: dict[str, str],
) -> dict[str, str]:
    """Category -> text prompt: the backend's own product and gap prompts, SKU prompts from
    the catalog (else the category's name)."""
    vocabulary = {"product": product_prompt}
    for _, image in photos:
        for obj in image.objects:
            if obj.category == GAP:
                vocabulary[GAP] = gap_prompt
            elif obj.category != "product":
                vocabulary[obj.category] = sku_prompts.get(obj.category) or obj.category
    return vocabulary


def prepare(
    referrer: ClipSegReferrer, photos: list[tuple[Path, LabeledImage]], categories: list[str]
) -> list[PromptedPhoto]:
    """Model inputs and targets; "product" covers every product, whatever its SKU."""
    index = {c: i for i, c in enumerate(categories)}
    out = []
    for file, image in photos:
        pixels = referrer.pixels(load_image(file))[0].cpu()
        size = (pixels.shape[-1], pixels.shape[-2])
        union: dict[str, np.ndarray] = {}
        for obj in image.objects:
            mask = object_mask(obj, image.height, image.width)
            names = {obj.category, GAP if obj.category == GAP else "product"}
            for name in names:
                union[name] = union[name] | mask if name in union else mask
        targets = {
            index[name]: cv2.resize(m.astype(np.float32), size, interpolation=cv2.INTER_AREA)
            for name, m in union.items()
        }
        if targets:
            out.append(PromptedPhoto(pixels, targets))
    return out


def train_clipseg(
    referrer: ClipSegReferrer,
    photos: list[tuple[Path, LabeledImage]],
    prompts: dict[str, str],
    out_dir: Path,
    plan: Plan,
    meta: dict[str, Any],
    batch_size: int = 4,
    train_encoder: bool = False,
    progress: Progress | None = None,
) -> list[dict[str, float]]:
    """Fit the decoder (and CLIP if ``train_encoder``); the model is saved to ``out_dir``
    with ``save_pretrained`` so ``from_pretrained(out_dir)`` loads it."""
    model, device = referrer.model, referrer.device
    categories = list(prompts)
    data = prepare(referrer, photos, categories)
    if not data:
        raise ShelfWatchError("no usable annotations: the labels hold no objects")
    for p in model.clip.parameters():
        p.requires_grad = train_encoder
    tokens = referrer.processor.tokenizer(
        [prompts[c] for c in categories], padding=True, return_tensors="pt"
    ).to(device)

    def embeddings() -> torch.Tensor:
        return model.get_conditional_embeddings(
            batch_size=len(categories),
            input_ids=tokens["input_ids"],
            attention_mask=tokens["attention_mask"],
        )

    always = [categories.index(c) for c in ("product", GAP) if c in categories]
    frozen_embeddings = None
    if not train_encoder:
        with torch.no_grad():
            frozen_embeddings = embeddings()

    def step_loss(rng: np.random.Generator) -> torch.Tensor:
        pixels, chosen, targets = [], [], []
        for i in rng.integers(len(data), size=batch_size):
            photo = data[int(i)]
            flip = bool(rng.random() < 0.5)
            picks = _pick_prompts(photo, always, len(categories), rng)
            pixels.append(photo.pixels.flip(-1) if flip else photo.pixels)
            chosen.append(picks)
            for k in picks:
                t = photo.targets.get(k)
                t = np.zeros(photo.pixels.shape[-2:], np.float32) if t is None else t
                targets.append(torch.from_numpy(np.ascontiguousarray(t[:, ::-1] if flip else t)))
        counts = torch.tensor([len(c) for c in chosen], device=device)
        with torch.set_grad_enabled(train_encoder):
            acts = encoder_activations(model, torch.stack(pixels).to(device))
        acts = [a.repeat_interleave(counts, dim=0) for a in acts]
        cond = frozen_embeddings if frozen_embeddings is not None else embeddings()
        flat = torch.tensor([k for c in chosen for k in c], device=device)
        logits = decode(model, acts, cond[flat])
        target = torch.stack(targets).to(device)
        if target.shape[-2:] != logits.shape[-2:]:
            target = F.interpolate(target[:, None], size=logits.shape[-2:], mode="area")[:, 0]
        return F.binary_cross_entropy_with_logits(logits, target)

    history = fit(model, step_loss, out_dir, plan, meta, progress)
    model.save_pretrained(out_dir)
    referrer.processor.save_pretrained(out_dir)
    referrer.forget_prompts()  # embeddings of the old weights
    return history


def _pick_prompts(
    photo: PromptedPhoto, always: list[int], vocabulary: int, rng: np.random.Generator
) -> list[int]:
    """The product and gap prompts (the segmenter's own) every time, then SKU prompts: ones
    the photo holds and ones it does not, half and half when there are many."""
    budget = max(0, MAX_PROMPTS_PER_PHOTO - len(always))
    present = [k for k in photo.targets if k not in always]
    absent = [k for k in range(vocabulary) if k not in photo.targets and k not in always]
    take_present = min(len(present), max(budget // 2, budget - len(absent)))
    take_absent = min(len(absent), budget - take_present)
    chosen = list(always)
    if take_present:
        chosen += list(rng.choice(present, size=take_present, replace=False))
    if take_absent:
        chosen += list(rng.choice(absent, size=take_absent, replace=False))
    return [int(k) for k in chosen]
