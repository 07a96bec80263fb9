"""The dataset factory: source photos -> square originals + AI variations -> a resumable paired dataset."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import signal
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from aigen import identity
from aigen.dataset_record import check_record, create_record, record_run, shards_not_finished, start_run
from aigen.devices import select_gpu
from aigen.errors import Interrupted, RunStopped, SkipImage, UserError
from aigen.gallery import gallery_rows, write_preview
from aigen.generation import BatchGenerator, CircuitBreaker
from aigen.generators.base import Generator
from aigen.hash_cache import HashCache
from aigen.identity import content_config
from aigen.pairing import JpegHistory, Pairing, ai_square, original_square, read_jpeg_history
from aigen.preprocess import ImageLoader, JpegSettings
from aigen.records import MANIFEST, read_rows
from aigen.seeding import per_image_seed
from aigen.selection import pending, sample
from aigen.settings import check_settings
from aigen.sources import SourceItem, with_hashes
from aigen.tracking import WandbTracker, redact
from aigen.workers import lower_priority
from aigen.writer import PairWriter, done_rows

log = logging.getLogger(__name__)


@dataclass
class Prepared:
    """A source photo ready for a generator: the square original, already encoded, the generator's input, and
    the source's JPEG history when the AI half is to be given it."""

    item: SourceItem
    original_jpeg: bytes = b""
    model_input: object = None
    history: JpegHistory | None = None
    skip: SkipImage | None = None


@dataclass
class RunSummary:
    dataset_dir: Path
    selected: int
    already_done: int
    generated: int
    failed: int
    seconds: float

    @property
    def images_per_second(self) -> float:
        return self.generated / self.seconds if self.seconds > 0 else 0.0

    def line(self, finished: bool = True) -> str:
        reasons = f" (reasons in {self.dataset_dir}/failures*.jsonl)" if self.failed else ""
        return (
            f"{'done' if finished else 'so far'}: {self.generated} new pairs, {self.already_done} already there, "
            f"{self.failed} failed{reasons} ({self.images_per_second:.2f} images/s) -> {self.dataset_dir}"
        )


def build(node: DictConfig):
    """`instantiate`, except that a UserError raised by a constructor stays a one-line error."""
    try:
        return instantiate(node)
    except InstantiationException as error:
        if isinstance(error.__cause__, UserError):
            raise error.__cause__ from None
        raise


def batches(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class Preparer:
    """Decodes and crops photos on worker threads, a few batches ahead, so the generator never waits for I/O.
    The original half takes the path `pairing` chooses (aigen.pairing), and is JPEG-encoded here too."""

    def __init__(
        self,
        loader: ImageLoader,
        size: int,
        generator: Generator,
        jpeg: JpegSettings,
        workers: int,
        pairing: Pairing,
        batches_ahead: int = 2,
    ) -> None:
        self.loader = loader
        self.size = size
        self.generator = generator
        self.jpeg = jpeg
        self.pairing = pairing
        # Decode just large enough for every use, unless the generator needs the full resolution (None) or the
        # source's JPEG history is read (its block grid is counted in full-resolution pixels).
        needs_full = generator.input_side is None or pairing.jpeg_history == "matched"
        self.decode_side = None if needs_full else max(size, generator.input_side, generator.gen_size)
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="prepare", initializer=lower_priority)
        self.batches_ahead = batches_ahead

    def prepare(self, item: SourceItem) -> Prepared:
        try:
            file = item.photo_file()
            photo = self.loader(file, self.decode_side)
            model_input = self.generator.prepare(photo.condition_square())
        except SkipImage as skip:
            return Prepared(item, skip=skip)
        original = original_square(photo, self.size, self.generator.gen_size, self.pairing.geometry)
        history = read_jpeg_history(file, photo.square_box()) if self.pairing.jpeg_history == "matched" else None
        return Prepared(item, original_jpeg=self.jpeg.encode(original), model_input=model_input, history=history)

    def stream(self, items: list[SourceItem], batch_size: int) -> Iterator[list[Prepared]]:
        pending: deque[list[Future]] = deque()
        for batch in batches(items, batch_size):
            pending.append([self.pool.submit(self.prepare, item) for item in batch])
            if len(pending) > self.batches_ahead:
                yield [future.result() for future in pending.popleft()]
        while pending:
            yield [future.result() for future in pending.popleft()]

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


class StopRequest:
    """SIGINT/SIGTERM ask the run to stop after the current batch; a second signal stops it at once."""

    def __init__(self) -> None:
        self.signal_number: int | None = None
        self._previous: dict[int, object] = {}

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for number in (signal.SIGINT, signal.SIGTERM):
                self._previous[number] = signal.signal(number, self._handle)
        return self

    def _handle(self, number: int, frame) -> None:
        self.signal_number = number
        signal.signal(number, self._previous[number])
        print(f"\n{signal.Signals(number).name}: stopping after the current batch (again to stop now)", file=sys.stderr)

    def __exit__(self, *exc_info) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)


@dataclass
class BatchResult:
    written: int
    failed: int
    generate_seconds: float
    write_seconds: float


def write_batch(writer: PairWriter, batcher: BatchGenerator, prepared: list[Prepared], cfg: DictConfig) -> BatchResult:
    """Generate one batch and write its pairs; skipped photos are recorded with their reason. When the generator
    stops the run (RunStopped), the images it did return are written before the error goes on."""
    generator = batcher.generator
    for p in prepared:
        if p.skip:
            writer.record_failure(p.item, p.skip.stage, p.skip.reason)
    ready = [p for p in prepared if not p.skip]
    seeds = [per_image_seed(cfg.seed, p.item.id) for p in ready]
    started = time.perf_counter()
    stopped: RunStopped | None = None
    try:
        results = batcher([p.model_input for p in ready], seeds) if ready else []
    except RunStopped as error:
        stopped, results = error, error.results
    generated = time.perf_counter()
    written = failed = 0
    description = generator.describe()
    for p, seed, result in zip(ready, seeds, results, strict=True):
        if result is None:  # not sent: the run stopped first
            continue
        if isinstance(result, SkipImage):
            writer.record_failure(p.item, result.stage, result.reason)
            failed += 1
            continue
        row = {
            "id": p.item.id,
            "source": p.item.source,
            "source_sha256": p.item.sha256,
            "category": p.item.category,
            **description,
            **result.info,
            "size": cfg.size,
        }
        if generator.seeded:
            row["seed"] = seed
        writer.write_pair(row, p.original_jpeg, ai_square(result.image, cfg.size, p.history))
        written += 1
    if stopped:
        writer.flush()
        raise UserError(str(stopped))
    failed += len(prepared) - len(ready)
    return BatchResult(written, failed, generated - started, time.perf_counter() - generated)


def check_failure_ratio(summary: RunSummary, max_failure_ratio: float) -> None:
    """Judge the selection as a whole, pairs of earlier runs included: a resume that only meets the photos that
    failed before is not a failure of its own."""
    usable = summary.generated + summary.already_done
    considered = usable + summary.failed
    if summary.failed and usable == 0:
        raise UserError(
            f"none of the {considered} photos could be used; reasons in {summary.dataset_dir}/failures*.jsonl"
        )
    if considered and summary.failed / considered > max_failure_ratio:
        raise UserError(
            f"{summary.failed} of {considered} photos failed, above max_failure_ratio={max_failure_ratio}; "
            f"reasons in {summary.dataset_dir}/failures*.jsonl"
        )


@dataclass
class LoopResult:
    generated: int = 0
    failed: int = 0
    stage_seconds: dict[str, float] = field(default_factory=lambda: {"load": 0.0, "generate": 0.0, "write": 0.0})


def generate_pairs(
    todo: list[SourceItem],
    preparer: Preparer,
    batcher: BatchGenerator,
    writer: PairWriter,
    cfg: DictConfig,
    batch_size: int,
    stop: StopRequest,
    tracker: WandbTracker | None,
) -> LoopResult:
    """Batch by batch until done or asked to stop; the next batches are decoded meanwhile."""
    result = LoopResult()
    started = time.time()
    progress = tqdm(total=len(todo), unit="pair", desc="pairs", dynamic_ncols=True)
    try:
        waited = time.perf_counter()
        for prepared in preparer.stream(todo, batch_size):
            result.stage_seconds["load"] += time.perf_counter() - waited
            batch = write_batch(writer, batcher, prepared, cfg)
            result.generated += batch.written
            result.failed += batch.failed
            result.stage_seconds["generate"] += batch.generate_seconds
            result.stage_seconds["write"] += batch.write_seconds
            progress.update(len(prepared))
            progress.set_postfix(failed=result.failed)
            if tracker:
                tracker.progress(
                    {
                        "pairs_done": result.generated,
                        "failed": result.failed,
                        "images_per_second": result.generated / (time.time() - started),
                    }
                    | {f"seconds/{stage}": seconds for stage, seconds in result.stage_seconds.items()}
                )
            if stop.signal_number:
                break
            waited = time.perf_counter()
        writer.flush()
    finally:
        progress.close()
    return result


def disk_full(dataset_dir: Path) -> UserError:
    return UserError(f"disk full while writing {dataset_dir}: free some space and rerun to resume")


def timestamp(seconds: float | None = None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(seconds))


def make_dataset(cfg: DictConfig, run_dir: Path | None = None, group: str | None = None) -> RunSummary:
    """Make (or resume) one dataset dir. `run_dir` receives preview.png and W&B files; `group` groups W&B runs.

    Nothing is written before the run really starts: settings, the dataset dir's config, the plan (and its cost)
    and loading the generator all come first, so a dry run or a failed start leaves no trace.
    """
    # 1. Check every setting and build the stages; refuse a dataset dir made by another config (read-only).
    shard = check_settings(cfg)
    source = build(cfg.source)
    generator: Generator = build(cfg.generator)
    loader: ImageLoader = build(cfg.loader)
    jpeg = JpegSettings(cfg.jpeg.quality, cfg.jpeg.subsampling)
    pairing = Pairing(cfg.pairing.geometry, cfg.pairing.jpeg_history)
    content = content_config(cfg, source, generator)
    select_gpu(shard)  # before batch_size=auto reads the free memory of "the" GPU
    batch_size = generator.default_batch_size() if cfg.batch_size == "auto" else cfg.batch_size
    tracker: WandbTracker | None = build(cfg.logger) if cfg.get("logger") else None
    dataset_dir = identity.dataset_dir(cfg, source, generator)
    cfg.dataset_dir = str(dataset_dir)  # recorded as it was resolved
    check_record(dataset_dir, content, shard.count)
    log.info("source %s, generator %s", type(source).__name__, type(generator).__name__)

    # 2. Choose the photos (a seeded sample, this shard's part) and see which pairs are done, by source content.
    everything = source.items()
    if source.ignored:
        print(source.ignored_line())
    selection = sample(everything, cfg.limit, cfg.sample_seed)
    # A paid generator's budget covers the whole dataset, so then every shard hashes the whole selection.
    budget_over_all = generator.paid and shard.count > 1
    hashes = HashCache(dataset_dir, shard)
    to_hash = selection if budget_over_all else [i for i in selection if shard.owns(i.id)]
    hashed = with_hashes(to_hash, cfg.workers, hashes)
    items = [item for item in hashed if shard.owns(item.id)]
    done = done_rows(dataset_dir)
    todo = pending(items, done)
    whole = len(pending(hashed, done)) if budget_over_all or shard.count == 1 else None
    print(f"{len(items)} photos selected, {len(items) - len(todo)} already done, {len(todo)} to generate")
    print(generator.plan(len(todo), whole))
    if getattr(generator, "dry_run", False):
        print("dry run: nothing was sent or written")
        return RunSummary(dataset_dir, len(items), len(items) - len(todo), 0, 0, 0.0)

    # 3. Load the generator (on this process's GPU), then open the dataset dir: the run really starts here.
    if todo:
        generator.load()
    config = redact(OmegaConf.to_container(cfg, resolve=True))
    create_record(dataset_dir, content, config, shard.count)
    hashes.save()
    started = time.time()
    run = {
        "run_id": uuid.uuid4().hex,
        "shard": [shard.index, shard.count],
        "started": timestamp(started),
        "pid": os.getpid(),
    }
    source_ids = {item.id for item in everything if shard.owns(item.id)}
    try:
        with PairWriter(dataset_dir, shard, jpeg, source_ids) as writer, StopRequest() as stop:
            start_run(dataset_dir, run)
            todo = pending(items, done_rows(dataset_dir))  # again under the lock: another run may have finished some
            preparer = Preparer(loader, cfg.size, generator, jpeg, cfg.workers, pairing)
            batcher = BatchGenerator(generator, batch_size, CircuitBreaker(cfg.max_consecutive_failures))
            try:
                if tracker:
                    # The shards of one dataset share a W&B group, unless a sweep or the config names one.
                    shard_group = dataset_dir.name if shard.count > 1 else None
                    tracker.start(config, dataset_dir, run_dir or Path.cwd(), group or shard_group)
                loop = generate_pairs(todo, preparer, batcher, writer, cfg, batch_size, stop, tracker)
            except BaseException as error:
                if tracker:
                    tracker.abort()
                with contextlib.suppress(OSError):  # best effort: the disk may be full
                    record_run(dataset_dir, run | {"state": "failed", "finished": timestamp(), "error": repr(error)})
                if isinstance(error, OSError) and error.errno == errno.ENOSPC:
                    raise disk_full(dataset_dir) from None
                raise
            finally:
                preparer.close()
    except OSError as error:  # closing the writer (its compaction) can meet a full disk too
        if error.errno != errno.ENOSPC:
            raise
        raise disk_full(dataset_dir) from None

    # 4. Record the run in dataset.json, show the gallery, say what happened.
    summary = RunSummary(
        dataset_dir, len(items), len(items) - len(todo), loop.generated, loop.failed, time.time() - started
    )
    record = record_run(
        dataset_dir,
        run
        | {
            "state": "interrupted" if stop.signal_number else "finished",
            "finished": timestamp(),
            "selected": summary.selected,
            "already_done": summary.already_done,
            "generated": loop.generated,
            "failed": loop.failed,
            "ignored": {why: vars(ignored) for why, ignored in source.ignored.items()},
            "interrupted": bool(stop.signal_number),
            "images_per_second": round(summary.images_per_second, 4),
            "seconds_per_stage": {stage: round(seconds, 3) for stage, seconds in loop.stage_seconds.items()},
            "generator": generator.stats(),
            "batch_size": {
                "start": batch_size,
                "end": batcher.batch_size,
                "out_of_memory_at": batcher.out_of_memory_sizes,
            },
        },
    )
    gallery = gallery_rows(read_rows(dataset_dir, MANIFEST), cfg.gallery_size)
    preview = write_preview(dataset_dir, gallery, run_dir) if run_dir else None
    waiting = shards_not_finished(record)
    try:
        check_failure_ratio(summary, cfg.max_failure_ratio)
    except UserError:
        if tracker:
            tracker.finish(record["counts"], dataset_dir, gallery, failed=True, log_dataset=False)
        raise
    if tracker:
        totals = record["counts"] | {"generated": loop.generated, "images_per_second": summary.images_per_second}
        tracker.finish(totals, dataset_dir, gallery, failed=bool(stop.signal_number), log_dataset=not waiting)
        print(f"dataset artifact: waiting for shard(s) {waiting}" if waiting else "dataset artifact: logged")
    if stop.signal_number:
        print(f"interrupted by {signal.Signals(stop.signal_number).name}: rerun the same command to resume")
    print(summary.line(finished=not stop.signal_number))
    for note, number in generator.stats().items():
        if number:
            print(f"{note.replace('_', ' ')}: {number}")
    if preview:
        print(f"preview: {preview}")
    if stop.signal_number:
        raise Interrupted(stop.signal_number)
    return summary
