"""A CLIP tokenizer made without downloads, for benchmarks and tests with random weights.

One token per character (a byte-level vocab.json and an empty merges.txt): cost and shapes
match a real tokenizer closely enough for timing, and it needs no hub.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def _bytes_to_unicode() -> list[str]:
    """CLIP's (GPT-2's) reversible byte -> printable character table, in byte order."""
    keep = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    chars, extra = keep[:], 0
    for b in range(256):
        if b not in keep:
            keep.append(b)
            chars.append(256 + extra)
            extra += 1
    return [chr(c) for c in chars]


def write_char_vocab(folder: Path) -> tuple[int, int, int]:
    """Write vocab.json and merges.txt; returns (vocab size, bos id, eos id)."""
    folder.mkdir(parents=True, exist_ok=True)
    symbols = _bytes_to_unicode()
    vocab = {c: i for i, c in enumerate(symbols)}
    for c in symbols:
        vocab[c + "</w>"] = len(vocab)
    bos, eos = len(vocab), len(vocab) + 1
    vocab["<|startoftext|>"], vocab["<|endoftext|>"] = bos, eos
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    return len(vocab), bos, eos


def char_clip_tokenizer(folder: Path) -> Any:
    """A ``CLIPTokenizer`` loaded through ``from_pretrained`` from a character vocab."""
    from transformers import CLIPTokenizer

    write_char_vocab(folder)
    return CLIPTokenizer.from_pretrained(str(folder))
