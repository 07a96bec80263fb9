"""Stage 3, what a run tells: started, batch done, finished, interrupted, failed. Observers receive these events:
the progress bar, the dataset record (dataset.json) and W&B; the loop itself knows none of them."""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm import tqdm

from aigen.dataset import read_record
from aigen.dataset.record import record_run, shards_not_finished, start_run
from aigen.errors import UserError
from aigen.tracking import WandbTracker
from aigen.words import counted

if TYPE_CHECKING:
    from aigen.factory.generation import BatchGenerator
    from aigen.factory.loop import LoopResult
    from aigen.factory.plan import Plan


def timestamp(seconds: float | None = None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(seconds))


def new_run(plan: Plan, started: float) -> dict:
    """A run's entry in dataset.json: which shard, since when, which process, and which selection it works on."""
    shard = plan.shard
    return {
        "run_id": uuid.uuid4().hex,
        "shard": [shard.index, shard.count],
        "started": timestamp(started),
        "pid": os.getpid(),
        "selection": plan.selection,
    }


def run_details(plan: Plan, batcher: BatchGenerator) -> dict:
    """What dataset.json keeps of a run besides its counts: photos ignored, generator notes, batch sizes."""
    return {
        "ignored": {why: vars(ignored) for why, ignored in plan.source.ignored.items()},
        "generator": plan.generator.stats(),
        "batch_size": {
            "start": plan.batch_size,
            "end": batcher.batch_size,
            "out_of_memory_at": batcher.out_of_memory_sizes,
        },
    }


@dataclass
class RunSummary:
    dataset_dir: Path
    selected: int
    already_done: int
    generated: int
    failed: int
    seconds: float
    upscaled: int = 0  # new pairs from photos smaller than `size`: a regime no pair processing can make fair

    @property
    def images_per_second(self) -> float:
        return self.generated / self.seconds if self.seconds > 0 else 0.0

    def line(self, finished: bool = True) -> str:
        reasons = f" (reasons in {self.dataset_dir}/failures*.jsonl)" if self.failed else ""
        upscaled = f" ({self.upscaled} from photos smaller than size, upscaled)" if self.upscaled else ""
        return (
            f"{'done' if finished else 'so far'}: {counted(self.generated, 'new pair')}{upscaled}, "
            f"{self.already_done} already there, "
            f"{self.failed} failed{reasons} ({self.images_per_second:.2f} images/s) -> {self.dataset_dir}"
        )


def failure_ratio_error(summary: RunSummary, max_failure_ratio: float) -> UserError | None:
    """Judge the selection as a whole, pairs of earlier runs included: a resume that only meets the photos that
    failed before is not a failure of its own."""
    usable = summary.generated + summary.already_done
    considered = usable + summary.failed
    if summary.failed and usable == 0:
        return UserError(
            f"none of the {considered} photos could be used; reasons in {summary.dataset_dir}/failures*.jsonl"
        )
    if considered and summary.failed / considered > max_failure_ratio:
        return UserError(
            f"{summary.failed} of {considered} photos failed, above max_failure_ratio={max_failure_ratio}; "
            f"reasons in {summary.dataset_dir}/failures*.jsonl"
        )
    return None


@dataclass
class Outcome:
    """How a run that got through its loop ended, as the observers record it."""

    summary: RunSummary
    loop: LoopResult
    signal_number: int | None  # the signal that interrupted it, if any
    failure: UserError | None  # too many photos failed (the run still recorded what it made)
    gallery: list[dict]
    details: dict = field(default_factory=dict)  # more facts for dataset.json (batch sizes, generator stats, ...)


class Observer:
    """Receives a run's events; every event does nothing unless an observer says otherwise."""

    def started(self, run: dict, todo: int) -> None: ...

    def batch_done(self, loop: LoopResult, photos: int, seconds: float) -> None: ...

    def finished(self, outcome: Outcome) -> None: ...

    def failed(self, error: BaseException) -> None: ...


class RunEvents(Observer):
    """Tells every observer, in order."""

    def __init__(self, observers: list[Observer]) -> None:
        self.observers = observers

    def started(self, run: dict, todo: int) -> None:
        for observer in self.observers:
            observer.started(run, todo)

    def batch_done(self, loop: LoopResult, photos: int, seconds: float) -> None:
        for observer in self.observers:
            observer.batch_done(loop, photos, seconds)

    def finished(self, outcome: Outcome) -> None:
        for observer in self.observers:
            observer.finished(outcome)

    def failed(self, error: BaseException) -> None:
        for observer in self.observers:
            observer.failed(error)


class ProgressBar(Observer):
    def started(self, run: dict, todo: int) -> None:
        self.bar = tqdm(total=todo, unit="pair", desc="pairs", dynamic_ncols=True, disable=None)

    def batch_done(self, loop: LoopResult, photos: int, seconds: float) -> None:
        self.bar.update(photos)
        self.bar.set_postfix(failed=loop.failed)

    def finished(self, outcome: Outcome) -> None:
        self.bar.close()

    def failed(self, error: BaseException) -> None:
        if hasattr(self, "bar"):
            self.bar.close()


class DatasetRecord(Observer):
    """The run in dataset.json: `running` from its start (so a killed run shows as such), then its results."""

    def __init__(self, dataset_dir: Path, run: dict) -> None:
        self.dataset_dir = dataset_dir
        self.run = run

    def started(self, run: dict, todo: int) -> None:
        start_run(self.dataset_dir, run)

    def failed(self, error: BaseException) -> None:
        with contextlib.suppress(OSError):  # best effort: the disk may be full
            record_run(self.dataset_dir, self.run | {"state": "failed", "finished": timestamp(), "error": repr(error)})

    def finished(self, outcome: Outcome) -> None:
        summary, loop = outcome.summary, outcome.loop
        record_run(
            self.dataset_dir,
            self.run
            | {
                "state": "interrupted" if outcome.signal_number else "finished",
                "finished": timestamp(),
                "selected": summary.selected,
                "already_done": summary.already_done,
                "generated": loop.generated,
                "failed": loop.failed,
                "upscaled": loop.upscaled,
                **outcome.details,
                "interrupted": bool(outcome.signal_number),
                "images_per_second": round(summary.images_per_second, 4),
                "seconds_per_stage": {stage: round(seconds, 3) for stage, seconds in loop.stage_seconds.items()},
            },
        )


class WandbRun(Observer):
    """One W&B run per dataset job: config, progress, the gallery, and the dataset artifact once every shard of
    this selection has finished (dataset.json says which)."""

    def __init__(self, tracker: WandbTracker, config: dict, dataset_dir: Path, run_dir: Path, group: str | None):
        self.tracker = tracker
        self.config = config
        self.dataset_dir = dataset_dir
        self.run_dir = run_dir
        self.group = group

    def started(self, run: dict, todo: int) -> None:
        self.selection = run["selection"]
        self.tracker.start(self.config, self.dataset_dir, self.run_dir, self.group)

    def batch_done(self, loop: LoopResult, photos: int, seconds: float) -> None:
        self.tracker.progress(
            {"pairs_done": loop.generated, "failed": loop.failed, "images_per_second": loop.generated / seconds}
            | {f"seconds/{stage}": spent for stage, spent in loop.stage_seconds.items()}
        )

    def failed(self, error: BaseException) -> None:
        self.tracker.abort()

    def finished(self, outcome: Outcome) -> None:
        record = read_record(self.dataset_dir)
        if outcome.failure:
            self.tracker.finish(record["counts"], self.dataset_dir, outcome.gallery, failed=True, log_dataset=False)
            return
        waiting = shards_not_finished(record, self.selection)
        totals = record["counts"] | {
            "generated": outcome.loop.generated,
            "images_per_second": outcome.summary.images_per_second,
        }
        interrupted = bool(outcome.signal_number)
        logged = self.tracker.finish(
            totals, self.dataset_dir, outcome.gallery, failed=interrupted, log_dataset=not waiting
        )
        if logged:
            print(f"dataset artifact: waiting for shard(s) {waiting}" if waiting else "dataset artifact: logged")


def interrupted_line(signal_number: int) -> str:
    return f"interrupted by {signal.Signals(signal_number).name}: rerun the same command to resume"
