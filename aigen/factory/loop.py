"""Stage 2, the loop: batches of prepared photos through the generator to the writer, until done or asked to stop.
What happens along the way is told to the run's observers (aigen.factory.events)."""

from __future__ import annotations

import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from functools import partial

from aigen.dataset.record import is_upscaled
from aigen.dataset.writer import PairWriter
from aigen.errors import RunStopped, SkipImage, UserError
from aigen.factory.events import RunEvents
from aigen.factory.generation import BatchGenerator
from aigen.factory.prepare import Prepared, Preparer
from aigen.native import ai_half
from aigen.pairing import PairProcessor
from aigen.seeding import per_image_seed
from aigen.sources import SourceItem


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
    upscaled: int  # written from photos smaller than `size` (only when loader.min_side allows them)
    generate_seconds: float
    write_seconds: float


def write_batch(
    writer: PairWriter, batcher: BatchGenerator, processor: PairProcessor, prepared: list[Prepared], seed: int
) -> BatchResult:
    """Generate one batch and write its pairs; skipped photos are recorded with their reason. When the generator
    stops the run (RunStopped), the images it did return are written before the error goes on."""
    generator = batcher.generator
    for p in prepared:
        if p.skip:
            writer.record_failure(p.item, p.skip)
    ready = [p for p in prepared if not p.skip]
    seeds = [per_image_seed(seed, p.item.id) for p in ready]
    started = time.perf_counter()
    stopped: RunStopped | None = None
    try:
        results = batcher([p.model_input for p in ready], seeds) if ready else []
    except RunStopped as error:
        stopped, results = error, error.results
    generated = time.perf_counter()
    written = failed = upscaled = 0
    description = generator.describe()
    for p, image_seed, result in zip(ready, seeds, results, strict=True):
        if result is None:  # not sent: the run stopped first
            continue
        try:
            if isinstance(result, SkipImage):
                raise result
            image, pixels = ai_half(result.image, p.real, image_seed, processor.pairing.mixup, p.pixels)
        except SkipImage as skip:  # the generator's, or a generated image that cannot be paired
            writer.record_failure(p.item, skip)
            failed += 1
            continue
        row = {
            "id": p.item.id,
            "source": p.item.source,
            "source_sha256": p.item.sha256,
            "category": p.item.category,
            **description,
            **result.info,
            **pixels,
            "size": processor.size,
            "photo_side": p.photo_side,
        }
        if generator.seeded or "mixup_r" in pixels:
            row["seed"] = image_seed
        writer.write_pair(row, p.original_jpeg, partial(processor.ai_jpeg, image, p.history))
        written += 1
        upscaled += is_upscaled(row)
    if stopped:
        writer.flush()
        raise UserError(str(stopped))
    failed += len(prepared) - len(ready)
    return BatchResult(written, failed, upscaled, generated - started, time.perf_counter() - generated)


@dataclass
class LoopResult:
    generated: int = 0
    failed: int = 0
    upscaled: int = 0
    stage_seconds: dict[str, float] = field(default_factory=lambda: {"load": 0.0, "generate": 0.0, "write": 0.0})


def generate_pairs(
    todo: list[SourceItem],
    preparer: Preparer,
    batcher: BatchGenerator,
    writer: PairWriter,
    seed: int,
    stop: StopRequest,
    events: RunEvents,
) -> LoopResult:
    """Batch by batch until done or asked to stop; the next batches are decoded meanwhile."""
    result = LoopResult()
    started = time.time()
    waited = time.perf_counter()
    for prepared in preparer.stream(todo, batcher.batch_size):
        result.stage_seconds["load"] += time.perf_counter() - waited
        batch = write_batch(writer, batcher, preparer.processor, prepared, seed)
        result.generated += batch.written
        result.failed += batch.failed
        result.upscaled += batch.upscaled
        result.stage_seconds["generate"] += batch.generate_seconds
        result.stage_seconds["write"] += batch.write_seconds
        events.batch_done(result, len(prepared), time.time() - started)
        if stop.signal_number:
            break
        waited = time.perf_counter()
    writer.flush()
    return result
