"""Int8 weights for the detectors and the void-mask net (training time only).

Post-training static quantization with ONNX Runtime's tools: weights per output channel,
activations per tensor with ranges read from training photos as the nets see them at run
time. The result is still ONNX (QuantizeLinear / DequantizeLinear around each layer), and
OpenCV's DNN runs it with int8 convolutions: on 2 cores a width-16 net at 640x480 takes
about 14 ms instead of 20 (the width-8 shelf-edge and upright nets gain nothing and stay
float). Its maps differ from the float net's by a few hundredths of a logit on average;
see the README ("Int8 weights") for what that did to every figure.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from shelfwatch.core.errors import ShelfWatchError
from shelfwatch.vision.detector.infer import INPUT_SIDE, SMALL_SIDE, network_input

# The nets written as int8 by ``train`` (by kind); the others stay float.
QUANTIZED_KINDS = ("facings", "facings-long", "void-mask")
# Photos read for the activation ranges, spread over the training sources (each at both
# passes' sizes). Set once: a first try on 23 photos of our choice read as close to the
# float nets (README, "Int8 weights").
CALIBRATION_PHOTOS = 24


def calibration_inputs(
    images: Sequence[np.ndarray], count: int = CALIBRATION_PHOTOS
) -> list[np.ndarray]:
    """Network inputs of ``count`` photos spread evenly over ``images``, each at both
    passes' sizes (``INPUT_SIDE``, ``SMALL_SIDE``) exactly as ``infer`` prepares them."""
    if not images:
        raise ValueError("no photos to calibrate on")
    step = max(1, len(images) // count)
    picked = images[::step][:count]
    return [network_input(bgr, side)[0] for bgr in picked for side in (INPUT_SIDE, SMALL_SIDE)]


def quantize(src: Path, dst: Path, inputs: Sequence[np.ndarray]) -> None:
    """Write ``src`` (a float ONNX net) as int8 to ``dst``, activation ranges from ``inputs``
    (network inputs, as ``calibration_inputs`` gives them)."""
    try:
        import onnx
        from onnxruntime.quantization import (
            CalibrationDataReader,
            QuantFormat,
            QuantType,
            quantize_static,
        )
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ImportError:
        raise ShelfWatchError(
            "onnxruntime is needed to quantize the trained nets: pip install -e '.[models]'"
        ) from None
    name = onnx.load(str(src)).graph.input[0].name

    class Photos(CalibrationDataReader):
        def __init__(self) -> None:
            self.left = iter([{name: x} for x in inputs])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.left, None)

    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        # Folds constants and infers shapes so that every convolution is quantized.
        quant_pre_process(str(src), str(prepared), skip_symbolic_shape=True)
        quantize_static(
            str(prepared),
            str(dst),
            Photos(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8,
        )
