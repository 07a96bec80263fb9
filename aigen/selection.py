"""Which photos a run handles: a seeded sample of the source, this shard's part of it, minus finished pairs."""

from __future__ import annotations

from aigen.seeding import sample_key
from aigen.sources import SourceItem


def sample(items: list[SourceItem], limit: int, sample_seed: int) -> list[SourceItem]:
    """A seeded random sample of `limit` photos (0 = all), sorted by id.

    The sample of N is the first N ids by a hash key, so a larger limit extends a smaller one, and it does not
    depend on the generation seed: a seed sweep uses the same photos.
    """
    if limit:
        items = sorted(items, key=lambda item: sample_key(sample_seed, item.id))[:limit]
    return sorted(items, key=lambda item: item.id)


def pending(items: list[SourceItem], done: dict[str, dict]) -> list[SourceItem]:
    """Photos without a finished pair of the same source file: a changed photo under a known id is redone."""
    return [item for item in items if done.get(item.id, {}).get("source_sha256") != item.sha256]
