"""Stage 1, the plan: the config becomes objects, a dataset dir, the photos to do and what they cost.

It only reads: settings are checked, the dataset dir's config is compared, photos are selected and hashed, and the
generator prints its plan (a paid one refuses a budget it would exceed), all before anything is written.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig

from aigen import identity
from aigen.dataset import Shard, done_rows
from aigen.dataset.record import AnotherConfigError, check_record
from aigen.devices import check_available, select_gpu
from aigen.errors import UserError
from aigen.generators.base import Generator
from aigen.hash_cache import HashCache
from aigen.pairing import PairProcessor
from aigen.preprocess import ImageLoader
from aigen.selection import pending, sample
from aigen.settings import check_settings
from aigen.sources import Source, SourceItem, with_hashes
from aigen.tracking import WandbTracker
from aigen.words import counted

log = logging.getLogger(__name__)


def build(node: DictConfig):
    """`instantiate`, except that a UserError raised by a constructor stays a one-line error."""
    try:
        return instantiate(node)
    except InstantiationException as error:
        if isinstance(error.__cause__, UserError):
            raise error.__cause__ from None
        raise


def check_native(generator: Generator, processor: PairProcessor) -> None:
    """gen_size=native: both halves are cut from the photo's own square (aigen.native), never below `size`."""
    if not generator.native:
        return
    if processor.pairing.geometry == "direct":
        raise UserError(
            "pairing.geometry=direct with generator.gen_size=native: at native resolution both halves share one "
            "grid and one path to `size`; use pairing.geometry=symmetric"
        )
    if generator.max_side < processor.size:
        raise UserError(f"generator.max_side={generator.max_side} is below size={processor.size}: never upscaled")


def selection_key(items: list[SourceItem]) -> str:
    """Which photos a round of runs selected (over all shards): a shard that finished another selection is not
    done with this one."""
    return hashlib.sha256("\n".join(sorted(item.id for item in items)).encode()).hexdigest()[:16]


@dataclass
class Plan:
    """Everything a run needs, decided before it writes anything."""

    shard: Shard
    source: Source
    generator: Generator
    loader: ImageLoader
    processor: PairProcessor
    content: dict  # what decides the bytes (fingerprinted in dataset.json)
    batch_size: int
    tracker: WandbTracker | None
    dataset_dir: Path
    named_by_default: bool  # no dataset_dir given: aigen.identity named it
    source_ids: set[str]  # this shard's photos still in the source (failures of others are dropped)
    items: list[SourceItem]  # this shard's part of the selection, with source hashes
    todo: list[SourceItem]  # those without a pair of the same photo yet
    selection: str  # selection_key of the whole selection
    hashes: HashCache  # the source hashes, saved into the dataset dir once the run starts

    @property
    def dry_run(self) -> bool:
        return bool(getattr(self.generator, "dry_run", False))


def make_plan(cfg: DictConfig, source: Source | None = None, generator: Generator | None = None) -> Plan:
    """The plan of one run of `cfg`; `source` and `generator` objects, when given, replace their config nodes."""
    # 1. Check every setting and build the stages; refuse a dataset dir made by another config (read-only).
    shard = check_settings(cfg)
    source = source or build(cfg.source)
    generator = generator or build(cfg.generator)
    loader: ImageLoader = build(cfg.loader)
    processor = PairProcessor(build(cfg.pairing), build(cfg.jpeg), cfg.size, generator.gen_size)
    check_native(generator, processor)
    content = identity.content_config(cfg, source, generator)
    check_available(getattr(generator, "device", "cpu"), "generator.device")  # controls, paid APIs: no device
    select_gpu(shard)  # before batch_size=auto reads the free memory of "the" GPU
    batch_size = generator.default_batch_size() if cfg.batch_size == "auto" else cfg.batch_size
    tracker: WandbTracker | None = build(cfg.logger) if cfg.get("logger") else None
    named_by_default = not cfg.get("dataset_dir")
    dataset_dir = identity.dataset_dir(cfg, source, generator)
    try:
        check_record(dataset_dir, content, shard.count)
    except AnotherConfigError:
        if not named_by_default:
            raise
        dataset_dir = identity.dataset_dir(cfg, source, generator)  # another config took the name meanwhile
        check_record(dataset_dir, content, shard.count)
    cfg.dataset_dir = str(dataset_dir)  # recorded as it was resolved
    log.info("source %s, generator %s", type(source).__name__, type(generator).__name__)

    # 2. Choose the photos (a seeded sample, this shard's part) and see which pairs are done, by source content.
    source.ignored.clear()  # a second plan of one source (after a lost race) counts its files once
    everything = source.items()
    if source.ignored:
        print(source.ignored_line())
    selection = sample(everything, cfg.limit, cfg.sample_seed)
    # A paid generator's budget covers the whole dataset, so then every shard hashes the whole selection.
    budget_over_all = generator.paid and shard.count > 1
    hashes = HashCache(dataset_dir, shard)  # read now, written when the run really starts
    to_hash = selection if budget_over_all else [i for i in selection if shard.owns(i.id)]
    hashed = with_hashes(to_hash, cfg.workers, hashes)
    items = [item for item in hashed if shard.owns(item.id)]
    done = done_rows(dataset_dir)
    todo = pending(items, done)
    whole = len(pending(hashed, done)) if budget_over_all or shard.count == 1 else None
    print(f"{counted(len(items), 'photo')} selected, {len(items) - len(todo)} already done, {len(todo)} to generate")
    print(generator.plan(len(todo), whole))
    return Plan(
        shard=shard,
        source=source,
        generator=generator,
        loader=loader,
        processor=processor,
        content=content,
        batch_size=batch_size,
        tracker=tracker,
        dataset_dir=dataset_dir,
        named_by_default=named_by_default,
        source_ids={item.id for item in everything if shard.owns(item.id)},
        items=items,
        todo=todo,
        selection=selection_key(selection),
        hashes=hashes,
    )
