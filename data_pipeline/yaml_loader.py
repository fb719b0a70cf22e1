"""One way to read recipe YAML, for training recipes (``verirl.config``) and data recipes (``data_pipeline.config``),
and :func:`help_field`, the dataclass field of every data-recipe setting (its help text, once, in ``metadata``).

PyYAML implements YAML 1.1, where a float needs a dot: ``1e-5`` is read as the *string* ``"1e-5"`` while
``1.0e-5`` is a float. Recipes write learning rates and thresholds as ``1e-5``, so this loader resolves them
as floats the way YAML 1.2 (and every other tool a user compares with) does. Everything else is
``yaml.safe_load``.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import yaml


def help_field(default: Any = dataclasses.MISSING, help: str = "", factory: Any = dataclasses.MISSING):
    """A dataclass field with its help text in ``metadata["help"]`` (listed by docs and ``--help``)."""
    if factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=factory, metadata={"help": help})
    return dataclasses.field(default=default, metadata={"help": help})


class RecipeLoader(yaml.SafeLoader):
    """``SafeLoader`` that also reads ``1e-5`` / ``-2E+3`` as floats (YAML 1.1 needs a dot: ``1.0e-5``)."""


RecipeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def load_yaml(stream: Any) -> Any:
    """Parse YAML text or an open file with :class:`RecipeLoader` (raises ``yaml.YAMLError``)."""
    return yaml.load(stream, Loader=RecipeLoader)


def parse_scalar(raw: str) -> Any:
    """A command-line value read as YAML (``1e-4`` → float, ``true`` → bool, ``[a, b]`` → list); text that is
    not valid YAML stays a string."""
    if raw == "":
        return ""
    try:
        return load_yaml(raw)
    except yaml.YAMLError:
        return raw
