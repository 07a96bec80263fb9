"""The dataset factory: source photos -> square originals + AI variations -> a resumable paired dataset."""

from __future__ import annotations

import errno
import logging
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from hydra.errors import InstantiationException
from hydra.utils import instantiate, to_absolute_path
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from aigen.dataset_record import open_record, record_run
from aigen.errors import Interrupted, SkipImage, UserError
from aigen.generators.base import Generator, Variation
from aigen.preprocess import ImageLoader, JpegSettings, to_square
from aigen.records import MANIFEST, Shard, read_rows
from aigen.report import gallery_rows, write_preview
from aigen.seeding import per_image_seed, sample_key
from aigen.sources import SourceItem
from aigen.tracking import WandbTracker, redact
from aigen.workers import lower_priority
from aigen.writer import PairWriter

log = logging.getLogger(__name__)


@dataclass
class Prepared:
    """A source photo ready for a generator: the square original, already encoded, and the generator's input."""

    item: SourceItem
    original_jpeg: bytes = b""
    model_input: object = None
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

    def line(self) -> str:
        return (
            f"done: {self.generated} new pairs, {self.already_done} already there, {self.failed} failed "
            f"({self.images_per_second:.2f} images/s) -> {self.dataset_dir}"
        )


def build(node: DictConfig):
    """`instantiate`, except that a UserError raised by a constructor stays a one-line error."""
    try:
        return instantiate(node)
    except InstantiationException as error:
        if isinstance(error.__cause__, UserError):
            raise error.__cause__ from None
        raise


def select_items(items: list[SourceItem], limit: int, sample_seed: int, shard: Shard) -> list[SourceItem]:
    """A seeded random sample of `limit` photos (0 = all), then every `shard.count`-th one by id.

    The sample of N is the first N ids by a hash key, so a larger limit extends a smaller one, and it does not
    depend on the generation seed: a seed sweep uses the same photos.
    """
    if limit:
        items = sorted(items, key=lambda item: sample_key(sample_seed, item.id))[:limit]
    ordered = sorted(items, key=lambda item: item.id)
    return ordered[shard.index :: shard.count]


def content_config(cfg: DictConfig, source_name: str, generator: Generator) -> dict:
    """Everything that decides the bytes of a pair: a dataset dir only ever holds one such config."""
    return {
        "source": source_name,
        "size": cfg.size,
        "seed": cfg.seed,
        "jpeg": OmegaConf.to_container(cfg.jpeg, resolve=True),
        **generator.describe(),
    }


def batches(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class Preparer:
    """Decodes and crops photos on worker threads, a few batches ahead, so the generator never waits for I/O."""

    def __init__(
        self,
        loader: ImageLoader,
        size: int,
        generator: Generator,
        jpeg: JpegSettings,
        workers: int,
        batches_ahead: int = 2,
    ) -> None:
        self.loader = loader
        self.size = size
        self.generator = generator
        self.jpeg = jpeg
        # Decode just large enough for both uses, unless the generator needs the full resolution (None).
        self.decode_side = None if generator.input_side is None else max(size, generator.input_side)
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="prepare", initializer=lower_priority)
        self.batches_ahead = batches_ahead

    def prepare(self, item: SourceItem) -> Prepared:
        try:
            photo = self.loader(item.path, self.decode_side)
            model_input = self.generator.prepare(photo.condition_square())
        except SkipImage as skip:
            return Prepared(item, skip=skip)
        original = self.jpeg.encode(to_square(photo.image, self.size, photo.square_box()))
        return Prepared(item, original_jpeg=original, model_input=model_input)

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


def generate_with_retry(generator: Generator, ready: list[Prepared], seeds: list[int]) -> list[Variation | SkipImage]:
    """One batch; if it raises (e.g. out of memory), retry image by image, then record the error per image."""
    try:
        return generator.generate([p.model_input for p in ready], seeds)
    except (UserError, KeyboardInterrupt):
        raise
    except Exception as error:  # noqa: BLE001 - any generator error must be recorded, not lose the run
        if len(ready) == 1:
            return [SkipImage("generate", f"{type(error).__name__}: {error}")]
        log.warning("batch of %d failed (%s: %s); retrying one by one", len(ready), type(error).__name__, error)
        return [generate_with_retry(generator, [p], [s])[0] for p, s in zip(ready, seeds, strict=True)]


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


def write_batch(writer: PairWriter, generator: Generator, prepared: list[Prepared], cfg: DictConfig) -> BatchResult:
    """Generate one batch and write its pairs; skipped photos are recorded with their reason."""
    for p in prepared:
        if p.skip:
            writer.record_failure(p.item.id, p.item.source, p.skip.stage, p.skip.reason)
    ready = [p for p in prepared if not p.skip]
    seeds = [per_image_seed(cfg.seed, p.item.id) for p in ready]
    started = time.perf_counter()
    results = generate_with_retry(generator, ready, seeds) if ready else []
    generated = time.perf_counter()
    written = 0
    description = generator.describe()
    for p, seed, result in zip(ready, seeds, results, strict=True):
        if isinstance(result, SkipImage):
            writer.record_failure(p.item.id, p.item.source, result.stage, result.reason)
            continue
        row = {
            "id": p.item.id,
            "source": p.item.source,
            "category": p.item.category,
            **description,
            **result.info,
            "seed": seed,
            "size": cfg.size,
        }
        writer.write_pair(row, p.original_jpeg, to_square(result.image, cfg.size))
        written += 1
    return BatchResult(written, len(prepared) - written, generated - started, time.perf_counter() - generated)


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


def make_dataset(cfg: DictConfig, run_dir: Path | None = None, group: str | None = None) -> RunSummary:
    """Make (or resume) one dataset dir. `run_dir` receives preview.png and W&B files; `group` groups W&B runs."""
    # 1. Check the settings that can fail before any work is done.
    if not isinstance(cfg.guidance_scale, int | float):
        raise UserError(f"guidance_scale={cfg.guidance_scale!r} must be a number")
    cfg.guidance_scale = float(cfg.guidance_scale)  # `guidance_scale=3` and 3.0 name the same dataset dir
    if not isinstance(cfg.size, int) or cfg.size <= 0 or cfg.size % 8:
        raise UserError(f"size={cfg.size} must be a positive multiple of 8 (e.g. 256)")
    try:
        shard = Shard(cfg.shard.index, cfg.shard.count)
    except ValueError as error:
        raise UserError(str(error)) from None
    source = build(cfg.source)
    generator: Generator = build(cfg.generator)
    loader: ImageLoader = build(cfg.loader)
    jpeg = JpegSettings(cfg.jpeg.quality, cfg.jpeg.subsampling)
    tracker: WandbTracker | None = build(cfg.logger) if cfg.get("logger") else None
    batch_size = generator.default_batch_size() if cfg.batch_size == "auto" else cfg.batch_size
    if not isinstance(batch_size, int) or batch_size < 1:
        raise UserError(f"batch_size={cfg.batch_size} must be a positive integer or auto")
    log.info("source %s, generator %s", type(source).__name__, type(generator).__name__)

    # 2. Choose the photos: all, or a seeded sample, and this shard's part of them.
    items = select_items(source.items(), cfg.limit, cfg.sample_seed, shard)
    if source.ignored:
        print(f"ignored {len(source.ignored)} macOS resource-fork files (._*), e.g. {source.ignored[0]}")

    # 3. Open the dataset dir: same content config or refuse; skip finished pairs.
    dataset_dir = Path(to_absolute_path(cfg.dataset_dir))
    config = redact(OmegaConf.to_container(cfg, resolve=True))
    open_record(dataset_dir, content_config(cfg, source.name, generator), config)
    generated = failed = 0
    with PairWriter(dataset_dir, shard, jpeg) as writer, StopRequest() as stop:
        done = writer.done_ids()
        todo = [item for item in items if item.id not in done]
        print(f"{len(items)} photos selected, {len(items) - len(todo)} already done, {len(todo)} to generate")
        print(generator.plan(len(todo)))
        if getattr(generator, "dry_run", False):
            print("dry run: nothing was sent or written")
            return RunSummary(dataset_dir, len(items), len(items) - len(todo), 0, 0, 0.0)
        if todo:
            generator.load()
        if tracker:
            # The shards of one dataset share a W&B group, unless a sweep or the config names one.
            shard_group = dataset_dir.name if shard.count > 1 else None
            tracker.start(config, dataset_dir, run_dir or Path.cwd(), group or shard_group)

        # 4. Generate batch by batch; the next batches are decoded meanwhile. (images/s counts from here.)
        started = time.time()
        preparer = Preparer(loader, cfg.size, generator, jpeg, cfg.workers)
        progress = tqdm(total=len(todo), unit="pair", desc="pairs", dynamic_ncols=True)
        stage_seconds = {"load": 0.0, "generate": 0.0, "write": 0.0}
        try:
            waited = time.perf_counter()
            for prepared in preparer.stream(todo, batch_size):
                stage_seconds["load"] += time.perf_counter() - waited
                batch = write_batch(writer, generator, prepared, cfg)
                generated, failed = generated + batch.written, failed + batch.failed
                stage_seconds["generate"] += batch.generate_seconds
                stage_seconds["write"] += batch.write_seconds
                progress.update(len(prepared))
                progress.set_postfix(failed=failed)
                if tracker:
                    elapsed = time.time() - started
                    tracker.progress(
                        {"pairs_done": generated, "failed": failed, "images_per_second": generated / elapsed}
                        | {f"seconds/{stage}": seconds for stage, seconds in stage_seconds.items()}
                    )
                if stop.signal_number:
                    break
                waited = time.perf_counter()
            writer.flush()
        except OSError as error:
            if tracker:
                tracker.abort()
            if error.errno != errno.ENOSPC:
                raise
            raise UserError(f"disk full while writing {dataset_dir}: free some space and rerun to resume") from None
        except BaseException:
            if tracker:
                tracker.abort()
            raise
        finally:
            progress.close()
            preparer.close()

    # 5. Record the run in dataset.json, show the gallery, say what happened.
    summary = RunSummary(dataset_dir, len(items), len(items) - len(todo), generated, failed, time.time() - started)
    record = record_run(
        dataset_dir,
        {
            "shard": [shard.index, shard.count],
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "selected": summary.selected,
            "already_done": summary.already_done,
            "generated": generated,
            "failed": failed,
            "ignored": len(source.ignored),
            "interrupted": bool(stop.signal_number),
            "images_per_second": round(summary.images_per_second, 4),
            "seconds_per_stage": {stage: round(seconds, 3) for stage, seconds in stage_seconds.items()},
        },
    )
    gallery = gallery_rows(read_rows(dataset_dir, MANIFEST), cfg.gallery_size)
    preview = write_preview(dataset_dir, gallery, run_dir) if run_dir else None
    try:
        check_failure_ratio(summary, cfg.max_failure_ratio)
    except UserError:
        if tracker:
            tracker.finish(record["counts"], dataset_dir, gallery, failed=True)
        raise
    if tracker:
        totals = record["counts"] | {"generated": generated, "images_per_second": summary.images_per_second}
        tracker.finish(totals, dataset_dir, gallery, failed=bool(stop.signal_number))
    print(summary.line())
    if preview:
        print(f"preview: {preview}")
    if stop.signal_number:
        raise Interrupted(stop.signal_number)
    return summary
