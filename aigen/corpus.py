"""A corpus of real-photo crops saved as web-quality JPEGs, built from photos bundled with scikit-image and
scikit-learn: the control generators' test bed (tests, `python -m aigen.bias_check`), no download.

Crops at seeded random positions and sizes (sides 200-640 px), saved with qualities 70-92 and mostly 4:2:0 chroma
subsampling like photos on the web, each with a lossless PNG twin of the same pixels (for the `lossless_twin`
control). The same seed gives the same files.

`build_scene_corpus` is the native_twin control's test bed: each source photo is a smaller copy of a larger scene
(its twin), so that a control can render the scene natively at `gen_size` as a generator does.
"""

from __future__ import annotations

import importlib.resources
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.datasets import load_sample_images

from aigen.preprocess import to_rgb

# Photographs only (no drawings, charts or microscope slides), all at least MIN_SIDE on both sides.
PHOTOS = (
    "astronaut.png",
    "brick.png",
    "camera.png",
    "chelsea.png",
    "coffee.png",
    "coins.png",
    "grass.png",
    "gravel.png",
    "hubble_deep_field.jpg",
    "moon.png",
    "motorcycle_left.png",
    "motorcycle_right.png",
    "retina.jpg",
    "rocket.jpg",
)
MIN_SIDE, MAX_SIDE = 200, 640
QUALITIES = (70, 92)
SUBSAMPLINGS = ((2, 0.75), (0, 0.25))  # (Pillow code, probability): 4:2:0 mostly, some 4:4:4
SCENE_RATIOS = (2.0, 3.0)  # a scene's side over the larger of its photo's side and the render's
# The filter that makes a scene's photo: the camera's (or the web's) downscale, which no pipeline can know.
CAMERAS = {
    "lanczos": Image.Resampling.LANCZOS,
    "bicubic": Image.Resampling.BICUBIC,
    "hamming": Image.Resampling.HAMMING,
    "bilinear": Image.Resampling.BILINEAR,
    "box": Image.Resampling.BOX,
}
DEFAULT_CAMERA = "lanczos"  # the camera of a scene corpus unless told otherwise


@dataclass(frozen=True)
class CorpusItem:
    id: str
    jpeg: Path  # the source photo as the factory reads it
    lossless: Path  # the same pixels before JPEG compression
    quality: int


def bundled_photos() -> list[tuple[str, Image.Image]]:
    """The pool of real photos as (stem, RGB image), greyscale ones converted to RGB."""
    root = importlib.resources.files("skimage.data")
    photos = []
    for name in PHOTOS:
        with Image.open(str(root / name)) as image:
            image.load()
            photos.append((Path(name).stem, to_rgb(image)))
    samples = load_sample_images()
    for name, pixels in zip(samples.filenames, samples.images, strict=True):
        photos.append((Path(name).stem, Image.fromarray(pixels)))
    return photos


def web_jpeg_settings(rng: np.random.Generator) -> tuple[int, int]:
    """A web photo's JPEG quality and Pillow subsampling code, drawn in that order (the corpora's bytes rely on it)."""
    codes, weights = zip(*SUBSAMPLINGS, strict=True)
    return int(rng.integers(QUALITIES[0], QUALITIES[1] + 1)), int(rng.choice(codes, p=weights))


def random_crop(photo: Image.Image, rng: np.random.Generator, min_side: int, max_side: int) -> Image.Image:
    """A crop of random width and height (each in [min_side, max_side], within the photo) at a random place."""
    width = int(rng.integers(min_side, min(max_side, photo.width) + 1))
    height = int(rng.integers(min_side, min(max_side, photo.height) + 1))
    left = int(rng.integers(0, photo.width - width + 1))
    top = int(rng.integers(0, photo.height - height + 1))
    return photo.crop((left, top, left + width, top + height))


def build_corpus(
    folder: Path, count: int = 320, seed: int = 0, min_side: int = MIN_SIDE, max_side: int = MAX_SIDE
) -> list[CorpusItem]:
    """`count` crops as `folder/jpeg/<id>.jpg` (the source) and `folder/lossless/<id>.png` (its twin).

    The photos take turns, so every photo gives about the same number of crops. A `min_side` of 256 keeps every
    crop above the factory's default `loader.min_side=${size}` at size 256.
    """
    rng = np.random.default_rng(seed)
    photos = bundled_photos()
    (folder / "jpeg").mkdir(parents=True, exist_ok=True)
    (folder / "lossless").mkdir(parents=True, exist_ok=True)
    items = []
    for index in range(count):
        stem, photo = photos[index % len(photos)]
        crop = random_crop(photo, rng, min_side, max_side)
        quality, subsampling = web_jpeg_settings(rng)
        image_id = f"{index:04d}-{stem}"
        item = CorpusItem(
            image_id, folder / "jpeg" / f"{image_id}.jpg", folder / "lossless" / f"{image_id}.png", quality
        )
        crop.save(item.jpeg, format="JPEG", quality=quality, subsampling=subsampling)
        crop.save(item.lossless, format="PNG", compress_level=1)
        items.append(item)
    return items


@dataclass(frozen=True)
class SceneItem:
    id: str
    photo: Path  # the source photo: the scene resized to `side` (PNG, or a web JPEG)
    twin: Path  # the scene at a higher resolution (lossless): the native_twin control's
    lossless: Path | None  # a JPEG photo's pixels before compression: the lossless_twin control's
    side: int


def build_scene_corpus(
    folder: Path,
    count: int,
    sides: tuple[int, int],
    jpeg: bool = False,
    seed: int = 0,
    scene_side: int = 0,
    camera: str = DEFAULT_CAMERA,
) -> list[SceneItem]:
    """`count` square scenes as `folder/twins/<id>.png` and their photos as `folder/photos/<id>.png|jpg` (with
    `jpeg`, the photo before compression as `folder/lossless/<id>.png`).

    Each scene is a crop of a bundled photo at its own pixels, Lanczos-upscaled only when it is smaller than 2-3x
    (a seeded ratio per scene) both the photo's side (drawn from `sides`) and `scene_side`, so that the photo and a
    native render are both clean downscales of it: the render with Lanczos, the photo with `camera` (one of
    CAMERAS; the same draws whichever). The ratio is drawn, never a whole 2: a scene exactly twice the photo's side
    made every photo (or, for photos below `scene_side`, every render) an exact 2:1 downscale, and that regularity
    alone moved one half's mean brightness in up to 87% of a sweep's pairs. JPEG photos are web JPEGs as in
    `build_corpus`.
    """
    rng = np.random.default_rng(seed)
    photos = bundled_photos()
    for name in ("photos", "twins") + (("lossless",) if jpeg else ()):
        (folder / name).mkdir(parents=True, exist_ok=True)
    items = []
    for index in range(count):
        stem, photo = photos[index % len(photos)]
        side = int(rng.integers(sides[0], sides[1] + 1))
        crop_side = int(rng.integers(min(MIN_SIDE, *photo.size), min(photo.size) + 1))
        crop = random_crop(photo, rng, crop_side, crop_side)
        scene_at = max(crop_side, math.ceil(rng.uniform(*SCENE_RATIOS) * max(side, scene_side)))
        scene = crop if scene_at == crop_side else crop.resize((scene_at, scene_at), Image.Resampling.LANCZOS)
        small = scene.resize((side, side), CAMERAS[camera])
        image_id = f"{index:04d}-{stem}"
        item = SceneItem(
            image_id,
            photo=folder / "photos" / f"{image_id}.{'jpg' if jpeg else 'png'}",
            twin=folder / "twins" / f"{image_id}.png",
            lossless=folder / "lossless" / f"{image_id}.png" if jpeg else None,
            side=side,
        )
        if item.lossless:
            quality, subsampling = web_jpeg_settings(rng)
            small.save(item.photo, format="JPEG", quality=quality, subsampling=subsampling)
            small.save(item.lossless, format="PNG", compress_level=1)
        else:
            small.save(item.photo, format="PNG", compress_level=1)
        scene.save(item.twin, format="PNG", compress_level=1)
        items.append(item)
    return items
