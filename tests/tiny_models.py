"""Tiny randomly initialised checkpoints of the real transformers classes, saved to disk.

The CLIP tokenizer is built offline from a byte-level vocab.json and an empty merges.txt:
every character is a token, which is all a random model needs.
"""

from __future__ import annotations

from pathlib import Path

from shelfwatch.vision.models.offline import write_char_vocab


def build_clipseg(out: Path, image_size: int = 64, patch_size: int = 16) -> Path:
    import torch
    from transformers import (
        CLIPImageProcessor,
        CLIPSegConfig,
        CLIPSegForImageSegmentation,
        CLIPSegProcessor,
        CLIPTokenizer,
    )

    torch.manual_seed(0)
    out.mkdir(parents=True, exist_ok=True)
    vocab_size, bos, eos = write_char_vocab(out)
    tokenizer = CLIPTokenizer.from_pretrained(str(out))
    images = CLIPImageProcessor(
        size={"shortest_edge": image_size},
        crop_size={"height": image_size, "width": image_size},
        do_center_crop=False,
    )
    images.size = {"height": image_size, "width": image_size}
    config = CLIPSegConfig(
        text_config={
            "vocab_size": vocab_size,
            "hidden_size": 32,
            "intermediate_size": 48,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "max_position_embeddings": 77,
            "bos_token_id": bos,
            "eos_token_id": eos,
            "pad_token_id": eos,
        },
        vision_config={
            "image_size": image_size,
            "patch_size": patch_size,
            "hidden_size": 32,
            "intermediate_size": 48,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
        },
        projection_dim=16,
        extract_layers=[0, 1],
        reduce_dim=16,
        decoder_num_attention_heads=2,
        decoder_intermediate_size=32,
        conditional_layer=0,
    )
    CLIPSegForImageSegmentation(config).save_pretrained(out)
    CLIPSegProcessor(image_processor=images, tokenizer=tokenizer).save_pretrained(out)
    return out


def build_mask2former(out: Path) -> Path:
    import torch
    from transformers import (
        Mask2FormerConfig,
        Mask2FormerForUniversalSegmentation,
        Mask2FormerImageProcessor,
        SwinConfig,
    )

    torch.manual_seed(0)
    out.mkdir(parents=True, exist_ok=True)
    backbone = SwinConfig(
        image_size=64,
        patch_size=4,
        embed_dim=16,
        depths=[1, 1, 1, 1],
        num_heads=[1, 1, 2, 2],
        window_size=4,
        out_features=["stage1", "stage2", "stage3", "stage4"],
    )
    config = Mask2FormerConfig(
        backbone_config=backbone,
        hidden_dim=32,
        num_queries=12,
        encoder_layers=1,
        decoder_layers=2,
        dim_feedforward=64,
        encoder_feedforward_dim=64,
        mask_feature_size=32,
        feature_size=32,
        num_attention_heads=2,
        num_labels=1,
        id2label={0: "product"},
        label2id={"product": 0},
    )
    Mask2FormerForUniversalSegmentation(config).save_pretrained(out)
    Mask2FormerImageProcessor(size={"shortest_edge": 128, "longest_edge": 256}).save_pretrained(out)
    return out
