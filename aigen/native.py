"""`generator.gen_size=native`: the generator works on the photo's own pixel grid, not on a resampled copy.

The photo's centred square is cropped (never resized) down to a multiple of the model's side multiple (8 for an
SD-family autoencoder, 16 for FLUX's packed latents), on a JPEG source onto the source's own block grid; a square
larger than `generator.max_side` is resized once instead. `native_grid` decides that geometry and `NativeGrid.cut`
cuts it: the generator's input and the original half are the same image, so the two halves of a pair share one
pixel grid until the shared path to `size` (aigen.preprocess.to_square). On that grid the source JPEG's
compression can be applied to the generated image exactly (`pairing.jpeg_history=matched`, no resampling), and
DDA's pixel mixup blends the real photo into the generated one (`pairing.mixup`). Every fact that decides a
pair's pixels is recorded in its manifest row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image

from aigen.checks import multiple_of_8, whole_number
from aigen.errors import SkipImage
from aigen.pairing import (
    EXIF_ORIENTATION,
    MCU,
    ORIENTATION_METHOD,
    JpegHistory,
    _stored_corner,
    read_jpeg_history,
)
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
class BlockGrid:
    """A source JPEG's block grid: MCU-pixel blocks counted from the corner of its stored (un-rotated) frame."""

    method: Image.Transpose | None  # how EXIF turns the stored frame upright (None: stored upright)


def block_grid(file: str | Path | BinaryIO) -> BlockGrid | None:
    """The source's block grid when it is a JPEG (read from its header), else None."""
    with Image.open(file) as image:
        if image.format != "JPEG":
            return None
        return BlockGrid(ORIENTATION_METHOD.get(image.getexif().get(EXIF_ORIENTATION, 1)))


@dataclass(frozen=True)
class NativeGrid:
    """Where a photo's native square lies (upright, full-resolution pixels) and the side the generator works at."""

    side: int  # the photo's shorter side: its centred square's
    left: int
    top: int
    crop: int  # the cut square's side: a multiple of the model's (and of MCU when on the source's block grid)
    work_side: int  # the side both halves have before the shared resize: `crop`, or max_side when it is larger
    max_side: int
    on_blocks: bool  # the cut starts and ends on the source JPEG's block grid

    @property
    def resized(self) -> bool:
        return self.work_side != self.crop

    @property
    def box(self) -> tuple[int, int, int, int]:
        return self.left, self.top, self.left + self.crop, self.top + self.crop

    def cut(self, upright: Image.Image) -> Image.Image:
        """The upright photo (full resolution) cut to this grid: the generator's input, and the original half
        before the shared resize to `size`."""
        cropped = upright.crop(self.box)
        return to_square(cropped, self.work_side) if self.resized else cropped

    def facts(self) -> dict:
        """The row's record of this grid."""
        return {
            "native_side": self.side,
            "crop_left": self.left,
            "crop_top": self.top,
            "crop_side": self.crop,
            "on_source_blocks": self.on_blocks,
            "max_side": self.max_side,
            "resized": self.resized,
            "original_side": self.work_side,
        }


def native_grid(upright_size: tuple[int, int], multiple: int, max_side: int, blocks: BlockGrid | None) -> NativeGrid:
    """The photo's centred square, cropped (never resized) down to the model's `multiple`; when that is larger than
    `max_side`, resized once to `max_side` rounded down to the multiple instead.

    On a JPEG source (`blocks`), the cut is moved by at most MCU - 1 pixels so that it starts and ends on the
    source's own block grid: every block of the original half is then a block the source's encoder made, and
    the same tables applied to a generated image on that grid make exactly the blocks the photo went through.
    A centred cut that splits the border blocks leaves a cue there (the lossless control's AI half came out
    blurrier in 81% of pairs; on the grid the source's pixels are reproduced 40 times more closely)."""
    width, height = upright_size
    side = min(width, height)
    largest = max_side - max_side % multiple
    on_blocks = side - side % math.lcm(multiple, MCU)
    if blocks is not None and on_blocks <= largest:
        centred = ((width - on_blocks) // 2, (height - on_blocks) // 2)
        for left, top in nearest_first(centred, width - on_blocks, height - on_blocks):
            corner = _stored_corner((left, top, left + on_blocks, top + on_blocks), upright_size, blocks.method)
            if corner[0] % MCU == 0 and corner[1] % MCU == 0:
                return NativeGrid(side, left, top, on_blocks, on_blocks, max_side, on_blocks=True)
    # Not a JPEG (no grid to keep), or resized (no grid survives): the centred square.
    crop = side - side % multiple
    left, top = (width - crop) // 2, (height - crop) // 2
    return NativeGrid(side, left, top, crop, min(crop, largest), max_side, on_blocks=False)


def nearest_first(centre: tuple[int, int], right: int, bottom: int) -> list[tuple[int, int]]:
    """The corners within MCU - 1 pixels of `centre` that keep the square inside the photo, nearest first. One of
    them is on the grid: on each axis the grid starts at one end of the photo (which end depends on the EXIF
    orientation), so either that end or a grid line within MCU / 2 of the centre is in range."""
    steps = range(-(MCU - 1), MCU)
    corners = [(centre[0] + dx, centre[1] + dy) for dx in steps for dy in steps]
    inside = [(x, y) for x, y in corners if 0 <= x <= right and 0 <= y <= bottom]
    return sorted(inside, key=lambda corner: (abs(corner[0] - centre[0]) + abs(corner[1] - centre[1]), corner))


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
    grid = native_grid(photo.image.size, multiple, max_side, block_grid(file))
    if grid.work_side < size:
        raise SkipImage("check", f"its native square ({grid.work_side} px) is below size={size}; never upscaled")
    history = read_jpeg_history(file, grid.box) if reads_history else None
    facts = grid.facts() | {"jpeg_history": history_fact(reads_history, history, grid)}
    return NativeSquare(grid.cut(photo.image), history, facts)


def history_fact(reads_history: bool, history: JpegHistory | None, grid: NativeGrid) -> str:
    """What the AI half's compression history is: `matched` on the source's own grid (no resampling),
    `matched_resampled` (the square was resized above max_side, so the source's grid is gone: the generated image
    is compressed like the source at the source's side and resized back, as pairing.match_jpeg_history does),
    `none` (not asked) or `unavailable` (the source is not a JPEG, or has no tables to match)."""
    if not reads_history:
        return "none"
    if history is None:
        return "unavailable"
    return "matched" if grid.on_blocks else "matched_resampled"


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
    """DDA's pixel mixup: ratio x real + (1 - ratio) x generated, rounded to 8 bits, on their shared grid. An image
    of another size (an API that did not return the size it was asked for) is that photo's recorded skip."""
    if real.size != generated.size:
        raise SkipImage(
            "mixup",
            f"the generated image is {generated.width}x{generated.height} and the original on its grid "
            f"{real.width}x{real.height}; pairing.mixup needs both on one grid",
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
