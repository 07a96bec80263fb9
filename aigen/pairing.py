"""Symmetric pair processing: both halves of a pair take the same geometric path (and, optionally, the source's
compression history) to `size`, so that the factory's processing is no cue a detector can learn.

- geometry: the seed resized the original once, from its square box straight to `size` (`direct`), while the
  AI image was born at `gen_size` and resized from there (or not at all when `gen_size == size`).
  `symmetric` takes the original through `gen_size` first, from the same cropped square the generator is given,
  so that from there on both halves share one path (`preprocess.to_square` to `size`, a no-op for both when
  `gen_size == size`); with the identity control both halves are then the same pixels.
- JPEG history: a source JPEG's original carries that JPEG's quantisation, a generated image is clean.
  `match_jpeg_history` JPEG-compresses the generated image with the source's own quantisation tables and chroma
  subsampling, at the source square's side and on the source's block grid (EXIF rotations included).

- encoding: one JpegSettings encodes both halves (`PairProcessor` holds all three: the writer only writes bytes).

Measured on the controls (`python -m aigen.bias_check`, 320 web-JPEG crops): symmetric geometry removes the
resampling cue; jpeg_history=matched does not remove the compression cue but moves it (see match_jpeg_history).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, JpegImagePlugin

from aigen.checks import number
from aigen.errors import UserError
from aigen.preprocess import Photo, to_square

JPEG_SUBSAMPLING = {"4:4:4": 0, "4:2:2": 1, "4:2:0": 2}

GEOMETRIES = ("symmetric", "direct")  # symmetric: photo -> gen_size -> size; direct (the seed's): photo -> size
JPEG_HISTORIES = ("matched", "none")  # matched: the AI image gets the source JPEG's compression; none: it stays clean
MCU = 16  # the largest JPEG block grid (4:2:0 chroma); a phase modulo 16 also aligns 8-pixel blocks

EXIF_ORIENTATION = 0x0112
# ImageOps.exif_transpose's method for each EXIF orientation, and the method that undoes it.
ORIENTATION_METHOD = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
SWAPS_AXES = frozenset(
    {Image.Transpose.TRANSPOSE, Image.Transpose.TRANSVERSE, Image.Transpose.ROTATE_90, Image.Transpose.ROTATE_270}
)
INVERSE_METHOD = {
    Image.Transpose.ROTATE_270: Image.Transpose.ROTATE_90,
    Image.Transpose.ROTATE_90: Image.Transpose.ROTATE_270,
}


@dataclass(frozen=True)
class Pairing:
    """How both halves of a pair reach `size` (`pairing.*` in the config; fingerprinted with the dataset)."""

    geometry: str = "symmetric"
    jpeg_history: str = "none"
    mixup: float = 0.0  # DDA's pixel mixup: AI half = r x real + (1 - r) x generated, r ~ U(0, mixup) (aigen.native)

    def __post_init__(self) -> None:
        if self.geometry not in GEOMETRIES:
            raise UserError(f"pairing.geometry={self.geometry!r} is not one of {', '.join(GEOMETRIES)}")
        if self.jpeg_history not in JPEG_HISTORIES:
            raise UserError(f"pairing.jpeg_history={self.jpeg_history!r} is not one of {', '.join(JPEG_HISTORIES)}")
        number("pairing.mixup", self.mixup, low=0, high=1)
        if self.mixup and self.geometry == "direct":
            raise UserError(
                "pairing.mixup needs both halves on one grid: pairing.geometry=direct never puts the original "
                "on the generated image's grid; use pairing.geometry=symmetric"
            )


def original_at_gen_size(square: Image.Image, gen_size: int) -> Image.Image:
    """The original where the generated image starts: the generator's own input square (`Photo.condition_square`)
    at `gen_size`. From the cropped square, not from a box of the whole photo: a box lets the filter see the pixels
    just outside the square, a cropped copy repeats its edge pixels, and that border difference alone is a cue."""
    return to_square(square, gen_size)


def original_square(
    photo: Photo, size: int, gen_size: int, geometry: str = "symmetric", at_gen_size: Image.Image | None = None
) -> Image.Image:
    """The original half at `size`, before the shared JPEG encoder: through `gen_size` from the generator's input
    square (symmetric; `at_gen_size` when the caller has it already), or the seed's way, the photo's square box
    straight to `size` (direct)."""
    if geometry == "direct":
        return to_square(photo.image, size, photo.square_box())
    if at_gen_size is None:
        at_gen_size = original_at_gen_size(photo.condition_square(), gen_size)
    return to_square(at_gen_size, size)


def ai_square(image: Image.Image, size: int, history: JpegHistory | None = None) -> Image.Image:
    """The AI half at `size`, before the shared JPEG encoder: the source's compression history first, if any."""
    if history is not None:
        image = match_jpeg_history(image, history)
    return to_square(image, size)


@dataclass(frozen=True)
class JpegHistory:
    """What a source JPEG did to its photo's square: its tables, subsampling, and where the square sits on its
    block grid (in the stored, un-rotated frame), so the generated image can be compressed the same way."""

    qtables: dict[int, list[int]]
    subsampling: int  # Pillow's code: 0 = 4:4:4, 1 = 4:2:2, 2 = 4:2:0
    side: int  # the square's side in the source's full-resolution pixels
    phase: tuple[int, int]  # the square's top-left corner modulo MCU, in the stored frame
    orientation: int  # EXIF orientation (1 = upright as stored)


def _stored_corner(box: tuple[int, int, int, int], upright_size: tuple[int, int], method) -> tuple[int, int]:
    """The top-left corner, in the stored frame, of an upright box: where the JPEG's blocks were counted from."""
    left, top, right, bottom = box
    width, height = upright_size
    if method is None:
        return left, top
    corners = {
        Image.Transpose.FLIP_LEFT_RIGHT: (width - right, top),
        Image.Transpose.ROTATE_180: (width - right, height - bottom),
        Image.Transpose.FLIP_TOP_BOTTOM: (left, height - bottom),
        Image.Transpose.TRANSPOSE: (top, left),
        Image.Transpose.ROTATE_270: (top, width - right),
        Image.Transpose.TRANSVERSE: (height - bottom, width - right),
        Image.Transpose.ROTATE_90: (height - bottom, left),
    }
    return corners[method]


def read_jpeg_history(path: str | Path | BinaryIO, box: tuple[float, float, float, float]) -> JpegHistory | None:
    """The compression history of the square `box` (upright, full-resolution pixels) of a source photo; None when
    the source is not a JPEG or has no tables to match (e.g. CMYK)."""
    with Image.open(path) as image:
        if image.format != "JPEG" or image.mode not in ("L", "RGB", "YCbCr") or not image.quantization:
            return None
        orientation = image.getexif().get(EXIF_ORIENTATION, 1)
        method = ORIENTATION_METHOD.get(orientation)
        stored_size = image.size
        qtables = {index: list(table) for index, table in image.quantization.items()}
        sampling = JpegImagePlugin.get_sampling(image)
    upright_size = stored_size[::-1] if method in SWAPS_AXES else stored_size
    whole = tuple(round(value) for value in box)
    left, top = _stored_corner(whole, upright_size, method)
    return JpegHistory(
        qtables=qtables,
        subsampling=max(sampling, 0),  # -1: one component (greyscale), whose single table serves all three
        side=whole[2] - whole[0],
        phase=(left % MCU, top % MCU),
        orientation=orientation if method is not None else 1,
    )


def compress_like_source(square: Image.Image, history: JpegHistory) -> Image.Image:
    """`square` (at the source square's side, upright) JPEG-compressed as the source was: same tables and
    subsampling, on the same block grid (placed at the source's phase, the margin filled by edge pixels)."""
    method = ORIENTATION_METHOD.get(history.orientation)
    stored = square.transpose(INVERSE_METHOD.get(method, method)) if method is not None else square
    phase_x, phase_y = history.phase
    # The margin repeats the edge pixels, as an encoder pads a partial block: no artificial edge in a block.
    canvas = Image.fromarray(
        np.pad(np.asarray(stored.convert("RGB")), ((phase_y, 0), (phase_x, 0), (0, 0)), mode="edge")
    )
    buffer = io.BytesIO()
    canvas.save(buffer, format="JPEG", qtables=history.qtables, subsampling=history.subsampling)
    with Image.open(buffer) as decoded:
        restored = decoded.convert("RGB").crop((phase_x, phase_y, phase_x + stored.width, phase_y + stored.height))
    return restored.transpose(method) if method is not None else restored


def match_jpeg_history(image: Image.Image, history: JpegHistory) -> Image.Image:
    """The generated image given the source's compression history: resized to the source square's side,
    compressed like the source, and resized back to its own side (the shared path to `size` follows).

    Measured on the lossless_twin control (README), this does NOT remove the compression cue: the round trip
    to the source's side blurs the generated image and its compression then overshoots the original's.
    """
    at_source = to_square(image, history.side)
    return to_square(compress_like_source(at_source, history), image.width)


@dataclass(frozen=True)
class JpegSettings:
    """The one JPEG encoder of a dataset: originals and AI images share quality and chroma subsampling, and
    neither carries EXIF or ICC data, so a detector cannot tell the classes apart by their files."""

    quality: int
    subsampling: str

    def __post_init__(self) -> None:
        if self.subsampling not in JPEG_SUBSAMPLING:
            raise UserError(f"jpeg.subsampling={self.subsampling!r} is not one of {', '.join(JPEG_SUBSAMPLING)}")
        if not 1 <= self.quality <= 100:
            raise UserError(f"jpeg.quality={self.quality} must be between 1 and 100")

    def encode(self, image: Image.Image) -> bytes:
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=self.quality, subsampling=JPEG_SUBSAMPLING[self.subsampling])
        return buffer.getvalue()


@dataclass(frozen=True)
class PairProcessor:
    """Both halves of a pair, from the decoded photo and the generated image to the JPEG bytes written: the one
    place that decides their pixels after generation (geometry, compression history, encoder)."""

    pairing: Pairing
    jpeg: JpegSettings
    size: int
    gen_size: int

    @property
    def reads_history(self) -> bool:
        return self.pairing.jpeg_history == "matched"

    def original_jpeg(self, photo: Photo, at_gen_size: Image.Image | None = None) -> bytes:
        """The original half's bytes; `at_gen_size`: the photo's square at gen_size, if already made (for mixup)."""
        return self.jpeg.encode(original_square(photo, self.size, self.gen_size, self.pairing.geometry, at_gen_size))

    def native_original_jpeg(self, square: Image.Image) -> bytes:
        """At gen_size=native: the photo's square on its native grid (aigen.native), which is also the generator's
        input, takes the AI half's own path to `size`."""
        return self.jpeg.encode(to_square(square, self.size))

    def history(self, path: str | Path | BinaryIO, photo: Photo) -> JpegHistory | None:
        """The source's compression history for the AI half, when `jpeg_history=matched`."""
        return read_jpeg_history(path, photo.square_box()) if self.reads_history else None

    def facts(self, history: JpegHistory | None) -> dict:
        """The row's record of this pair's path at a fixed gen_size (aigen.native records its own): the geometry,
        and the AI half's compression history (`matched_resampled`: compressed like the source at the source's
        side and resized back; `unavailable`: the source has no JPEG tables to match)."""
        if not self.reads_history:
            compression = "none"
        else:
            compression = "matched_resampled" if history is not None else "unavailable"
        return {"geometry": self.pairing.geometry, "jpeg_history": compression}

    def ai_jpeg(self, image: Image.Image, history: JpegHistory | None) -> bytes:
        return self.jpeg.encode(ai_square(image, self.size, history))
