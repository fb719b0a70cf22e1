"""Wall-clock and CPU seconds of the trainer's phases (``timing/*_s`` and ``timing/*_cpu_s`` metrics).

CPU counts every thread of this process and the tool processes it has waited for (the reward engine's), so it
measures work: on a shared machine it barely moves with the load, wall time does.
"""

from __future__ import annotations

import resource
import time
from collections import defaultdict


def clock() -> tuple[float, float]:
    """(wall, CPU) seconds now."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.perf_counter(), time.process_time() + children.ru_utime + children.ru_stime


class Span:
    """Accumulated (wall, CPU) seconds."""

    __slots__ = ("cpu", "wall")

    def __init__(self, wall: float = 0.0, cpu: float = 0.0):
        self.wall, self.cpu = wall, cpu

    def add_since(self, start: tuple[float, float]) -> Span:
        wall, cpu = clock()
        self.wall += wall - start[0]
        self.cpu += cpu - start[1]
        return self

    def minus(self, other: Span) -> Span:
        return Span(self.wall - other.wall, self.cpu - other.cpu)

    def copy(self) -> Span:
        return Span(self.wall, self.cpu)


class Phases(defaultdict):
    """Phase name → cumulative :class:`Span` (a missing phase is an empty span)."""

    def __init__(self):
        super().__init__(Span)

    def snapshot(self) -> dict[str, Span]:
        return {name: span.copy() for name, span in self.items()}

    def since(self, snapshot: dict[str, Span], name: str) -> Span:
        """What phase ``name`` accumulated after ``snapshot`` was taken."""
        return self[name].minus(snapshot.get(name, Span()))
