"""The dataset dir, owned here alone: its layout and readers (layout.py), its dataset.json (record.py) and the
writer of its pairs (writer.py). Every tool that reads or writes a dataset dir goes through this package."""

from aigen.dataset.layout import (
    AI,
    DATASET_JSON,
    FAILURES,
    HALVES,
    MANIFEST,
    ORIGINAL,
    DatasetDir,
    Shard,
    check_dataset_dir,
    done_rows,
    is_dataset_dir,
    open_dataset,
    pair_on_disk,
    pair_paths,
    read_record,
    read_rows,
    record_files,
)

__all__ = [
    "AI",
    "DATASET_JSON",
    "FAILURES",
    "HALVES",
    "MANIFEST",
    "ORIGINAL",
    "DatasetDir",
    "Shard",
    "check_dataset_dir",
    "done_rows",
    "is_dataset_dir",
    "open_dataset",
    "pair_on_disk",
    "pair_paths",
    "read_record",
    "read_rows",
    "record_files",
]
