"""verirl's reward engine: verifiable, sandboxed scoring of model-written Verilog.

The leaf package of verirl: it imports nothing from ``verirl`` or ``data_pipeline`` and
never imports torch. Main entry points:

* :class:`rewards.task.Task` — the task schema;
* :func:`rewards.hierarchy.score_completion` and :class:`rewards.hierarchy.RewardConfig`;
* :class:`rewards.pool.RewardPool` — parallel, cached batch scoring (local or Ray);
* :func:`rewards.trl.build_reward` — TRL reward functions by name.
"""

__all__ = ["RewardConfig", "RewardPool", "Score", "Task", "build_reward", "score_completion"]


def __getattr__(name: str):  # lazy, so `import rewards` stays cheap
    if name == "Task":
        from .task import Task

        return Task
    if name == "Score":
        from .score import Score

        return Score
    if name in ("RewardConfig", "score_completion"):
        from . import hierarchy

        return getattr(hierarchy, name)
    if name == "RewardPool":
        from .pool import RewardPool

        return RewardPool
    if name == "build_reward":
        from .trl import build_reward

        return build_reward
    raise AttributeError(f"module 'rewards' has no attribute {name!r}")
