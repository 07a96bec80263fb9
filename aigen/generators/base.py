"""What every generator gives the factory: a description for the manifest and one variation per photo."""

from __future__ import annotations

from dataclasses import dataclass, field

from PIL import Image

from aigen.errors import SkipImage
from aigen.native import DEFAULT_MAX_SIDE, NATIVE
from aigen.words import counted


@dataclass(frozen=True)
class Variation:
    """A generated image and the per-image facts to record with it (e.g. an API request id)."""

    image: Image.Image
    info: dict = field(default_factory=dict)


class Generator:
    """The interface the factory drives, with the defaults most generators share."""

    name: str
    gen_size: int | str  # the side of the images it returns (the original half passes through it too: aigen.pairing)
    # or `native`: the photo's own side (aigen.native), cropped to `native_multiple` (known once loaded), at most
    # `max_side`
    max_side: int = DEFAULT_MAX_SIDE
    native_multiple: int | None = None
    input_side: int | None = None  # the side of the square photo it needs; None = full resolution
    seeded: bool = True  # whether the per-image seeds decide its pixels (False for APIs that take no seed)
    paid: bool = False  # whether images cost money: `plan` then gets the count for the whole dataset (all shards)
    license: str | None = None  # the model's licence as its config states it (`generator.license`), for the card

    @property
    def native(self) -> bool:
        return self.gen_size == NATIVE

    def native_tags(self) -> list[str]:
        """The dataset dir name's part for gen_size=native: its datasets never meet a fixed gen_size's."""
        return [f"native{self.max_side}"] if self.native else []

    def describe(self) -> dict:
        """The settings that decide the output (model, revision, steps, ...): fingerprinted and recorded per pair.
        Raises UserError for a bad setting: the factory calls it before any work."""
        raise NotImplementedError

    def dir_tags(self) -> list[str]:
        """Short parts of the default dataset dir name for the settings that decide the pixels (e.g. `g3.0`)."""
        return []

    def plan(self, count: int, whole: int | None = None) -> str:
        """One line saying what generating `count` images will do; `whole` is the count still missing over all
        shards (None when not computed). Paid APIs print the cost and refuse a `whole` over budget."""
        return f"{self.name}: {counted(count, 'image')}"

    def default_batch_size(self) -> int:
        """What `batch_size=auto` means for this generator on this machine."""
        return 1

    def load(self) -> None:
        """Heavy set-up (model weights, credentials), done only when there is work to do."""

    def prepare(self, square: Image.Image) -> object:
        """One square photo as this generator's input (a tensor, PNG bytes, ...); runs on worker threads."""
        return square

    def generate(self, inputs: list, seeds: list[int]) -> list[Variation | SkipImage]:
        """One result per prepared input, in order; a SkipImage says why that photo got no variation."""
        raise NotImplementedError

    def stats(self) -> dict:
        """Counts to record with the run in dataset.json (e.g. requests that may have been billed)."""
        return {}
