"""Decode one photo into an upright RGB image, and the square crop + resize applied to BOTH halves of a pair
(aigen.pairing decides the path each half takes)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps

from aigen.errors import SkipImage

WHITE = (255, 255, 255)


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


@dataclass(frozen=True)
class Photo:
    """An upright RGB photo, maybe decoded at a reduced JPEG scale, and its upright size at full resolution."""

    image: Image.Image
    full_size: tuple[int, int]

    def square_box(self) -> tuple[float, float, float, float]:
        """The centred square of the full-size photo in this image's pixels (fractional after a reduced decode),
        so that a reduced decode crops exactly the region a full decode would."""
        full_width, full_height = self.full_size
        side = min(full_width, full_height)
        left, top = (full_width - side) // 2, (full_height - side) // 2
        scale_x, scale_y = self.image.width / full_width, self.image.height / full_height
        return (left * scale_x, top * scale_y, (left + side) * scale_x, (top + side) * scale_y)

    def condition_square(self) -> Image.Image:
        """The centred square as its own image, for the generator."""
        return self.image.crop(tuple(round(value) for value in self.square_box()))


class ImageLoader:
    """Opens a source photo by its content (not its extension), upright and RGB, or raises SkipImage."""

    def __init__(
        self, max_pixels: int = 100_000_000, min_side: int = 64, max_aspect: float = 4.0, draft: bool = True
    ) -> None:
        self.max_pixels = max_pixels
        self.draft = draft
        self.min_side = min_side
        self.max_aspect = max_aspect
        # Pillow's own bomb check (a warning above the limit, an error above twice it) follows ours.
        Image.MAX_IMAGE_PIXELS = max_pixels

    def __call__(self, path, decode_side: int | None = None) -> Photo:
        """`decode_side`: the shorter side the caller needs; with `draft`, a JPEG is decoded at the smallest
        DCT scale (1/2, 1/4, 1/8) that still covers it, several times faster. None decodes at full size."""
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                with Image.open(path) as image:
                    full_size = image.size
                    self._check_size(full_size)
                    if self.draft and decode_side and image.format == "JPEG":
                        image.draft(image.mode, (decode_side, decode_side))
                    image.load()
                    decoded_size = image.size
                    ImageOps.exif_transpose(image, in_place=True)  # in place: no copy of a large photo
                    if image.size != decoded_size:  # rotated by 90 degrees: so is the full-size shape
                        full_size = full_size[::-1]
                    return Photo(to_rgb(image), full_size)
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
        except Image.UnidentifiedImageError:  # its message names the file, or a BytesIO by its address
            raise SkipImage("decode", "not a readable image: cannot identify image file") from None
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


def to_square(image: Image.Image, size: int, box: tuple[float, float, float, float] | None = None) -> Image.Image:
    """Centre square (or `box`) resized with Lanczos: the one function applied to the original and the AI image.

    Resizing from a box of the whole image, instead of a cropped copy, saves a copy and lets the filter see the
    real pixels just outside the square rather than repeated edge pixels.
    """
    if box is None:
        box = Photo(image, image.size).square_box()
    if image.size == (size, size) and box == (0, 0, size, size):
        return image
    return image.resize((size, size), Image.Resampling.LANCZOS, box=box)
