"""Seeds derived from ids, so that results do not depend on batch size, order, `limit` or sharding."""

from __future__ import annotations

import hashlib


def _hash_int(*parts: object) -> int:
    digest = hashlib.sha256(":".join(str(part) for part in parts).encode("utf-8", "surrogateescape")).digest()
    return int.from_bytes(digest[:8], "big")


def per_image_seed(seed: int, image_id: str) -> int:
    """The generator seed of one image: a 63-bit number from (`seed`, id)."""
    return _hash_int("image", seed, image_id) >> 1


def sample_key(sample_seed: int, image_id: str) -> int:
    """Sort key for a seeded random sample: the first N ids by this key are the sample of size N."""
    return _hash_int("sample", sample_seed, image_id)


def shard_key(image_id: str) -> int:
    """Which shard a photo belongs to (modulo the shard count): the id alone decides, never the other photos."""
    return _hash_int("shard", image_id)


def gallery_key(image_id: str) -> int:
    """Sort key for gallery picks: depends on the id only, never on a run's seeds."""
    return _hash_int("gallery", image_id)


def split_key(seed: int, image_id: str) -> int:
    """Sort key for the detector's train/validation split by pair (the same for both halves of a pair)."""
    return _hash_int("split", seed, image_id)


def unit_interval(purpose: str, seed: int) -> float:
    """A number in [0, 1) drawn from a seed for one `purpose` (e.g. `mixup`'s ratio per image)."""
    return _hash_int(purpose, seed) / 2**64
