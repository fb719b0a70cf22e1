"""Procedural curriculum of small, verifiable Verilog tasks (see docs/quickstart.md).

``generate_curriculum(CurriculumConfig(seed=...))`` returns the ``train``/``test``/``test_family`` splits as task
dicts in the schema of docs/architecture.md (harness ``verirl``); :mod:`.verify` checks every golden against its
own testbench through the reward engine.
"""

from .design import Design, Port
from .generate import FAMILIES, CurriculumConfig, generate_curriculum, read_jsonl, split_params, write_jsonl

__all__ = ["FAMILIES", "CurriculumConfig", "Design", "Port", "generate_curriculum", "read_jsonl", "split_params",
           "write_jsonl"]
