"""verirl: reinforcement learning for LLMs that write Verilog, on verifiable hardware rewards."""

__version__ = "0.1.0"
