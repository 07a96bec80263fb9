"""Control generators that generate nothing: any difference between the halves of their pairs is the factory's own.

`identity`: the AI half is the photo itself, resized to `gen_size` (Lanczos) as the factory's condition square
arrives: exactly what a generator working at `gen_size` would return if it changed nothing. From there it takes
the generated image's path (to `size`, the shared JPEG encoder), so `python -m aigen.audit` on an identity dataset
measures what the factory's processing alone lets a detector learn: the geometric path (resampling) and
everything after it. Both halves come from the same decoded photo, so the source's JPEG history is in both
and this control cannot see that cue.

`lossless_twin`: isolates the compression-history cue. The source folder holds JPEGs (web photos, as real
sources are) and `twins` holds each one's lossless original under the same relative path (any lossless format,
e.g. `a/b.png` for `a/b.jpg`). The factory reads the JPEG for the original half, as it does for every source; the
AI half is the twin at `gen_size`. The halves then differ only by the source JPEG's compression (the geometry is
the same as identity's), which is what a real generator's clean output differs by from its JPEG original.

`native_twin`: a generator's image is born at `gen_size`; identity's AI half is resampled from the photo exactly
as the original half is, so it agrees with the pair processing by construction. Here `twins` holds a
HIGHER-resolution lossless version of each source photo (the scene; the source is a smaller copy of it, lossless
or JPEG), and the AI half is the twin's centred square resized once to `gen_size`: what a generator that changed
nothing would render. Its pairs show what the pair processing does to a natively rendered image.

At `gen_size=native` (aigen.native) identity and lossless_twin work on the photo's own grid: the twin is cut
exactly where the factory cuts its source photo (on the source JPEG's block grid), and nothing is resized.

The generator interface hands `prepare` the decoded square only, so the twin is found by the square's exact
pixels: `load` decodes every source JPEG that has a twin exactly as the factory does (full resolution, upright,
centred square) and keys the twin by a hash of that square. It needs `input_side: null` (no reduced JPEG
decode, which would change the pixels). A photo without a twin is a recorded skip.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from hydra.utils import to_absolute_path
from PIL import Image, ImageOps

from aigen.errors import SkipImage, UserError
from aigen.generators.base import Generator, Variation
from aigen.native import (
    CONTROL_MULTIPLE,
    DEFAULT_MAX_SIDE,
    NATIVE,
    block_grid,
    check_gen_size,
    check_max_side,
    native_grid,
)
from aigen.preprocess import Photo, to_rgb, to_square
from aigen.words import counted

LOSSLESS_EXTENSIONS = (".png", ".tif", ".tiff", ".bmp", ".webp")
JPEG_EXTENSIONS = (".jpg", ".jpeg")


class Identity(Generator):
    """generator=identity: the condition square resized to `gen_size`, nothing generated, no weights, CPU only."""

    seeded = False  # the seeds decide nothing
    input_side = None
    native_multiple = CONTROL_MULTIPLE

    def __init__(
        self,
        gen_size: int | str = 512,
        name: str = "identity",
        license: str | None = None,
        max_side: int = DEFAULT_MAX_SIDE,
    ) -> None:
        self.gen_size = check_gen_size(gen_size)
        self.max_side = check_max_side(max_side)
        self.name = name
        self.license = license

    def describe(self) -> dict:
        described = {"generator": self.name, "model": "none", "weights": "none", "gen_size": self.gen_size}
        return described | ({"max_side": self.max_side} if self.native else {})

    def dir_tags(self) -> list[str]:
        return [] if self.native else [f"gen{self.gen_size}"]

    def at_gen_size(self) -> str:
        return "at its native side" if self.native else f"at {self.gen_size} px"

    def plan(self, count: int, whole: int | None = None) -> str:
        images = counted(count, "control image")
        return f"{self.name}: {images} (the photo itself {self.at_gen_size()}; nothing generated)"

    def default_batch_size(self) -> int:
        return 16

    def load(self) -> None:
        """Nothing to load."""

    def prepare(self, square: Image.Image) -> Image.Image:
        """The resize happens here, on the factory's worker threads (native: the factory has cut the square)."""
        return square if self.native else to_square(square, self.gen_size)

    def generate(self, inputs: list[Image.Image], seeds: list[int]) -> list[Variation | SkipImage]:
        return [Variation(image) for image in inputs]


def square_key(square: Image.Image) -> str:
    """The exact pixels of a decoded square, as a short key."""
    return hashlib.sha256(repr(square.size).encode() + square.tobytes()).hexdigest()


def decoded_upright(path: Path) -> Image.Image:
    """A photo decoded as the factory's loader does at full resolution: upright, RGB. (Not through ImageLoader
    itself: constructing one resets Pillow's global decompression-bomb limit.)"""
    with Image.open(path) as image:
        image.load()
        return to_rgb(ImageOps.exif_transpose(image))


def decoded_square(path: Path) -> Image.Image:
    """The centred square of a photo decoded as the factory's loader does at full resolution."""
    upright = decoded_upright(path)
    return Photo(upright, upright.size).condition_square()


def twin_pairs(
    source_root: Path, twins_root: Path, source_extensions: tuple[str, ...] = JPEG_EXTENSIONS
) -> list[tuple[Path, Path]]:
    """(source photo, twin) for every twin whose relative path, with one of `source_extensions`, is another source
    file (never the twin itself: `generator.twins` set to the source folder would make the control identity)."""
    pairs = []
    for twin in sorted(twins_root.rglob("*")):
        if twin.suffix.lower() not in LOSSLESS_EXTENSIONS:
            continue
        relative = twin.relative_to(twins_root).with_suffix("")
        for extension in source_extensions + tuple(extension.upper() for extension in source_extensions):
            source = source_root / relative.with_suffix(extension)
            if source.is_file() and not source.samefile(twin):
                pairs.append((source, twin))
                break
    return pairs


class LosslessTwin(Identity):
    """generator=lossless_twin: the AI half is the source JPEG's lossless twin at `gen_size`."""

    kind = "lossless"  # what the twins are, for the messages
    source_extensions = JPEG_EXTENSIONS  # the photos that have twins

    def __init__(
        self,
        twins: str | None,
        source_root: str | None,
        gen_size: int | str = 512,
        name: str = "lossless_twin",
        license: str | None = None,
        max_side: int = DEFAULT_MAX_SIDE,
    ) -> None:
        super().__init__(gen_size, name, license, max_side)
        if not twins or not source_root:
            raise UserError(
                f"generator={name} needs generator.twins=DIR (the {self.kind} twins) and a source with a root"
            )
        self.twins_root = Path(to_absolute_path(str(Path(twins).expanduser())))
        self.source_root = Path(to_absolute_path(str(Path(source_root).expanduser())))
        self._twins: dict[str, Path] = {}
        self._sources: dict[str, Path] = {}  # gen_size=native: the source photo, whose block grid places the cut

    def plan(self, count: int, whole: int | None = None) -> str:
        images = counted(count, "control image")
        return f"{self.name}: {images} (the {self.kind} twin {self.at_gen_size()}; nothing generated)"

    def load(self) -> None:
        """Key every twin by the exact square the factory will decode from its source JPEG."""
        if not self.twins_root.is_dir():
            raise UserError(f"generator.twins={self.twins_root} is not a folder of {self.kind} twins")
        pairs = twin_pairs(self.source_root, self.twins_root, self.source_extensions)
        if not pairs:
            raise UserError(
                f"no {self.kind} twin ({', '.join(LOSSLESS_EXTENSIONS)}) in {self.twins_root} has a photo of the "
                f"same relative path ({', '.join(self.source_extensions)}; not the twin itself) under "
                f"{self.source_root}"
            )
        for source, twin in pairs:
            try:
                key = square_key(self.native_cut(source, source) if self.native else decoded_square(source))
                self._twins[key], self._sources[key] = twin, source
            except OSError:
                continue  # the factory skips it too, with its reason

    def prepare(self, square: Image.Image) -> Image.Image:
        twin = self.twin_square(square)
        return twin if self.native else to_square(twin, self.gen_size)

    def native_cut(self, photo: Path, source: Path) -> Image.Image:
        """`photo` cut as the factory cuts `source` at gen_size=native (aigen.native): on its JPEG block grid."""
        upright = decoded_upright(photo)
        return native_grid(upright.size, self.native_multiple, self.max_side, block_grid(source)).cut(upright)

    def twin_square(self, square: Image.Image) -> Image.Image:
        """The twin's centred square for this photo's square; a recorded skip when there is none or it does not fit."""
        key = square_key(square)
        twin = self._twins.get(key)
        if twin is None:
            raise SkipImage("prepare", f"no {self.kind} twin in {self.twins_root} matches this photo's pixels")
        twin_square = self.native_cut(twin, self._sources[key]) if self.native else decoded_square(twin)
        if not self.fits(twin_square.width, square.width):
            sides = f"{twin_square.size}; the photo's square, {square.size}"
            raise SkipImage("prepare", f"{self.kind} twin {twin} is {sides}")
        return twin_square

    @staticmethod
    def fits(twin_side: int, photo_side: int) -> bool:
        return twin_side == photo_side  # the same pixels before compression


class NativeTwin(LosslessTwin):
    """generator=native_twin: the AI half is a higher-resolution twin's centred square, resized once to `gen_size`
    (rendered natively, as a generator's image is born), never through the photo's own side."""

    kind = "higher-resolution"
    source_extensions = JPEG_EXTENSIONS + LOSSLESS_EXTENSIONS

    def __init__(
        self,
        twins: str | None,
        source_root: str | None,
        gen_size: int = 512,
        name: str = "native_twin",
        license: str | None = None,
    ) -> None:
        if gen_size == NATIVE:
            raise UserError(
                "generator.gen_size=native: native_twin renders the scene at a fixed gen_size, as a generator's "
                "image is born; on the photo's own grid use lossless_twin or identity"
            )
        super().__init__(twins, source_root, gen_size, name, license)

    @staticmethod
    def fits(twin_side: int, photo_side: int) -> bool:
        return twin_side > photo_side  # the scene the photo is a smaller copy of (of its own side: the photo itself)
