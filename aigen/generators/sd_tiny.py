"""`sd_tiny`: the SD image-variation pipeline with tiny RANDOM weights, for smoke tests and the offline demo.

Built, saved and loaded back like every tiny twin (aigen.generators.tiny): through exactly the same
`from_pretrained` code as the real model. Its images are noise-like, not photos.
"""

from __future__ import annotations

from aigen.generators.sd import SDImageVariation

TINY_MODEL_ID = "aigen/sd-tiny-random"
TINY_VERSION = "v1"


class TinySDImageVariation(SDImageVariation):
    """The `sd` generator on the tiny random-weight pipeline from the local cache."""

    def __init__(self, cache_dir: str, **settings) -> None:
        settings.setdefault("model", TINY_MODEL_ID)
        settings.setdefault("revision", TINY_VERSION)
        super().__init__(tiny="sd", cache_dir=cache_dir, **settings)
