"""Robustness perturbations applied at evaluation, identically to both classes: JPEG re-compression, downscaling
and Gaussian blur, the post-processing a photo meets online (as in UnivFD, B-Free, SPAI, "Aligned Datasets").

Names as in `perturb=[jpeg75,downscale0.5,blur1]`: the kind, then its strength. `none` is the clean baseline.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

from PIL import Image, ImageFilter

from aigen.errors import UserError

NAME = re.compile(r"(jpeg|downscale|blur)(\d+(?:\.\d+)?)")
# Stronger first on a plot's x-axis: lower JPEG quality, smaller downscale factor, larger blur sigma.
SEVERITY = {"jpeg": lambda q: -q, "downscale": lambda factor: -factor, "blur": lambda sigma: sigma}
STRENGTH_LABELS = {"jpeg": "JPEG quality", "downscale": "downscale factor", "blur": "blur sigma"}


@dataclass(frozen=True)
class Perturbation:
    """One deterministic perturbation: the same function for every image, whatever its class."""

    kind: str  # none | jpeg | downscale | blur
    strength: float = 0.0

    @property
    def name(self) -> str:
        return "none" if self.kind == "none" else f"{self.kind}{self.strength:g}"

    def __call__(self, image: Image.Image) -> Image.Image:
        if self.kind == "jpeg":
            buffer = io.BytesIO()
            image.save(buffer, format="JPEG", quality=int(self.strength))
            return Image.open(buffer).convert("RGB")
        if self.kind == "downscale":
            size = (max(1, round(image.width * self.strength)), max(1, round(image.height * self.strength)))
            return image.resize(size, Image.Resampling.BICUBIC, reducing_gap=None)
        if self.kind == "blur":
            return image.filter(ImageFilter.GaussianBlur(radius=self.strength))
        return image


CLEAN = Perturbation("none")


def parse_perturbation(name: str) -> Perturbation:
    """`jpeg<quality 1..100>`, `downscale<factor in (0, 1)>`, `blur<sigma > 0>` or `none`; anything else a UserError."""
    if name == "none":
        return CLEAN
    match = NAME.fullmatch(str(name))
    if not match:
        raise UserError(f"perturb: {name!r} is not jpeg<quality>, downscale<factor> or blur<sigma> (e.g. jpeg75)")
    kind, strength = match.group(1), float(match.group(2))
    valid = {
        "jpeg": strength.is_integer() and 1 <= strength <= 100,
        "downscale": 0 < strength < 1,
        "blur": strength > 0,
    }
    if not valid[kind]:
        limits = {"jpeg": "a whole quality in 1..100", "downscale": "a factor in (0, 1)", "blur": "a sigma above 0"}
        raise UserError(f"perturb: {name!r} needs {limits[kind]}")
    return Perturbation(kind, strength)


def parse_perturbations(names: list[str] | None) -> list[Perturbation]:
    """The clean baseline, then each named perturbation once, in the order given."""
    chosen = [CLEAN]
    for name in names or []:
        perturbation = parse_perturbation(str(name))
        if perturbation not in chosen:
            chosen.append(perturbation)
    return chosen
