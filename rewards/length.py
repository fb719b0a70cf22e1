"""Length shaping: DAPO's soft overlong punishment (Yu et al., 2025, "DAPO", eq. 13).

A completion of ``length`` tokens, with the generation limit ``max_len`` and the window ``cache`` before it::

    0                                   length <= max_len - cache
    (max_len - cache - length) / cache  max_len - cache < length <= max_len    (from 0 down to -1)
    -1                                  length > max_len

No tools run and nothing is ever unscorable: the length is known for every completion.
"""

from __future__ import annotations

from .errors import ConfigError


def check_overlong_settings(max_len: int, cache: int) -> None:
    """``max_len`` tokens and a ``cache`` window with ``0 <= cache < max_len`` (else :class:`ConfigError`)."""
    for name, value in (("max_completion_len", max_len), ("soft_punish_cache", cache)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise ConfigError(f"reward 'overlong': {name} must be a whole number of tokens, got {value!r}")
    if not 0 <= cache < max_len:
        raise ConfigError(f"reward 'overlong': need 0 <= soft_punish_cache < max_completion_len, got "
                          f"soft_punish_cache={cache}, max_completion_len={max_len}")


def soft_overlong_penalty(length: int, max_len: int, cache: int) -> float:
    """The penalty of a completion of ``length`` tokens (see the module docstring)."""
    if length <= max_len - cache:
        return 0.0
    if length <= max_len:
        return (max_len - cache - length) / cache
    return -1.0
