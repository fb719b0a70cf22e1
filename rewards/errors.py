"""Exceptions that separate infrastructure faults from the model's faults.

A reward engine must never blame the model for a broken machine: a missing binary, a
crashed tool or a sandbox failure is an :class:`InfrastructureError` and the completion
is reported as *not scorable* (``None``), never as a silent 0.
"""

from __future__ import annotations


class VerirlRewardError(Exception):
    """Base class of every error raised by :mod:`rewards`."""


class InfrastructureError(VerirlRewardError):
    """The machine, not the model, failed: missing tool, tool crash, sandbox failure."""


class ToolNotFoundError(InfrastructureError):
    """An EDA tool (iverilog, vvp, yosys, verilator) is not installed or not on PATH."""


class TaskError(VerirlRewardError):
    """The task itself is unusable (bad schema, reference fails its own testbench, ...).

    Like infrastructure faults, task errors are never charged to the model.
    """


class ConfigError(VerirlRewardError, ValueError):
    """A reward configuration is invalid; raised when it is parsed, before any scoring."""


class Forbidden(VerirlRewardError):
    """The candidate uses a construct the sandbox refuses (failure class ``forbidden``); the model is at fault."""


class ReferenceRejected(TaskError):
    """:func:`rewards.hierarchy.validate_reference`: the task's reference, scored as a candidate of its own task,
    does not pass. ``failure`` is the failure class it got (``forbidden``, ``syntax``, ``elaboration``, ``timeout``,
    ``mismatch``...), ``detail`` the score's detail (``failure_stage``, ``counterexample``, ``log``)."""

    def __init__(self, message: str, failure: str | None, detail: dict | None = None):
        super().__init__(message)
        self.failure = failure
        self.detail = dict(detail or {})
