"""Plain reward functions for the training tests (no EDA tools), named by `module:attr` in recipes.

The tiny random model almost never writes a passing design, so the Verilog rewards of the tiny recipes are all 0
and carry no signal. These add one that always varies within a group, so a few optimizer steps must move the
parameters.
"""


def length_reward(prompts, completions, completion_ids=None, **kwargs):
    """Shorter completions score higher (varies with the sampled length)."""
    return [1.0 / (1.0 + len(ids)) for ids in completion_ids]


def token_parity_reward(prompts, completions, completion_ids=None, **kwargs):
    """1.0 when the sum of token ids is even: random per completion, so groups are informative about half the time."""
    return [float(sum(ids) % 2 == 0) for ids in completion_ids]


def constant_reward(prompts, completions, completion_ids=None, **kwargs):
    """The same reward for everything: every group is uninformative."""
    return [0.5 for _ in completions]


def half_informative_reward(prompts, completions, completion_ids=None, id=None, **kwargs):
    """Tasks whose id ends in an even digit get a constant reward (uninformative groups); the others a random one."""
    out = []
    for task_id, ids in zip(id, completion_ids):
        if int(task_id[-1]) % 2 == 0:
            out.append(0.25)
        else:
            out.append(float(sum(ids) % 2 == 0) + 0.01 * len(ids))
    return out


def pass_unless_first_reward(prompts, completions, completion_ids=None, id=None, **kwargs):
    """A functional reward: every completion passes (1.0), except that the first completion of each group (the first
    of a run of rows with the same task id) is unscorable (None), as after a simulator crash or a batch deadline."""
    out = []
    for i, task_id in enumerate(id):
        out.append(None if i == 0 or id[i - 1] != task_id else 1.0)
    return out


def always_fail_reward(prompts, completions, completion_ids=None, **kwargs):
    """A functional reward on which nothing passes: groups can only differ in their shaping rewards."""
    return [0.0 for _ in completions]


def position_reward(prompts, completions, completion_ids=None, id=None, **kwargs):
    """A shaping reward that differs inside every group: 0.1 x the completion's position in its group."""
    out, position = [], 0
    for i, task_id in enumerate(id):
        position = 0 if i == 0 or id[i - 1] != task_id else position + 1
        out.append(0.1 * position)
    return out


#: what `columns_reward` saw, one entry per call: {column: [type names of the values]}
SEEN_COLUMNS: list[dict] = []


def columns_reward(prompts, completions, completion_ids=None, files=None, metadata=None, **kwargs):
    """Records the types of the free-form task columns it receives; rewards 0.0."""
    SEEN_COLUMNS.append({"files": list(files or []), "metadata": list(metadata or [])})
    return [0.0 for _ in completions]
