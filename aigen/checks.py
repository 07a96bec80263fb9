"""One-line checks of config values, shared by the run's settings and the generators: a bad value is a UserError
naming its key, never a traceback."""

from __future__ import annotations

from aigen.errors import UserError


def whole_number(key: str, value: object, low: int) -> int:
    """An int (not a bool) of at least `low`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise UserError(f"{key}={value!r} must be a whole number, at least {low}")
    return value


def multiple_of_8(key: str, value: object, example: str = "") -> int:
    """A positive int divisible by 8: image sides that the 8x-downsampling autoencoders and JPEG blocks need."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0 or value % 8:
        raise UserError(f"{key}={value!r} must be a positive multiple of 8{example}")
    return value


def number(key: str, value: object, low: float | None = None, high: float | None = None) -> float:
    """An int or float (not a bool), within [low, high] where given."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:  # nan is not a number here
        raise UserError(f"{key}={value!r} must be a number")
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f"between {low} and {high}" if low is not None and high is not None else ""
        bounds = bounds or (f"at least {low}" if low is not None else f"at most {high}")
        raise UserError(f"{key}={value!r} must be {bounds}")
    return float(value)


def text(key: str, value: object, optional: bool = False) -> None:
    """A string (or null when `optional`)."""
    if not isinstance(value, str) and not (optional and value is None):
        raise UserError(f"{key}={value!r} must be a string{' or null' if optional else ''}")
