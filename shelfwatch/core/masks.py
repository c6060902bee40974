"""Mask run-length encoding. pycocotools does the RLE so stored masks are COCO-compatible."""

from __future__ import annotations

import json

import numpy as np
from pycocotools import mask as coco_mask


def encode_rle(mask: np.ndarray) -> dict[str, object]:
    """COCO compressed RLE of a full-resolution boolean mask (counts as a str)."""
    rle = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def decode_rle(rle: dict[str, object]) -> np.ndarray:
    counts = rle["counts"]
    raw = {
        "size": rle["size"],
        "counts": counts.encode("ascii") if isinstance(counts, str) else counts,
    }
    if isinstance(counts, list):  # uncompressed RLE as written by some labeling tools
        raw = coco_mask.frPyObjects(raw, *rle["size"])  # type: ignore[arg-type]
    return coco_mask.decode(raw).astype(bool)


def rle_to_text(rle: dict[str, object]) -> str:
    return json.dumps(rle, separators=(",", ":"))


def rle_from_text(text: str) -> dict[str, object]:
    return json.loads(text)


def mask_area(rle: dict[str, object]) -> int:
    raw = {"size": rle["size"], "counts": str(rle["counts"]).encode("ascii")}
    return int(coco_mask.area(raw))
