"""What a dataset dir is: its file names, its shards, and reading it back (recognised by its dataset.json).

DIR/dataset.json                 which config made it (fingerprint), its runs, merged totals (record.py)
DIR/original/<id>.jpg            the real half of a pair
DIR/ai/<id>.jpg                  the generated half
DIR/manifest[.shardI-of-N].jsonl one row per pair on disk, per shard
DIR/failures[.shardI-of-N].jsonl one row per photo without a pair, with its latest reason
DIR/source_hashes[.shardI-of-N].json  the source photos' hashes: a start re-reads only changed files
DIR/.lock[.shardI-of-N]          the writer's lock of a shard (writer.py)
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from aigen.errors import UserError
from aigen.files import read_json_object, read_jsonl
from aigen.seeding import shard_key
from aigen.words import counted

ORIGINAL, AI = "original", "ai"
HALVES = (ORIGINAL, AI)
MANIFEST = "manifest"
FAILURES = "failures"
DATASET_JSON = "dataset.json"
SOURCE_HASHES = "source_hashes"  # the source photos' hashes by file stamp, one file per shard (aigen.hash_cache)


@dataclass(frozen=True)
class Shard:
    """Shard `index` of `count`: the photos whose id hashes to `index` modulo `count`. The hash depends on the id
    alone, so photos added between array tasks never move an id to another shard. Each shard writes its own
    record files, so shards never append to a shared file."""

    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ValueError(f"shard.index={self.index} must be in [0, shard.count={self.count})")

    def owns(self, image_id: str) -> bool:
        return shard_key(image_id) % self.count == self.index

    @property
    def tag(self) -> str:
        return "" if self.count == 1 else f".shard{self.index:04d}-of-{self.count:04d}"

    def record_file(self, dataset_dir: Path, kind: str) -> Path:
        return dataset_dir / f"{kind}{self.tag}.jsonl"

    def lock_file(self, dataset_dir: Path) -> Path:
        return dataset_dir / f".lock{self.tag}"

    def hashes_file(self, dataset_dir: Path) -> Path:
        return dataset_dir / f"{SOURCE_HASHES}{self.tag}.json"


def record_files(dataset_dir: Path, kind: str) -> list[Path]:
    """Every shard's file of one kind (`manifest` or `failures`)."""
    return sorted(dataset_dir.glob(f"{kind}*.jsonl"))


def read_rows(dataset_dir: Path, kind: str = MANIFEST) -> dict[str, dict]:
    """All rows of one kind across shards, keyed by id (the last row of an id wins)."""
    rows: dict[str, dict] = {}
    for path in record_files(dataset_dir, kind):
        for row in read_jsonl(path):
            rows[row["id"]] = row
    return rows


def pair_paths(dataset_dir: Path, image_id: str) -> tuple[Path, Path]:
    return (dataset_dir / ORIGINAL / f"{image_id}.jpg", dataset_dir / AI / f"{image_id}.jpg")


def pair_on_disk(dataset_dir: Path, image_id: str) -> bool:
    return all(path.exists() for path in pair_paths(dataset_dir, image_id))


def is_jpg_file(entry: os.DirEntry) -> bool:
    """A pair's file: `<id>.jpg`, a file (a link to one too, as `Path.exists` counted it; not a dangling link)."""
    return entry.name.endswith(".jpg") and entry.is_file()


def paired_ids(dataset_dir: Path) -> set[str]:
    """Ids with both files on disk, from one listing of each half's folder: a resume checks every row more than
    once, and two stats per row are most of its start at 200,000 pairs."""

    def ids(folder: str) -> set[str]:
        try:
            with os.scandir(dataset_dir / folder) as entries:
                return {entry.name.removesuffix(".jpg") for entry in entries if is_jpg_file(entry)}
        except FileNotFoundError:
            return set()

    return ids(ORIGINAL) & ids(AI)


def done_rows(dataset_dir: Path) -> dict[str, dict]:
    """Manifest rows (any shard) whose two files are still there; nothing when the dir does not exist yet."""
    if not dataset_dir.is_dir():
        return {}
    paired = paired_ids(dataset_dir)
    return {key: row for key, row in read_rows(dataset_dir, MANIFEST).items() if key in paired}


def rows_with_files(dataset_dir: Path, rows: dict[str, dict]) -> dict[str, dict]:
    """The rows whose two image files, at the paths the rows name, are files on disk: from one listing of each half's
    folder, as paired_ids; a path elsewhere (a dir made by hand with its own layout) is looked up on its own."""
    listed = set()
    for half in HALVES:
        try:
            with os.scandir(dataset_dir / half) as entries:
                listed.update(f"{half}/{entry.name}" for entry in entries if entry.is_file())
        except FileNotFoundError:
            pass

    def on_disk(relative: object) -> bool:
        return isinstance(relative, str) and (relative in listed or (dataset_dir / relative).is_file())

    return {key: row for key, row in rows.items() if on_disk(row.get(ORIGINAL)) and on_disk(row.get(AI))}


def is_dataset_dir(path: Path) -> bool:
    """A dataset dir is recognised by its dataset.json."""
    return (path / DATASET_JSON).is_file()


def read_record(dataset_dir: Path) -> dict | None:
    """The dir's dataset.json, or None when there is none."""
    path = dataset_dir / DATASET_JSON
    if not is_dataset_dir(dataset_dir):
        return None
    return read_json_object(path, "it was changed outside aigen")


@dataclass(frozen=True)
class DatasetDir:
    """One dataset dir as the tools read it: its dataset.json and its manifest rows by id."""

    path: Path
    record: dict
    rows: dict[str, dict]

    @property
    def name(self) -> str:
        return self.path.name

    def image_path(self, image_id: str, half: str) -> Path:
        return self.path / self.rows[image_id][half]

    @cached_property
    def state(self) -> dict[str, str]:
        """Which dataset this is and which pairs it holds (its fingerprint and a hash of its sorted pair ids): what a
        measurement of the dir (an audit) records, so that it is only ever shown beside the pairs it measured."""
        ids = hashlib.sha256("\n".join(sorted(self.rows)).encode()).hexdigest()
        return {"fingerprint": self.record.get("fingerprint"), "pair_ids_sha256": ids}


def check_dataset_dir(path: Path) -> None:
    """One line when `path` is no dataset dir, naming the dataset dirs inside it when it holds some (a tool given
    `data/processed` instead of one of its dirs)."""
    if not path.is_dir():
        raise UserError(f"{path} is not a directory")
    if not is_dataset_dir(path):
        with os.scandir(path) as entries:
            inside = sorted(e.name for e in entries if e.is_dir() and is_dataset_dir(Path(e.path)))
        more = ", ..." if len(inside) > 3 else ""
        hint = f"; it holds {counted(len(inside), 'dataset dir')}: {', '.join(inside[:3])}{more}" if inside else ""
        raise UserError(f"{path} is not an aigen dataset dir (no {DATASET_JSON}){hint}")


def open_dataset(path: Path, need_pairs: bool = True) -> DatasetDir:
    """Recognise and read a dataset dir (by its dataset.json), or say in one line why it is not one, or not whole
    (a manifest row whose image files are gone: what reads the dir would count or show a pair that is not there)."""
    check_dataset_dir(path)
    record = read_record(path)
    rows = read_rows(path, MANIFEST)
    if need_pairs and not rows:
        raise UserError(f"{path} has no pairs in its manifest yet")
    without_files = sorted(rows.keys() - rows_with_files(path, rows).keys())
    if without_files:
        raise UserError(
            f"{path}: {counted(len(without_files), 'manifest row')} without both image files (e.g. "
            f"{without_files[0]}); python -m aigen.verify lists them, a rerun of the factory makes them again"
        )
    return DatasetDir(path.resolve(), record, rows)
