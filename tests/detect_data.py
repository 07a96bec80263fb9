"""Hand-made dataset dirs for the detector tests: real photo crops with chosen fake halves, in the factory's layout
(original/, ai/, manifest.jsonl with source_sha256), much faster than generating."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from aigen.corpus import bundled_photos

SIDE = 64


def photo_crops(count: int, seed: int = 0) -> list[Image.Image]:
    """`count` distinct 64 px photos: random crops (random size, then scaled) of the bundled photos."""
    rng = np.random.default_rng(seed)
    pool = [photo for _, photo in bundled_photos()]
    crops = []
    for index in range(count):
        photo = pool[index % len(pool)]
        side = int(rng.integers(SIDE, min(photo.size) // 2 + 1))
        left, top = int(rng.integers(0, photo.width - side + 1)), int(rng.integers(0, photo.height - side + 1))
        crops.append(photo.crop((left, top, left + side, top + side)).resize((SIDE, SIDE), Image.Resampling.LANCZOS))
    return crops


def noise(photo: Image.Image, rng: np.random.Generator) -> Image.Image:
    return Image.fromarray(rng.integers(0, 256, (photo.height, photo.width, 3), dtype=np.uint8))


def blur(photo: Image.Image, rng: np.random.Generator) -> Image.Image:
    return photo.filter(ImageFilter.GaussianBlur(2))


def colour_shift(photo: Image.Image, rng: np.random.Generator) -> Image.Image:
    array = np.asarray(photo, dtype=np.int16) + np.array([60, -30, -30], dtype=np.int16)
    return Image.fromarray(np.clip(array, 0, 255).astype(np.uint8))


def same(photo: Image.Image, rng: np.random.Generator) -> Image.Image:
    return photo


def jpeg_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def make_dataset_dir(
    root: Path,
    photos: list[Image.Image],
    fake: Callable[[Image.Image, np.random.Generator], Image.Image],
    generator: str,
    ids: list[str] | None = None,
    folder: str = "",
) -> Path:
    """A dataset dir of one pair per photo; `ids` / `folder` rename / move the files (same content, other paths)."""
    rng = np.random.default_rng(0)
    ids = ids or [f"p{index:03d}" for index in range(len(photos))]
    rows = []
    for image_id, photo in zip(ids, photos, strict=True):
        original = jpeg_bytes(photo)
        paths = {half: Path(half) / folder / f"{image_id}.jpg" for half in ("original", "ai")}
        for half, data in (("original", original), ("ai", jpeg_bytes(fake(photo, rng)))):
            (root / paths[half]).parent.mkdir(parents=True, exist_ok=True)
            (root / paths[half]).write_bytes(data)
        rows.append(
            {
                "id": image_id,
                "original": paths["original"].as_posix(),
                "ai": paths["ai"].as_posix(),
                "source_sha256": hashlib.sha256(original).hexdigest(),
                "generator": generator,
            }
        )
    (root / "manifest.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    (root / "dataset.json").write_text(json.dumps({"generator": generator}) + "\n")
    return root
