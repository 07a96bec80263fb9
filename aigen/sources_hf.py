"""source=hf: a Hugging Face `datasets` dataset, from the hub (id + revision) or local (a `save_to_disk` folder, a
folder of data files, one Parquet or Arrow file).

Not streamed, `datasets` memory-maps its Arrow files and a photo's row is read when it is hashed or prepared.
Streamed (`streaming: true`), nothing is converted or cached: the start passes over the stream once, listing and
hashing every row without keeping its bytes, and a photo is read again by following its shard's stream to its row.
Photos are prepared in id order, which is stream order for the default ids, so this is one more pass in all; a
few recent rows are kept for threads that ask slightly out of order.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from pathlib import Path

import datasets
from hydra.utils import to_absolute_path

from aigen.errors import SkipImage, UserError
from aigen.sources import Source, SourceItem, cell_bytes, columns_read, with_unique_ids

DATA_FILE_BUILDERS = {".parquet": "parquet", ".arrow": "arrow"}
STREAMS_OPEN = 2  # shard streams kept open for reading (photos come in stream order: one at a time, mostly)
ROWS_KEPT = 32  # recent rows of each open stream, for threads that ask slightly out of order


class DatasetRows:
    """The photo column of a memory-mapped dataset, read one row at a time."""

    def __init__(self, images: datasets.Dataset, column: str) -> None:
        self.images = images
        self.column = column
        files = [os.stat(entry["filename"]) for entry in images.cache_files]
        # A dataset held in memory has no files to stamp: its hashes are not cached.
        self.size_and_mtime = (sum(f.st_size for f in files), max(f.st_mtime_ns for f in files)) if files else None

    def read(self, row: int) -> bytes:
        return cell_bytes(self.images[row][self.column], f"row {row}")

    def stamp(self, row: int) -> tuple[int, int] | None:
        return self.size_and_mtime


class StreamCursor:
    """Follows one shard's stream forward; a row behind it is served from the last few rows, or by starting over."""

    def __init__(self, open_stream: Callable[[], Iterator]) -> None:
        self.open_stream = open_stream
        self.lock = threading.Lock()
        self.rows: Iterator | None = None
        self.position = 0
        self.recent: deque[tuple[int, object]] = deque(maxlen=ROWS_KEPT)

    def cell(self, row: int) -> object:
        with self.lock:
            for seen, cell in self.recent:
                if seen == row:
                    return cell
            if self.rows is None or row < self.position:
                self.rows, self.position = self.open_stream(), 0
                self.recent.clear()
            for cell in self.rows:
                self.recent.append((self.position, cell))
                self.position += 1
                if self.position - 1 == row:
                    return cell
        raise SkipImage("read", f"row {row} is no longer in the stream")


class StreamRows:
    """The photo column of a streamed dataset, by (shard, row in shard)."""

    def __init__(self, stream: datasets.IterableDataset, column: str) -> None:
        self.stream = stream
        self.column = column
        self.cursors: OrderedDict[int, StreamCursor] = OrderedDict()
        self.lock = threading.Lock()

    def shard_cells(self, shard: int) -> Iterator:
        for example in self.stream.shard(num_shards=self.stream.n_shards, index=shard):
            yield example[self.column]

    def read(self, member: tuple[int, int]) -> bytes:
        shard, row = member
        with self.lock:
            cursor = self.cursors.pop(shard, None) or StreamCursor(lambda: self.shard_cells(shard))
            self.cursors[shard] = cursor
            while len(self.cursors) > STREAMS_OPEN:
                self.cursors.popitem(last=False)
        return cell_bytes(cursor.cell(row), f"row {row} of stream shard {shard}")

    def stamp(self, member: tuple[int, int]) -> None:
        return None  # the stream is hashed as it is listed, every start


class HFSource(Source):
    """Every row of one split, its photo in `image_column` (an `Image` feature or bytes). Ids come from
    `id_column`, or are the row number (`000000042`), the same streamed or not."""

    def __init__(
        self,
        dataset: str,
        split: str = "train",
        image_column: str = "image",
        id_column: str | None = None,
        streaming: bool = False,
        revision: str | None = None,
        name: str | None = None,
        identity: str | None = None,
    ) -> None:
        if dataset is None or str(dataset).strip() == "":
            raise UserError("source.dataset is not set: source=hf needs a hub id or a local path")
        local = Path(to_absolute_path(os.path.expanduser(str(dataset))))
        self.local = local if local.exists() else None
        self.dataset = str(dataset)
        self.location = str(self.local or dataset)
        default_name = (self.local.stem if self.local else self.dataset.split("/")[-1]) or "hf"
        pinned = f"{self.location}@{revision}" if revision else self.location
        super().__init__(name or default_name, identity or f"{pinned}[{split}]", columns_read(image_column, id_column))
        self.split = split
        self.image_column = image_column
        self.id_column = id_column
        self.streaming = streaming
        self.revision = revision

    def _load(self) -> datasets.Dataset | datasets.IterableDataset:
        try:
            if self.local and ((self.local / "state.json").is_file() or (self.local / "dataset_dict.json").is_file()):
                loaded = datasets.load_from_disk(str(self.local))
                if isinstance(loaded, datasets.DatasetDict):
                    if self.split not in loaded:
                        raise ValueError(f"no split {self.split!r} (splits: {', '.join(loaded)})")
                    loaded = loaded[self.split]
                elif str(loaded.split or "train") != self.split:
                    # Saved without a split name, it is read as the train split (as `datasets` reads a folder of files).
                    saved = f"is split {str(loaded.split)!r}" if loaded.split else "has no split name (read as train)"
                    raise ValueError(f"the saved dataset {saved}, not source.split={self.split!r}")
                return loaded.to_iterable_dataset(num_shards=len(loaded.cache_files) or 1) if self.streaming else loaded
            if self.local and self.local.is_file():
                builder = DATA_FILE_BUILDERS.get(self.local.suffix)
                if builder is None:
                    raise ValueError(f"not a data file datasets reads here ({', '.join(DATA_FILE_BUILDERS)})")
                return datasets.load_dataset(
                    builder, data_files=str(self.local), split=self.split, streaming=self.streaming
                )
            return datasets.load_dataset(
                self.location, split=self.split, revision=self.revision, streaming=self.streaming
            )
        except (OSError, ValueError) as error:
            message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise UserError(f"source.dataset={self.dataset!r}: {message}") from None

    def _photo_column(self, loaded):
        """The dataset with its photo column as undecoded bytes; a missing or non-image column is one line."""
        columns = loaded.column_names or []
        for option, column in (("image_column", self.image_column), ("id_column", self.id_column)):
            if column and column not in columns:
                raise UserError(f"source.{option}={column!r} is not a column of {self.dataset} ({', '.join(columns)})")
        feature = loaded.features[self.image_column]
        if isinstance(feature, datasets.Image):
            return loaded.cast_column(self.image_column, datasets.Image(decode=False))
        if isinstance(feature, datasets.Value) and feature.dtype in ("binary", "large_binary"):
            return loaded
        raise UserError(f"source.image_column={self.image_column!r} holds {feature}, not images or bytes")

    def _item(self, row: int, row_id: object, container, member, sha256: str = "") -> SourceItem:
        plain_id = str(row_id) if row_id not in (None, "") else f"{row:09d}"
        return SourceItem(
            id=plain_id.replace("/", "_"),
            path=Path(f"{self.location}[{self.split}]"),
            source=f"{self.split}[{row}]",
            category="",
            sha256=sha256,
            container=container,
            member=member,
        )

    def items(self) -> list[SourceItem]:
        loaded = self._photo_column(self._load())
        items = self._streamed(loaded) if self.streaming else self._mapped(loaded)
        if not items:
            raise UserError(f"source.dataset={self.dataset!r} has no rows in split {self.split!r}")
        return with_unique_ids(items)

    def _mapped(self, loaded: datasets.Dataset) -> list[SourceItem]:
        rows = DatasetRows(loaded.select_columns([self.image_column]), self.image_column)
        ids = loaded.select_columns([self.id_column]).with_format("arrow")[:][0].to_pylist() if self.id_column else []
        return [self._item(row, ids[row] if ids else None, rows, row) for row in range(len(loaded))]

    def _streamed(self, stream: datasets.IterableDataset) -> list[SourceItem]:
        columns = [column for column in (self.image_column, self.id_column) if column]
        rows = StreamRows(stream.select_columns(columns), self.image_column)
        items, row = [], 0
        for shard in range(rows.stream.n_shards):
            for in_shard, example in enumerate(rows.stream.shard(num_shards=rows.stream.n_shards, index=shard)):
                try:
                    digest = hashlib.sha256(cell_bytes(example[self.image_column], f"row {row}")).hexdigest()
                except SkipImage:
                    digest = ""  # read again when prepared, and recorded then
                row_id = example[self.id_column] if self.id_column else None
                items.append(self._item(row, row_id, rows, (shard, in_shard), digest))
                row += 1
        return items
