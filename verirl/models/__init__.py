"""Model helpers: a tiny, locally built causal LM for tests, quickstarts and benchmarks."""

from verirl.models.tiny import build_tiny_model

__all__ = ["build_tiny_model"]
