"""Synthetic shelf photos with exact ground truth, for the demo, tests and benchmarks."""

from shelfwatch.synth.render import SynthConfig, render_dataset

__all__ = ["SynthConfig", "render_dataset"]
