"""What every generator gives the factory: a description for the manifest and one variation per photo."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from PIL import Image

from aigen.errors import SkipImage


@dataclass(frozen=True)
class Variation:
    """A generated image and the per-image facts to record with it (e.g. an API request id)."""

    image: Image.Image
    info: dict = field(default_factory=dict)


class Generator(Protocol):
    name: str
    input_side: int | None  # the side of the square photo it needs; None = full resolution

    def describe(self) -> dict:
        """The settings that decide the output (model, revision, steps, ...): fingerprinted and recorded per pair."""

    def plan(self, count: int) -> str:
        """One line saying what generating `count` images will do (and, for paid APIs, cost; refused over budget)."""

    def default_batch_size(self) -> int:
        """What `batch_size=auto` means for this generator on this machine."""

    def load(self) -> None:
        """Heavy set-up (model weights, credentials), done only when there is work to do."""

    def prepare(self, square: Image.Image) -> object:
        """One square photo as this generator's input (a tensor, PNG bytes, ...); runs on worker threads."""

    def generate(self, inputs: list, seeds: list[int]) -> list[Variation | SkipImage]:
        """One result per prepared input, in order; a SkipImage says why that photo got no variation."""
