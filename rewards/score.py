"""The result of scoring one completion."""

from __future__ import annotations

import dataclasses
from typing import Any

LEVELS = ("format", "syntax", "function", "ppa")

#: Failure classes. ``infrastructure`` and ``task_error`` are never the model's fault: their reward is None.
FAILURE_CLASSES = (
    "format", "forbidden", "syntax", "compile", "elaboration", "timeout", "resource", "mismatch",
    "missing_result", "interface_mismatch", "unproven", "infrastructure", "task_error",
)
NOT_MODEL_FAULTS = ("infrastructure", "task_error")


@dataclasses.dataclass
class Score:
    reward: float | None
    passed: bool | None
    failure: str | None
    components: dict[str, float | None]
    detail: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.failure is not None and self.failure not in FAILURE_CLASSES:
            raise ValueError(f"unknown failure class {self.failure!r}")

    @property
    def scorable(self) -> bool:
        return self.reward is not None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Score:
        return cls(**{f.name: data.get(f.name) for f in dataclasses.fields(cls)})

    @classmethod
    def unscorable(cls, failure: str, reason: str, **detail: Any) -> Score:
        assert failure in NOT_MODEL_FAULTS
        return cls(None, None, failure, {level: None for level in LEVELS}, {"reason": reason, **detail})
