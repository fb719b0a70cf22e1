"""Raw Verilog to verified training tasks (depends on :mod:`rewards`, never the reverse)."""
