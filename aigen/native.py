"""`generator.gen_size=native`: the generator works on the photo's own pixel grid, not on a resampled copy.

The photo's centred square is cropped (never resized) down to a multiple of the model's side multiple (8 for an
SD-family autoencoder, 16 for FLUX's packed latents); a square larger than `generator.max_side` is resized once
instead. `native_grid` decides that geometry and `NativeGrid.square` cuts it: the generator's input and the
original half are the same image, so the two halves of a pair share one pixel grid until the shared path to
`size` (aigen.preprocess.to_square). On that grid the source JPEG's compression can be applied to the generated
image exactly (`pairing.jpeg_history=matched`, no resampling), and DDA's pixel mixup blends the real photo into
the generated one (`pairing.mixup`). Every fact that decides a pair's pixels is recorded in its manifest row.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image

from aigen.checks import multiple_of_8, whole_number
from aigen.errors import SkipImage, UserError
from aigen.pairing import JpegHistory, read_jpeg_history
from aigen.preprocess import Photo, to_square
from aigen.seeding import unit_interval

NATIVE = "native"
DEFAULT_MAX_SIDE = 1024
CONTROL_MULTIPLE = 8  # the controls have no model: 8, the JPEG block and the SD autoencoders' multiple


def check_gen_size(gen_size: object) -> int | str:
    """`generator.gen_size`: a positive multiple of 8, or `native`."""
    if gen_size == NATIVE:
        return NATIVE
    return multiple_of_8("generator.gen_size", gen_size, " or native")


def check_max_side(max_side: object) -> int:
    return whole_number("generator.max_side", max_side, 8)


@dataclass(frozen=True)
class NativeGrid:
    """Where a photo's native square lies and the side the generator works at."""

    side: int  # the photo's centred square, in its full-resolution pixels
    offset: int  # the crop's corner inside that square, on both axes (the crop is centred)
    crop: int  # the cropped side: `side` down to the model's multiple
    work_side: int  # the side both halves have before the shared resize: `crop`, or max_side when it is larger
    max_side: int

    @property
    def resized(self) -> bool:
        return self.work_side != self.crop

    def square(self, square: Image.Image) -> Image.Image:
        """The photo's centred square (at full resolution) cut to this grid: the generator's input, and the
        original half before the shared resize to `size`."""
        end = self.offset + self.crop
        cropped = square.crop((self.offset, self.offset, end, end))
        return to_square(cropped, self.work_side) if self.resized else cropped

    def box(self, square_box: tuple[float, float, float, float]) -> tuple[int, int, int, int]:
        """The cropped square in the upright photo's full-resolution pixels (where the JPEG's blocks are counted)."""
        left, top = round(square_box[0]) + self.offset, round(square_box[1]) + self.offset
        return left, top, left + self.crop, top + self.crop

    def facts(self, square_box: tuple[float, float, float, float]) -> dict:
        """The row's record of this grid."""
        left, top, _, _ = self.box(square_box)
        return {
            "native_side": self.side,
            "crop_left": left,
            "crop_top": top,
            "crop_side": self.crop,
            "max_side": self.max_side,
            "resized": self.resized,
            "original_side": self.work_side,
        }


def native_grid(side: int, multiple: int, max_side: int) -> NativeGrid:
    """The grid of a centred square of `side` pixels: cropped to the model's `multiple`, or, when that is larger
    than `max_side`, resized once to `max_side` rounded down to the multiple."""
    crop = side - side % multiple
    largest = max_side - max_side % multiple
    return NativeGrid(side, (side - crop) // 2, crop, min(crop, largest), max_side)


@dataclass(frozen=True)
class NativeSquare:
    """One photo on its native grid: the generator's input and original half, its JPEG history, its row facts."""

    image: Image.Image
    history: JpegHistory | None
    facts: dict


def native_square(
    photo: Photo, file: str | Path | BinaryIO, multiple: int, max_side: int, size: int, reads_history: bool
) -> NativeSquare:
    """Cut a full-resolution photo to its native grid; a square smaller than `size` there is a recorded skip (never
    upscaled). `reads_history`: read the source JPEG's history of exactly the cut region."""
    square_box = photo.square_box()
    grid = native_grid(round(square_box[2] - square_box[0]), multiple, max_side)
    if grid.work_side < size:
        raise SkipImage("check", f"its native square ({grid.work_side} px) is below size={size}; never upscaled")
    history = read_jpeg_history(file, grid.box(square_box)) if reads_history else None
    facts = grid.facts(square_box) | {"jpeg_history": history_fact(reads_history, history, grid)}
    return NativeSquare(grid.square(photo.condition_square()), history, facts)


def history_fact(reads_history: bool, history: JpegHistory | None, grid: NativeGrid) -> str:
    """What the AI half's compression history is: `matched` on the source's own grid (no resampling),
    `matched_resampled` (the square was resized above max_side, so the source's grid is gone: the generated image
    is compressed like the source at the source's side and resized back, as pairing.match_jpeg_history does),
    `none` (not asked) or `unavailable` (the source is not a JPEG, or has no tables to match)."""
    if not reads_history:
        return "none"
    if history is None:
        return "unavailable"
    return "matched_resampled" if grid.resized else "matched"


def same_side_groups(images: list[Image.Image]) -> list[list[int]]:
    """The indices of `images` grouped by size, in first-seen order: one model call stacks one size."""
    groups: dict[tuple[int, int], list[int]] = {}
    for index, image in enumerate(images):
        groups.setdefault(image.size, []).append(index)
    return list(groups.values())


def mixup_ratio(image_seed: int, mixup: float) -> float:
    """r ~ U(0, mixup), drawn from the image's own seed: the same photo gets the same r in every run."""
    return mixup * unit_interval("mixup", image_seed)


def mix(real: Image.Image, generated: Image.Image, ratio: float) -> Image.Image:
    """DDA's pixel mixup: ratio x real + (1 - ratio) x generated, rounded to 8 bits, on their shared grid."""
    if real.size != generated.size:
        raise UserError(
            f"pairing.mixup: the generated image is {generated.width}x{generated.height} and the original on its "
            f"grid {real.width}x{real.height}; mixup needs both on one grid"
        )
    blend = ratio * np.asarray(real, np.float64) + (1 - ratio) * np.asarray(generated.convert("RGB"), np.float64)
    return Image.fromarray(np.clip(blend.round(), 0, 255).astype(np.uint8))


def ai_half(
    generated: Image.Image, real: Image.Image | None, image_seed: int, mixup: float, facts: dict
) -> tuple[Image.Image, dict]:
    """The AI half before the pair processor (history, resize, encoder) and its row facts: the generated image,
    mixed with `real` when `pairing.mixup` is on, and its side where the original's is recorded."""
    facts = dict(facts)
    if mixup:
        ratio = mixup_ratio(image_seed, mixup)
        generated = mix(real, generated, ratio)
        facts["mixup_r"] = ratio
    if "original_side" in facts:
        facts["ai_side"] = generated.width
    return generated, facts
