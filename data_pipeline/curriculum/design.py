"""One generated design: its interface, its golden body, and how it is rendered.

A family function (see :mod:`.families_comb` and :mod:`.families_seq`) returns a :class:`Design`;
this module turns it into the golden Verilog source and into the interface text of the prompt.
Rendering is deterministic; all randomness lives in the family functions and in :mod:`.wording`.
"""

from __future__ import annotations

import dataclasses
import re

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
RESET_KINDS = ("sync_high", "async_low")


@dataclasses.dataclass(frozen=True)
class Port:
    """One port of a generated module."""

    name: str
    direction: str  # "input" or "output"
    width: int = 1
    role: str = "data"  # "data", "clock" or "reset"
    is_reg: bool = False  # output assigned in an always block

    def __post_init__(self) -> None:
        if not _IDENT.match(self.name):
            raise ValueError(f"port name {self.name!r} is not a plain Verilog identifier")
        if self.direction not in ("input", "output"):
            raise ValueError(f"port {self.name}: direction must be input or output, got {self.direction!r}")
        if self.width < 1:
            raise ValueError(f"port {self.name}: width must be >= 1, got {self.width}")

    @property
    def range(self) -> str:
        """``[W-1:0] `` or the empty string for a 1-bit port."""
        return f"[{self.width - 1}:0] " if self.width > 1 else ""

    def declaration(self) -> str:
        kind = "output reg" if self.is_reg else self.direction
        return f"{kind} {self.range}{self.name}"


@dataclasses.dataclass
class Design:
    """A family instance: everything needed for the golden, the testbench and the prompt."""

    family: str
    level: int
    params: dict
    """The parameters that define the function (what the held-out-by-parameters split keys on)."""
    top: str
    ports: list[Port]
    spec: str
    """Natural-language behaviour, without the interface (the interface is rendered from ``ports``)."""
    body: list[str]
    """Golden body lines (between the port list and ``endmodule``)."""
    clock: str | None = None
    reset: str | None = None
    reset_kind: str | None = None

    def __post_init__(self) -> None:
        if not _IDENT.match(self.top):
            raise ValueError(f"module name {self.top!r} is not a plain Verilog identifier")
        names = [p.name for p in self.ports]
        if len(set(names)) != len(names) or self.top in names:
            raise ValueError(f"{self.family}: port names must be distinct and differ from the module name")
        if not any(p.direction == "output" for p in self.ports):
            raise ValueError(f"{self.family}: a design needs at least one output")
        if self.reset_kind is not None and self.reset_kind not in RESET_KINDS:
            raise ValueError(f"reset_kind must be one of {RESET_KINDS}, got {self.reset_kind!r}")

    @property
    def sequential(self) -> bool:
        return self.clock is not None

    @property
    def inputs(self) -> list[Port]:
        return [p for p in self.ports if p.direction == "input"]

    @property
    def data_inputs(self) -> list[Port]:
        return [p for p in self.ports if p.direction == "input" and p.role == "data"]

    @property
    def outputs(self) -> list[Port]:
        return [p for p in self.ports if p.direction == "output"]

    def golden(self) -> str:
        """The golden module: compact, one statement per line, the style the SFT stage teaches."""
        header = f"module {self.top}(" + ", ".join(p.declaration() for p in self.ports) + ");"
        return "\n".join([header, *self.body, "endmodule"]) + "\n"

    def param_key(self) -> str:
        """A stable key of the function's parameters (independent of names and wording)."""
        items = ",".join(f"{k}={self.params[k]}" for k in sorted(self.params))
        return f"{self.family}({items})"


def seq_always(design_clock: str, reset: str, reset_kind: str) -> tuple[str, str]:
    """The ``always`` header and the reset condition for a clocked process."""
    if reset_kind == "async_low":
        return f"always @(posedge {design_clock} or negedge {reset})", f"!{reset}"
    return f"always @(posedge {design_clock})", reset


def reset_phrase(reset: str, reset_kind: str) -> str:
    """How the prompt describes the reset."""
    if reset_kind == "async_low":
        return f"{reset} is an asynchronous active-low reset"
    return f"{reset} is a synchronous active-high reset"
