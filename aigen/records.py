"""The dataset dir's JSON records: per-shard manifest and failure files, merged on read, safe to append."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from aigen.seeding import shard_key

MANIFEST = "manifest"
FAILURES = "failures"


def write_atomic(path: Path, data: bytes, tmp_tag: str = "") -> None:
    """Write to a hidden temporary name, fsync, rename: readers see the old file or the whole new one."""
    tmp = path.with_name(f".{path.name}{tmp_tag}.tmp")
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


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


def record_files(dataset_dir: Path, kind: str) -> list[Path]:
    """Every shard's file of one kind (`manifest` or `failures`)."""
    return sorted(dataset_dir.glob(f"{kind}*.jsonl"))


def read_jsonl(path: Path) -> Iterator[dict]:
    """Rows of one JSONL file; a torn last line (a run killed mid-write) is ignored, not fatal."""
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if not line.endswith("\n"):
                return
            yield json.loads(line)


def read_rows(dataset_dir: Path, kind: str = MANIFEST) -> dict[str, dict]:
    """All rows of one kind across shards, keyed by id (the last row of an id wins)."""
    rows: dict[str, dict] = {}
    for path in record_files(dataset_dir, kind):
        for row in read_jsonl(path):
            rows[row["id"]] = row
    return rows


def last_row_per_id(path: Path) -> dict[str, dict]:
    """One file's rows keyed by id, the last row of an id winning, in the order ids were last written."""
    rows: dict[str, dict] = {}
    for row in read_jsonl(path):
        rows.pop(row["id"], None)
        rows[row["id"]] = row
    return rows


def compact(path: Path, keep: Callable[[dict], bool]) -> None:
    """Rewrite a JSONL file atomically with the last row of each id that `keep` accepts (when that changes it)."""
    if not path.exists():
        return
    rows = [row for row in last_row_per_id(path).values() if keep(row)]
    data = "".join(json.dumps(row, sort_keys=True) + "\n" for row in rows).encode()
    if data != path.read_bytes():
        write_atomic(path, data)


def repair_torn_tail(path: Path) -> bool:
    """Cut a partial last line left by a killed writer; True when something was cut."""
    if not path.exists():
        return False
    with open(path, "rb+") as handle:
        data = handle.read()
        if not data or data.endswith(b"\n"):
            return False
        handle.truncate(data.rfind(b"\n") + 1)
        return True


class JsonlAppender:
    """Appends one JSON object per line, flushed and fsynced, so a kill loses at most the line being written."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle = open(path, "a", encoding="utf-8")  # noqa: SIM115 - held open for the whole run

    def append(self, row: dict) -> None:
        self._handle.write(json.dumps(row, sort_keys=True) + "\n")
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def close(self) -> None:
        self._handle.close()
