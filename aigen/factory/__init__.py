"""The dataset factory: source photos -> pairs -> a resumable dataset dir, in stages that each have a module:
plan.py (config -> objects and the photos to do; writes nothing), prepare.py (photos decoded ahead), loop.py
(batches through the generator to the writer), generation.py (a batch that survives GPU errors) and events.py
(what observers hear: the progress bar, dataset.json, W&B)."""

from __future__ import annotations

import errno
import time
from dataclasses import replace
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from aigen.dataset import MANIFEST, done_rows, read_rows
from aigen.dataset.record import AnotherConfigError, create_record
from aigen.dataset.writer import PairWriter
from aigen.errors import Interrupted, UserError
from aigen.factory.events import (
    DatasetRecord,
    Outcome,
    ProgressBar,
    RunEvents,
    RunSummary,
    WandbRun,
    failure_ratio_error,
    interrupted_line,
    new_run,
    run_details,
)
from aigen.factory.generation import BatchGenerator, CircuitBreaker
from aigen.factory.loop import StopRequest, generate_pairs
from aigen.factory.plan import Plan, build, make_plan
from aigen.factory.prepare import Preparer
from aigen.gallery import gallery_rows, write_preview
from aigen.generators.base import Generator
from aigen.selection import pending
from aigen.sources import Source
from aigen.tracking import redact

__all__ = ["Plan", "RunSummary", "build", "make_dataset", "make_plan"]


def disk_full(dataset_dir: Path) -> UserError:
    return UserError(f"disk full while writing {dataset_dir}: free some space and rerun to resume")


def say_generator_counts(generator: Generator) -> None:
    """The generator's own counts (refusals, requests that may have been billed), however the run ends."""
    for note, number in generator.stats().items():
        if number:
            print(f"{note.replace('_', ' ')}: {number}")


def open_record(cfg: DictConfig, plan: Plan) -> tuple[Plan, dict]:
    """Create (or join) the dataset dir's record: the run starts here. When another config's run has taken the
    default name since the plan (a sweep's jobs starting together), plan again: the name is versioned beside it."""
    config = redact(OmegaConf.to_container(cfg, resolve=True))
    try:
        create_record(plan.dataset_dir, plan.content, config, plan.shard.count)
    except AnotherConfigError:
        if not plan.named_by_default:
            raise
        cfg.dataset_dir = None
        plan = replace(make_plan(cfg, plan.source, plan.generator), batch_size=plan.batch_size)  # weights loaded now
        config = redact(OmegaConf.to_container(cfg, resolve=True))
        create_record(plan.dataset_dir, plan.content, config, plan.shard.count)
    return plan, config


def make_dataset(
    cfg: DictConfig,
    run_dir: Path | None = None,
    group: str | None = None,
    source: Source | None = None,
    generator: Generator | None = None,
) -> RunSummary:
    """Make (or resume) one dataset dir. `run_dir` receives preview.png and W&B files; `group` groups W&B runs;
    `source` and `generator` objects replace their config nodes (tests hand in their own)."""
    # 1. The plan: settings, dataset dir, photos, cost. Nothing is written, so a dry run leaves no trace.
    plan = make_plan(cfg, source, generator)
    if plan.dry_run:
        print("dry run: nothing was sent or written")
        return RunSummary(plan.dataset_dir, len(plan.items), len(plan.items) - len(plan.todo), 0, 0, 0.0)

    # 2. Load the generator, then open the dataset dir: the run really starts here.
    if plan.todo:
        plan.generator.load()
    plan, config = open_record(cfg, plan)
    plan.hashes.save()
    started = time.time()
    run = new_run(plan, started)
    events = RunEvents([DatasetRecord(plan.dataset_dir, run)])
    if plan.tracker:  # the shards of one dataset share a W&B group, unless a sweep or the config names one
        group = group or (plan.dataset_dir.name if plan.shard.count > 1 else None)
        events.observers.append(WandbRun(plan.tracker, config, plan.dataset_dir, run_dir or Path.cwd(), group))
    events.observers.append(ProgressBar())

    # 3. The loop, under the shard's writer lock; a failed run is recorded as failed once the writer has closed,
    #    so that its counts include every pair the writer still had to write.
    batcher = BatchGenerator(plan.generator, plan.batch_size, CircuitBreaker(cfg.max_consecutive_failures))
    loop_started = False
    try:
        with PairWriter(plan.dataset_dir, plan.shard, plan.source_ids) as writer, StopRequest() as stop:
            # Again under the lock: another run may have finished some.
            todo = pending(plan.items, done_rows(plan.dataset_dir))
            preparer = Preparer(plan.loader, plan.generator, plan.processor, cfg.workers)
            try:
                loop_started = True
                events.started(run, len(todo))
                loop = generate_pairs(todo, preparer, batcher, writer, cfg.seed, stop, events)
            finally:
                preparer.close()
    except BaseException as error:
        if loop_started:
            events.failed(error)
            say_generator_counts(plan.generator)  # e.g. requests that timed out and may have been billed
        if isinstance(error, OSError) and error.errno == errno.ENOSPC:  # the loop or the writer's compaction
            raise disk_full(plan.dataset_dir) from None
        raise

    # 4. Record how it ended, show the gallery, say what happened.
    already_done = len(plan.items) - len(todo)
    summary = RunSummary(
        plan.dataset_dir,
        len(plan.items),
        already_done,
        loop.generated,
        loop.failed,
        time.time() - started,
        loop.upscaled,
    )
    gallery = gallery_rows(read_rows(plan.dataset_dir, MANIFEST), cfg.gallery_size)
    failure = failure_ratio_error(summary, cfg.max_failure_ratio)
    events.finished(Outcome(summary, loop, stop.signal_number, failure, gallery, run_details(plan, batcher)))
    preview = write_preview(plan.dataset_dir, gallery, run_dir) if run_dir else None
    if failure:
        say_generator_counts(plan.generator)
        raise failure
    if stop.signal_number:
        print(interrupted_line(stop.signal_number))
    print(summary.line(finished=not stop.signal_number))
    say_generator_counts(plan.generator)
    if preview:
        print(f"preview: {preview}")
    if stop.signal_number:
        raise Interrupted(stop.signal_number)
    return summary
