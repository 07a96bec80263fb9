"""source=parquet: photos stored in Parquet files, one per row, as bytes or as `{bytes, path}` (the layout of
Hugging Face image datasets and of `python -m aigen.export`). Only the footers are read at the start; a photo's
row group is read when the photo is hashed or prepared (a few recent groups are kept, as rows come in order)."""

from __future__ import annotations

import bisect
import functools
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from hydra.utils import to_absolute_path

from aigen.errors import SkipImage, UserError
from aigen.sources import Source, SourceItem, cell_bytes, columns_read, with_unique_ids

ROW_GROUPS_KEPT = 4  # decoded row groups kept in memory, shared by the reading threads


@functools.lru_cache(maxsize=ROW_GROUPS_KEPT)
def read_row_group(path: Path, stamp: tuple[int, int], group: int, column: str) -> pa.Array:
    """One column of one row group (`stamp` keeps a rewritten file from being served from memory)."""
    return pq.ParquetFile(path).read_row_group(group, columns=[column]).column(0).combine_chunks()


class ParquetPhotos:
    """One Parquet file's photo column: rows located by row group from the footer."""

    def __init__(self, path: Path, column: str) -> None:
        self.path = path
        self.column = column
        stat = os.stat(path)
        self.size_and_mtime = (stat.st_size, stat.st_mtime_ns)
        metadata = pq.ParquetFile(path).metadata
        self.rows = metadata.num_rows
        self.group_starts = [0]
        for group in range(metadata.num_row_groups):
            self.group_starts.append(self.group_starts[-1] + metadata.row_group(group).num_rows)

    def read(self, row: int) -> bytes:
        group = bisect.bisect_right(self.group_starts, row) - 1
        try:
            cells = read_row_group(self.path, self.size_and_mtime, group, self.column)
        except (OSError, pa.ArrowException) as error:
            raise SkipImage("read", f"cannot read {self.path.name}: {error}") from None
        return cell_bytes(cells[row - self.group_starts[group]].as_py(), f"row {row} of {self.path.name}")

    def stamp(self, row: int) -> tuple[int, int]:
        return self.size_and_mtime


def check_column(schema: pa.Schema, column: str, path: Path) -> None:
    if column not in schema.names:
        raise UserError(f"source.image_column={column!r} is not a column of {path} ({', '.join(schema.names)})")
    kind = schema.field(column).type
    binary = (pa.types.is_binary(kind) or pa.types.is_large_binary(kind)) if not pa.types.is_struct(kind) else False
    if not binary and not (pa.types.is_struct(kind) and kind.get_field_index("bytes") >= 0):
        raise UserError(f"source.image_column={column!r} of {path} is {kind}, not image bytes or {{bytes, path}}")


class ParquetSource(Source):
    """Every row of the Parquet file `path`, or of every `*.parquet` below the folder `path`. Ids come from
    `id_column`, or are `<file stem>-<row>`."""

    def __init__(
        self,
        path: str,
        image_column: str = "image",
        id_column: str | None = None,
        name: str | None = None,
        identity: str | None = None,
    ) -> None:
        if path is None or str(path).strip() == "":
            raise UserError("source.path is not set: source=parquet needs source.path=FILE.parquet or a folder")
        self.path = Path(to_absolute_path(os.path.expanduser(str(path))))
        reading = columns_read(image_column, id_column)
        super().__init__(name or self.path.stem or "parquet", identity or str(self.path), reading)
        self.image_column = image_column
        self.id_column = id_column

    def files(self) -> list[Path]:
        if self.path.is_file():
            return [self.path]
        if not self.path.is_dir():
            raise UserError(f"source.path={self.path} does not exist")
        files = sorted(self.path.rglob("*.parquet"))
        if not files:
            raise UserError(f"no *.parquet files under {self.path}")
        return files

    def items(self) -> list[SourceItem]:
        files = self.files()
        for path in files:  # every column is checked before any photo is read
            try:
                schema = pq.read_schema(path)
            except (OSError, pa.ArrowException) as error:
                raise UserError(f"{path} is not a readable Parquet file: {error}") from None
            check_column(schema, self.image_column, path)
            if self.id_column and self.id_column not in schema.names:
                raise UserError(f"source.id_column={self.id_column!r} is not a column of {path}")
        items = []
        for path in files:
            photos = ParquetPhotos(path, self.image_column)
            ids = pq.read_table(path, columns=[self.id_column]).column(0).to_pylist() if self.id_column else []
            relative = path.relative_to(self.path).as_posix() if path != self.path else path.name
            for row in range(photos.rows):
                row_id = str(ids[row]) if ids and ids[row] not in (None, "") else f"{path.stem}-{row:09d}"
                items.append(
                    SourceItem(
                        id=row_id.replace("/", "_"),
                        path=path,
                        source=f"{relative}#{row}",
                        category="",
                        container=photos,
                        member=row,
                    )
                )
        if not items:
            raise UserError(f"no rows in {len(files)} Parquet file(s) under {self.path}")
        return with_unique_ids(items)
