"""Counts in sentences: `1 photo`, `2 photos`."""

from __future__ import annotations


def counted(number: int, noun: str, plural: str | None = None) -> str:
    """`number` and the noun in the right number (`plural` for irregular ones: `1 dataset(s)` is never printed)."""
    return f"{number} {noun if number == 1 else plural or noun + 's'}"
