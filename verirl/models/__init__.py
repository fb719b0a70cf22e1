"""Model helpers: a tiny, locally built causal LM for tests, quickstarts and benchmarks, and the tiny kit (model +
curriculum tasks + DPO pairs) that ``recipes/tiny/*.yaml`` train on (``verirl models tiny``)."""

from verirl.models.tiny import build_tiny_kit, build_tiny_model, read_tiny_kit, tiny_kit_paths

__all__ = ["build_tiny_kit", "build_tiny_model", "read_tiny_kit", "tiny_kit_paths"]
