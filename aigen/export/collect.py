"""Dataset dirs as export rows: one per pair, with the detector's split by source photo content and the union of
every manifest's columns, so that pairs from several generators share one table."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from aigen.dataset import HALVES, DatasetDir, open_dataset
from aigen.errors import UserError, unreadable_as_user_error
from aigen.splits import content_key, split_of

# Always present, in this order (null when a manifest has no such key); other manifest keys follow, sorted.
FIRST_COLUMNS = (
    "id",
    "split",
    "dataset",
    "category",
    "generator",
    "model",
    "revision",
    "weights",
    "alignment",
    "seed",
    "source",
    "source_sha256",
    "size",
)


# The detector's split names as the Hugging Face Hub spells them: an export's `val` is `validation`.
HUB_SPLITS = {"train": "train", "val": "validation", "test": "test"}
SPLITS = tuple(HUB_SPLITS.values())

JPEG_END = b"\xff\xd9"  # the end-of-image marker that closes every JPEG the factory writes
PairRef = tuple[str, str]  # (dataset dir name, id): a pair's identity within an export


@dataclass(frozen=True)
class Pair:
    """One manifest row of one dataset dir and the split its source photo falls in."""

    dataset: DatasetDir
    row: dict
    split: str

    @property
    def ref(self) -> PairRef:
        return (self.dataset.name, self.row["id"])

    def image_path(self, half: str) -> Path:
        return self.dataset.path / self.row[half]

    def image_bytes(self, half: str) -> bytes:
        """The JPEG exactly as the factory wrote it (exports never re-encode), refused when it has lost its end."""
        path = self.image_path(half)
        with unreadable_as_user_error(path):
            data = path.read_bytes()
        if not data.endswith(JPEG_END):
            raise UserError(f"{path} is not a whole JPEG (truncated?); check it with python -m aigen.verify")
        return data

    def size_bytes(self) -> int:
        total = 0
        for half in HALVES:
            with unreadable_as_user_error(self.image_path(half)):
                total += self.image_path(half).stat().st_size
        return total

    def values(self) -> dict:
        """The manifest row with the export's own keys, without the image paths."""
        values = {**self.row, "split": self.split, "dataset": self.dataset.name}
        return {key: value for key, value in values.items() if key not in HALVES}

    def metadata(self, columns: dict[str, str]) -> dict:
        """Every export column's value for this pair, as its column stores it (None where the manifest has none)."""
        values = self.values()
        return {column: column_value(values.get(column), dtype) for column, dtype in columns.items()}

    def sample_json(self, columns: dict[str, str]) -> dict:
        """A WebDataset sample's JSON: the manifest row with the export's columns (same keys in every sample)."""
        return {**self.metadata(columns), **{half: self.row[half] for half in HALVES}}


def open_dataset_dirs(paths: list[Path]) -> list[DatasetDir]:
    """All dataset dirs of one export; their names must differ, since the `dataset` column tells them apart."""
    dirs = [open_dataset(path) for path in paths]
    seen: dict[str, Path] = {}
    for dataset in dirs:
        if dataset.name in seen:
            raise UserError(
                f"{seen[dataset.name]} and {dataset.path} have the same name {dataset.name!r}: the export's dataset "
                "column could not tell their pairs apart; give one of them another name"
            )
        seen[dataset.name] = dataset.path
    return dirs


def collect_pairs(dirs: list[DatasetDir], seed: int, val_fraction: float, test_fraction: float) -> list[Pair]:
    """Every pair of every dir, with the split `python -m aigen.detect` gives its source photo. Sorted by split,
    then id, then dir, so the same photo's pairs from several generators sit next to each other."""
    pairs = [
        Pair(dataset, row, HUB_SPLITS[split_of(content_key(dataset.path, row), seed, val_fraction, test_fraction)])
        for dataset in dirs
        for row in dataset.rows.values()
    ]
    order = {dataset.name: index for index, dataset in enumerate(dirs)}
    return sorted(pairs, key=lambda pair: (SPLITS.index(pair.split), pair.row["id"], order[pair.dataset.name]))


def dtype_of(values: list[object]) -> str:
    """The Hugging Face dtype of one column: the narrowest of bool, int64, float64 and string that holds every
    non-null value (a column of only nulls is a string column)."""
    kinds = {type(value) for value in values if value is not None}
    if kinds == {bool}:
        return "bool"
    if kinds == {int}:
        return "int64"
    if kinds and kinds <= {int, float}:
        return "float64"
    return "string"


def metadata_columns(pairs: list[Pair]) -> dict[str, str]:
    """Column name -> dtype for every non-image column: FIRST_COLUMNS, then the other manifest keys, sorted."""
    rows = [pair.values() for pair in pairs]
    keys = {key for row in rows for key in row}
    names = [*FIRST_COLUMNS, *sorted(keys - set(FIRST_COLUMNS))]
    return {name: dtype_of([row.get(name) for row in rows]) for name in names}


def column_value(value: object, dtype: str) -> object:
    """A value as its column stores it: ints in a float column become floats; in a string column, anything else
    becomes JSON text (a nested value, none in today's manifests, or a column that mixes kinds)."""
    if value is None:
        return None
    if dtype == "float64":
        return float(value)
    if dtype == "string" and not isinstance(value, str):
        return json.dumps(value, sort_keys=True)
    return value
