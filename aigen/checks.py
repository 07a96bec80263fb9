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
