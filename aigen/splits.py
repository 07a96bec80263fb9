"""Train / validation / test by source photo CONTENT: the same photo falls in the same split in every dataset dir
(whatever its path or folder), so a detector is never tested on a photo it trained on, and exports agree with it."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from PIL import Image

from aigen.errors import UserError
from aigen.seeding import split_key

SPLITS = ("train", "val", "test")


def pixels_sha256(path: Path) -> str:
    """A content key for dirs made before manifests had `source_sha256`: the original half's decoded pixels."""
    with Image.open(path) as image:
        return hashlib.sha256(np.asarray(image.convert("RGB")).tobytes()).hexdigest()


def content_key(dataset_dir: Path, row: dict) -> str:
    """The source photo's identity: its file hash from the manifest, else a hash of the original's pixels."""
    if row.get("source_sha256"):
        return f"sha256:{row['source_sha256']}"
    return f"pixels:{pixels_sha256(dataset_dir / row['original'])}"


def check_fractions(val_fraction: float, test_fraction: float) -> None:
    for key, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1:
            raise UserError(f"{key}={value!r} must be a number in [0, 1)")
    if val_fraction + test_fraction >= 1:
        raise UserError(f"val_fraction + test_fraction = {val_fraction + test_fraction} leaves nothing to train on")


def split_of(key: str, seed: int, val_fraction: float, test_fraction: float) -> str:
    """`train`, `val` or `test` for one source photo: a seeded hash of its content key against the fractions, so
    the answer depends on the photo alone, never on which other photos are in the dataset."""
    position = split_key(seed, key) / 2.0**64
    if position < test_fraction:
        return "test"
    if position < test_fraction + val_fraction:
        return "val"
    return "train"
