"""CLIPSeg referring segmentation: text or example-image prompts to masks.

Many prompts per photo share one pass of the CLIP vision encoder: the encoder's
activations are computed once and the light decoder runs for all prompts at once, with
prompt embeddings cached across photos (prompts change rarely; photos stream). Its logits
equal transformers' standard call (the image repeated once per prompt).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Any

import cv2
import numpy as np

from shelfwatch.core.errors import ShelfWatchError
from shelfwatch.core.scene import ShelfScene
from shelfwatch.vision.layout import assign_shelves, gaps_between
from shelfwatch.vision.models.heatmaps import instances_at
from shelfwatch.vision.models.loading import load_pretrained, pick_device, require_torch
from shelfwatch.vision.opencv_backend import detect_shelves

MAX_PROMPT_CHARS = 200
Prompt = str | np.ndarray  # text, or an example product image (BGR)


def check_prompt(prompt: Prompt) -> None:
    if isinstance(prompt, np.ndarray):
        if prompt.ndim != 3 or prompt.shape[0] < 8 or prompt.shape[1] < 8:
            raise ShelfWatchError("example image prompt must be a colour image of at least 8x8")
        return
    text = prompt.strip()
    if not text:
        raise ShelfWatchError("empty prompt")
    if len(text) > MAX_PROMPT_CHARS:
        raise ShelfWatchError(f"prompt too long ({len(text)} > {MAX_PROMPT_CHARS} characters)")


def encoder_activations(model: Any, pixel_values: Any) -> list[Any]:
    """The CLIP vision encoder's hidden states that CLIPSeg's decoder reads."""
    vision = model.clip.vision_model(pixel_values=pixel_values, output_hidden_states=True)
    return [vision.hidden_states[i + 1] for i in model.extract_layers]


def decode(model: Any, activations: list[Any], conditional: Any) -> Any:
    """(prompts, h, w) logits of CLIPSeg's decoder, one row per conditional embedding."""
    out = model.decoder(activations, conditional)
    logits = out.logits if hasattr(out, "logits") else out[0]
    return logits.reshape(-1, *logits.shape[-2:])


class ClipSegReferrer:
    """Heatmaps for prompts on photos, with cached prompt embeddings."""

    def __init__(
        self, model: Any, processor: Any, device: Any = None, cache_size: int = 512
    ) -> None:
        self.torch = require_torch()
        self.model = model
        self.processor = processor
        self.device = device or pick_device()
        self.model.to(self.device)
        self._cache: OrderedDict[str, Any] = OrderedDict()
        self._cache_size = cache_size
        self.source: str | None = None  # the checkpoint, when loaded by from_pretrained

    @classmethod
    def from_pretrained(
        cls, source: str, offline: bool = False, device: str = "auto", quantize: str = "none"
    ) -> ClipSegReferrer:
        from transformers import CLIPSegForImageSegmentation, CLIPSegProcessor

        model, processor = load_pretrained(
            CLIPSegForImageSegmentation, CLIPSegProcessor, source, "clipseg", offline
        )
        target = pick_device(device)
        if quantize == "int8" and target.type == "cpu":
            # Dynamic int8 linear layers: about 1.6x faster on CPU (see the README).
            torch = require_torch()
            model = torch.ao.quantization.quantize_dynamic(
                model, {torch.nn.Linear}, dtype=torch.qint8
            )
        referrer = cls(model, processor, target)
        referrer.source = source
        return referrer

    def _key(self, prompt: Prompt) -> str:
        if isinstance(prompt, np.ndarray):
            return "img:" + hashlib.sha1(prompt.tobytes()).hexdigest()
        return "txt:" + prompt.strip()

    def embeddings(self, prompts: list[Prompt]) -> Any:
        """(n, projection_dim) conditional embeddings; computed once per distinct prompt."""
        torch = self.torch
        missing = [p for p in prompts if self._key(p) not in self._cache]
        texts = list(dict.fromkeys(p.strip() for p in missing if isinstance(p, str)))
        images = [p for p in missing if isinstance(p, np.ndarray)]
        with torch.inference_mode():
            if texts:
                tok = self.processor.tokenizer(texts, padding=True, return_tensors="pt")
                emb = self.model.get_conditional_embeddings(
                    batch_size=len(texts),
                    input_ids=tok["input_ids"].to(self.device),
                    attention_mask=tok["attention_mask"].to(self.device),
                )
                for t, e in zip(texts, emb, strict=True):
                    self._remember("txt:" + t, e)
            for img in images:
                pix = self.pixels(img)
                emb = self.model.get_conditional_embeddings(
                    batch_size=1, conditional_pixel_values=pix
                )
                self._remember(self._key(img), emb[0])
        return torch.stack([self._cache[self._key(p)] for p in prompts])

    def forget_prompts(self) -> None:
        """Drop cached prompt embeddings (after the weights change)."""
        self._cache.clear()

    def _remember(self, key: str, value: Any) -> None:
        self._cache[key] = value
        self._cache.move_to_end(key)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    def pixels(self, bgr: np.ndarray) -> Any:
        """(1, 3, S, S) model input of a BGR photo, on the model's device."""
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        return self.processor.image_processor(images=rgb, return_tensors="pt")["pixel_values"].to(
            self.device
        )

    def logits(self, image: np.ndarray, prompts: list[Prompt]) -> Any:
        """(n, h, w) logits at the model's resolution; the vision encoder runs once."""
        return self.logits_batch([image], prompts)[0]

    def logits_batch(self, images: list[np.ndarray], prompts: list[Prompt]) -> Any:
        """(photos, prompts, h, w) logits: one encoder pass for the batch of photos."""
        torch = self.torch
        for p in prompts:
            check_prompt(p)
        cond = self.embeddings(prompts)
        b, n = len(images), len(prompts)
        with torch.inference_mode():
            pix = torch.cat([self.pixels(image) for image in images])
            acts = encoder_activations(self.model, pix)
            if b > 1:  # each photo's activations meet each prompt once
                acts = [a.repeat_interleave(n, dim=0) for a in acts]
                cond = cond.repeat(b, 1)
            # With one photo its activations broadcast against the n prompts in FiLM.
            logits = decode(self.model, acts, cond)
        return logits.reshape(b, n, *logits.shape[-2:])

    def standard_logits(self, image: np.ndarray, prompts: list[str]) -> Any:
        """transformers' documented call (image repeated per prompt): the baseline."""
        torch = self.torch
        rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        inputs = self.processor(
            text=prompts, images=[rgb] * len(prompts), padding=True, return_tensors="pt"
        ).to(self.device)
        with torch.inference_mode():
            logits = self.model(**inputs).logits
        return logits.reshape(len(prompts), *logits.shape[-2:])

    def heatmaps(self, image: np.ndarray, prompts: list[Prompt]) -> np.ndarray:
        """(n, H, W) probabilities at the photo's own resolution."""
        return self.heatmaps_batch([image], prompts)[0]

    def heatmaps_batch(self, images: list[np.ndarray], prompts: list[Prompt]) -> list[np.ndarray]:
        """Full-resolution probabilities: sigmoid at model resolution, then OpenCV's bilinear
        resize per prompt (torch's interpolate of n full-size float maps cost ~160 ms a
        prompt on 2 cores; this costs a few ms)."""
        out = []
        for image, prob in zip(images, self.model_maps(images, prompts), strict=True):
            h, w = image.shape[:2]
            out.append(
                np.stack([cv2.resize(p, (w, h), interpolation=cv2.INTER_LINEAR) for p in prob])
            )
        return out

    def model_maps(self, images: list[np.ndarray], prompts: list[Prompt]) -> list[np.ndarray]:
        """(n, h, w) probabilities per photo at the model's own resolution (352 px)."""
        torch = self.torch
        logits = self.logits_batch(images, prompts)
        with torch.inference_mode():
            return [torch.sigmoid(p.float()).cpu().numpy() for p in logits]


class ClipSegSegmenter:
    """Products and gaps from two text prompts; shelves from the shelf-edge finder."""

    name = "clipseg"

    def __init__(
        self,
        referrer: ClipSegReferrer,
        product_prompt: str = "a product on a shelf",
        gap_prompt: str = "empty shelf",
        threshold: float = 0.5,
    ) -> None:
        self.referrer = referrer
        self.product_prompt = product_prompt
        self.gap_prompt = gap_prompt
        self.threshold = threshold

    @property
    def model_version(self) -> str | None:
        return self.referrer.source

    def segment(self, image: np.ndarray) -> ShelfScene:
        return self.segment_batch([image])[0]

    def segment_batch(self, images: list[np.ndarray]) -> list[ShelfScene]:
        # Instances are found at model resolution; only each kept mask is upsampled, inside
        # its own box (as the Mask2Former path does).
        maps = self.referrer.model_maps(images, [self.product_prompt, self.gap_prompt])
        scenes = []
        for image, m in zip(images, maps, strict=True):
            h, w = image.shape[:2]
            products = instances_at(m[0], (h, w), self.threshold)
            gap_map = cv2.resize(m[1], (w, h), interpolation=cv2.INTER_LINEAR)
            scenes.append(scene_from_maps(image, products, gap_map, self.name))
        return scenes


def scene_from_maps(
    image: np.ndarray,
    products: Any,
    gap_map: np.ndarray | None,
    backend: str,
    gap_threshold: float = 0.5,
) -> ShelfScene:
    """Shelves, products assigned to them, and gaps confirmed by the empty-shelf heatmap."""
    h, w = image.shape[:2]
    shelves = detect_shelves(image)
    products = assign_shelves(products, shelves)
    gaps = gaps_between(products, shelves)
    if gap_map is not None:
        # Keep geometric gaps that the empty-shelf prompt agrees with.
        gaps = [
            g
            for g in gaps
            if gap_map[g.bbox[1] : g.bbox[3], g.bbox[0] : g.bbox[2]].mean() >= gap_threshold
            or len(products) == 0
        ]
    return ShelfScene(
        width=w, height=h, shelves=shelves, products=products, gaps=gaps, backend=backend
    )
