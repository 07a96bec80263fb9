"""Decode one photo into an upright RGB image, and the square crop + resize applied to BOTH halves of a pair."""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, ImageOps

from aigen.errors import SkipImage

WHITE = (255, 255, 255)
JPEG_SUBSAMPLING = {"4:4:4": 0, "4:2:2": 1, "4:2:0": 2}


def to_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow mode to 8-bit RGB: transparency is flattened onto white, 16-bit and float data are rescaled."""
    if image.mode == "RGB":
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        values = np.asarray(image, dtype=np.float64)
        if image.mode.startswith("I;16") or values.max() > 255:
            values = values / 257.0
        return Image.fromarray(np.clip(values.round(), 0, 255).astype(np.uint8)).convert("RGB")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, WHITE + (255,))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


class ImageLoader:
    """Opens a source photo by its content (not its extension), upright and RGB, or raises SkipImage."""

    def __init__(self, max_pixels: int = 100_000_000, min_side: int = 64, max_aspect: float = 4.0) -> None:
        self.max_pixels = max_pixels
        self.min_side = min_side
        self.max_aspect = max_aspect
        # Pillow's own bomb check (a warning above the limit, an error above twice it) follows ours.
        Image.MAX_IMAGE_PIXELS = max_pixels

    def __call__(self, path) -> Image.Image:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                with Image.open(path) as image:
                    self._check_size(image.size)
                    image.load()
                    upright = ImageOps.exif_transpose(image)
                    return to_rgb(upright)
        except SkipImage:
            raise
        except Image.DecompressionBombError as error:
            raise SkipImage(
                "check", f"decompression bomb refused (above max_pixels={self.max_pixels}): {error}"
            ) from None
        except FileNotFoundError:
            raise SkipImage("read", "file not found (broken symlink?)") from None
        except PermissionError:
            raise SkipImage("read", "permission denied") from None
        except (OSError, ValueError, SyntaxError) as error:
            raise SkipImage("decode", f"not a readable image: {error}") from None

    def _check_size(self, size: tuple[int, int]) -> None:
        width, height = size
        if width * height > self.max_pixels:
            raise SkipImage("check", f"{width}x{height} is above max_pixels={self.max_pixels} (decompression bomb?)")
        if min(width, height) < self.min_side:
            raise SkipImage("check", f"{width}x{height} is below min_side={self.min_side}; never upscaled")
        if max(width, height) > self.max_aspect * min(width, height):
            raise SkipImage("check", f"{width}x{height} has an aspect ratio above max_aspect={self.max_aspect}")


def center_square(image: Image.Image) -> Image.Image:
    """The largest centred square: the pipeline's view of a photo, before and after generation."""
    width, height = image.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    return image.crop((left, top, left + side, top + side))


def to_square(image: Image.Image, size: int) -> Image.Image:
    """Centre-crop and resize with Lanczos: the one function applied to the original and to the AI image."""
    square = center_square(image)
    if square.size == (size, size):
        return square
    return square.resize((size, size), Image.Resampling.LANCZOS)


def encode_jpeg(image: Image.Image, quality: int, subsampling: str) -> bytes:
    """JPEG bytes with the given quality and chroma subsampling, no EXIF or ICC, so both classes look alike."""
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality, subsampling=JPEG_SUBSAMPLING[subsampling])
    return buffer.getvalue()
