"""Prompt templates of the round trip and the task prompts, and the interface text they show.

Templates are plain text with ``{{name}}`` placeholders (a file path or inline text in a recipe; the defaults are
``data_pipeline/prompts/*.txt``). Placeholders:

* describe: ``{{code}}`` (required), ``{{top}}``, ``{{interface}}``
* regenerate: ``{{description}}`` (required), ``{{top}}``, ``{{interface}}``
* task: ``{{description}}`` (required), ``{{top}}``, ``{{interface}}``

This module imports nothing from the rest of the package: the recipe (:mod:`data_pipeline.config`) validates
templates with it when it is read.
"""

from __future__ import annotations

import os
import re
from importlib import resources

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")

#: template kind → (required placeholders, allowed placeholders)
TEMPLATE_FIELDS = {
    "describe": ({"code"}, {"code", "top", "interface"}),
    "regenerate": ({"description"}, {"description", "top", "interface"}),
    "task": ({"description"}, {"description", "top", "interface"}),
}


def load_template(kind: str, value: str = "") -> str:
    """Template text of ``kind`` from a file path, inline text, or the built-in default; validated."""
    required, allowed = TEMPLATE_FIELDS[kind]
    if not value:
        text = resources.files("data_pipeline").joinpath("prompts", f"{kind}.txt").read_text(encoding="utf-8")
        where = f"built-in {kind} template"
    elif "\n" not in value and os.path.isfile(value):
        with open(value, encoding="utf-8") as fh:
            text = fh.read()
        where = value
    else:
        text, where = value, f"inline {kind} template"
    names = set(_PLACEHOLDER.findall(text))
    if names - allowed:
        raise ValueError(f"{where}: unknown placeholder(s) {sorted(names - allowed)}; allowed: {sorted(allowed)}")
    if required - names:
        needed = ", ".join("{{" + name + "}}" for name in sorted(required))
        raise ValueError(f"{where}: the {kind} template must contain {needed}")
    return text


def render(template: str, **values: str) -> str:
    """Fill ``{{name}}`` placeholders in one pass (inserted text is never re-expanded)."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)


def interface_text(interface: dict) -> str:
    """Human-readable port list (and clocking) of an interface dict from :mod:`rewards.interface`."""
    lines = []
    for port in interface.get("ports", []):
        width = int(port.get("width", 1))
        rng = f"[{width - 1}:0] " if width > 1 else ""
        signed = "signed " if port.get("signed") else ""
        lines.append(f"- {port['direction']} {signed}{rng}{port['name']}")
    for param in interface.get("parameters", []):
        if not param.get("local"):
            lines.append(f"- parameter {param['name']} = {param['value']}")
    clocks = ", ".join(f"{c['name']} ({c['edge']})" for c in interface.get("clocks", []))
    if clocks:
        lines.append(f"Clock: {clocks}")
    resets = ", ".join(f"{r['name']} (active {r['polarity']}, {'synchronous' if r['kind'] == 'sync' else 'asynchronous'})"
                       for r in interface.get("resets", []))
    if resets:
        lines.append(f"Reset: {resets}")
    return "\n".join(lines)


def interface_prompt(top: str, interface: dict) -> str:
    """The task prompt of a module without a round trip: its interface only (SFT warm-up or later description)."""
    return f"Implement a synthesizable Verilog module named `{top}` with these ports:\n{interface_text(interface)}\n"
