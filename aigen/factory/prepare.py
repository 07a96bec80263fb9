"""Decoding photos ahead of the generator: each becomes its generator input and its original half, on worker
threads, a few batches ahead, so that the generator never waits for I/O."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from PIL import Image

from aigen.errors import SkipImage
from aigen.generators.base import Generator
from aigen.native import native_square
from aigen.pairing import JpegHistory, PairProcessor, original_at_gen_size
from aigen.preprocess import ImageLoader
from aigen.sources import SourceItem
from aigen.workers import lower_priority


@dataclass
class Prepared:
    """A source photo ready for a generator: the square original, already encoded, the generator's input, and
    the source's JPEG history when the AI half is to be given it. `pixels`: the per-photo facts that decide its
    pair's pixels, for the manifest row (the native grid: aigen.native); `real`: the original on the generated
    image's grid, for pairing.mixup."""

    item: SourceItem
    original_jpeg: bytes = b""
    model_input: object = None
    history: JpegHistory | None = None
    photo_side: int = 0  # the side of the photo's centred square at full resolution (recorded per row)
    skip: SkipImage | None = None
    pixels: dict = field(default_factory=dict)
    real: Image.Image | None = None


def batches(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class Preparer:
    """Decodes and crops photos on worker threads; the original half takes the path the pair processing chooses
    (aigen.pairing) and is JPEG-encoded here too."""

    def __init__(
        self,
        loader: ImageLoader,
        generator: Generator,
        processor: PairProcessor,
        workers: int,
        batches_ahead: int = 2,
    ) -> None:
        self.loader = loader
        self.generator = generator
        self.processor = processor
        # Decode just large enough for every use, unless the generator needs the full resolution (None), works on
        # the photo's own grid (native) or the source's JPEG history is read (its block grid is counted in
        # full-resolution pixels).
        needs_full = generator.input_side is None or generator.native or processor.reads_history
        self.decode_side = None if needs_full else max(processor.size, generator.input_side, generator.gen_size)
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="prepare", initializer=lower_priority)
        self.batches_ahead = batches_ahead

    def prepare(self, item: SourceItem) -> Prepared:
        if self.generator.native:
            return self.prepare_native(item)
        try:
            file = item.photo_file()  # a path, or the bytes of a photo in a container (parquet, tar, arrow)
            photo = self.loader(file, self.decode_side)
            model_input = self.generator.prepare(photo.condition_square())
        except SkipImage as skip:
            return Prepared(item, skip=skip)
        # pairing.mixup blends the generated image with the photo's square at gen_size, which the symmetric
        # original half passes through too: made once.
        mixing = self.processor.pairing.mixup > 0
        real = original_at_gen_size(photo.condition_square(), self.generator.gen_size) if mixing else None
        history = self.processor.history(file, photo)
        return Prepared(
            item,
            original_jpeg=self.processor.original_jpeg(photo, at_gen_size=real),
            model_input=model_input,
            history=history,
            photo_side=min(photo.full_size),
            pixels=self.processor.facts(history),
            real=real,
        )

    def prepare_native(self, item: SourceItem) -> Prepared:
        """gen_size=native: the photo's square cut to its native grid is both the generator's input and the
        original half, which then takes the AI half's path to `size` (aigen.native)."""
        processor = self.processor
        try:
            file = item.photo_file()
            photo = self.loader(file, self.decode_side)
            multiple, max_side = self.generator.native_multiple, self.generator.max_side
            native = native_square(photo, file, multiple, max_side, processor.size, processor.reads_history)
            model_input = self.generator.prepare(native.image)
        except SkipImage as skip:
            return Prepared(item, skip=skip)
        return Prepared(
            item,
            original_jpeg=processor.native_original_jpeg(native.image),
            model_input=model_input,
            history=native.history,
            photo_side=min(photo.full_size),
            pixels=native.facts,
            real=native.image if processor.pairing.mixup > 0 else None,
        )

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
