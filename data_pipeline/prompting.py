"""One rendering of a task prompt as chat messages.

What a policy is sampled with must be what it is trained on: ``verirl data preferences`` samples the
completions of DPO pairs with :func:`render_prompt`, and the trainers (``verirl.train.data``) render the
prompts they train on with the same function and the recipe's ``system_prompt`` / ``prompt_template``.
Preference pairs record the settings they were sampled with (:func:`rendering`), so the DPO trainer can
refuse a recipe that renders them differently.
"""

from __future__ import annotations

from typing import Any

DEFAULT_TEMPLATE = "{prompt}"


class PromptError(ValueError):
    """A prompt that cannot be rendered; the message names the row and what is wrong."""


def check_template(prompt_template: str) -> None:
    """Raise :class:`PromptError` (a ``ValueError``) unless ``prompt_template`` is a format string whose fields
    are among ``{prompt}``, ``{top}``, ``{id}``."""
    try:
        prompt_template.format(prompt="", top="", id="")
    except (KeyError, IndexError, ValueError) as exc:
        raise PromptError(
            f"prompt_template {prompt_template!r} is not a valid format string with fields {{prompt}}, {{top}}, "
            f"{{id}}: {exc}"
        ) from None


def rendering(system_prompt: str | None, prompt_template: str = DEFAULT_TEMPLATE) -> dict[str, Any]:
    """The settings a prompt was rendered with, as recorded in preference pairs."""
    return {"system_prompt": system_prompt or None, "prompt_template": prompt_template or DEFAULT_TEMPLATE}


def render_prompt(prompt: Any, row: dict[str, Any] | None = None, *, system_prompt: str | None = None,
                  prompt_template: str = DEFAULT_TEMPLATE) -> list[dict[str, str]]:
    """Chat messages for a task prompt.

    A text prompt goes through ``prompt_template`` (fields ``{prompt}``, ``{top}``, ``{id}`` from ``row``)
    and becomes the user message; a prompt that already is a conversation is copied. ``system_prompt`` is
    prepended unless the conversation has a system message of its own.
    """
    row = row or {}
    if isinstance(prompt, list):
        messages = [dict(m) for m in prompt]
        if system_prompt and not any(m.get("role") == "system" for m in messages):
            messages.insert(0, {"role": "system", "content": system_prompt})
        return messages
    if not isinstance(prompt, str):
        raise PromptError(
            f"row {row.get('id', '?')}: `prompt` must be text or chat messages, got {type(prompt).__name__}"
        )
    template = prompt_template or DEFAULT_TEMPLATE
    check_template(template)
    text = template.format(prompt=prompt, top=row.get("top", ""), id=row.get("id", ""))
    messages = [{"role": "user", "content": text}]
    if system_prompt:
        messages.insert(0, {"role": "system", "content": system_prompt})
    return messages
