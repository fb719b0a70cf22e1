"""Errors verirl raises for bad input (imported by every layer of verirl without import cycles)."""


class RecipeError(ValueError):
    """A recipe (or an override) that cannot be used; the message says what to change."""
