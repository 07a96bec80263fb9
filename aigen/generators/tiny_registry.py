"""The registry of tiny random-weight twins (`generator.tiny=<name>`): their names, the (model, revision) each
records, and the folder each is saved to once in the local cache.

Kept apart from the builders (aigen.generators.tiny, tiny_flux, tiny_modern), which import diffusers and
transformers: a generator checks `generator.tiny` against this registry before any work, so a mistake in the
settings is reported without waiting seconds for those imports; a builder is imported when its twin is built.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from pathlib import Path

from aigen.pretrained import cached_build


def built_in(module: str, builder: str) -> Callable[[Path], None]:
    """`aigen.generators.<module>.<builder>`, imported when it runs."""

    def build(folder: Path) -> None:
        getattr(importlib.import_module(f"aigen.generators.{module}"), builder)(folder)

    return build


# The twins, by the module that builds them (`build_<name>`).
TWINS = {
    "tiny": ("sd", "vae", "img2img", "inpaint", "unclip", "kandinsky"),
    "tiny_flux": ("flux_fill", "flux_kontext", "flux_redux", "flux2_klein"),
    "tiny_modern": ("sd35", "sd35_inpaint", "sdxl", "sdxl_refiner", "sdxl_inpaint", "zimage", "qwen_edit"),
}

# name -> (the folder's name in the cache, its builder). Bump a version when a builder changes its weights.
TINY_MODELS: dict[str, tuple[str, Callable[[Path], None]]] = {
    name: (f"{name.replace('_', '-')}-tiny-random-v1", built_in(module, f"build_{name}"))
    for module, names in TWINS.items()
    for name in names
}


def tiny_model_id(name: str) -> tuple[str, str]:
    """The (model, revision) a tiny twin records: its folder's name read as `aigen/<name>` at `v<N>`."""
    stem, _, revision = TINY_MODELS[name][0].rpartition("-")
    return f"aigen/{stem}", revision


def ensure_tiny_model(name: str, cache_dir: str | os.PathLike) -> Path:
    """The saved tiny model `name`, built on first use."""
    folder_name, build = TINY_MODELS[name]
    return cached_build(cache_dir, folder_name, build)
