"""Files that a kill cannot leave half-written: atomic replacement, and JSONL records that are safe to append."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from aigen.errors import UserError

OUTPUT_MARK = ".aigen-output"  # a hidden file in every folder aigen's tools write: folder sources skip the folder


def mark_as_output(folder: Path, tool: str) -> None:
    """Mark `folder` as `tool`'s output, so that a photo folder holding it never reads its images (a report's copied
    pairs, an audit's plot, a detector's heatmaps) as photos."""
    (folder / OUTPUT_MARK).write_text(f"written by {tool}: aigen's folder sources skip this folder\n", encoding="utf-8")


def claim_output(folder: Path, tool: str) -> None:
    """Create `folder` and mark it as `tool`'s output, unless it already holds files and no mark: a folder of the
    user's (of photos, maybe) is written into but never hidden from a folder source."""
    taken = folder.is_dir() and any(folder.iterdir())
    folder.mkdir(parents=True, exist_ok=True)
    if not taken or (folder / OUTPUT_MARK).is_file():
        mark_as_output(folder, tool)


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


def read_jsonl(path: Path) -> Iterator[dict]:
    """Rows of one JSONL file; a torn last line (a run killed mid-write) is ignored, not fatal. Any other line that
    is not a row with an id was changed outside aigen: one line naming it, since no count made past it is exact."""
    with open(path, "rb") as handle:
        for number, data in enumerate(handle, start=1):
            if not data.endswith(b"\n"):
                return
            try:
                row = json.loads(data.decode("utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError) as error:
                reason = error.msg if isinstance(error, json.JSONDecodeError) else "not UTF-8"
                raise UserError(f"{path} line {number} is not a JSON row ({reason}); mend or remove it") from None
            if not isinstance(row, dict) or "id" not in row:
                raise UserError(f"{path} line {number} is not a row with an id; mend or remove it")
            yield row


def read_json_object(path: Path, remedy: str) -> dict:
    """A JSON file that holds an object (dataset.json, audit.json); one line naming it and `remedy` when it does
    not."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise UserError(f"{path} is not valid JSON ({error}); {remedy}") from None
    if not isinstance(value, dict):
        raise UserError(f"{path} is not a JSON object; {remedy}")
    return value


def last_row_per_id(rows: Iterable[dict]) -> dict[str, dict]:
    """Rows keyed by id, the last row of an id winning, in the order ids were last written."""
    latest: dict[str, dict] = {}
    for row in rows:
        latest.pop(row["id"], None)
        latest[row["id"]] = row
    return latest


def compact(path: Path, keep: Callable[[dict], bool]) -> None:
    """Rewrite a JSONL file atomically with the last row of each id that `keep` accepts (when that changes it). The
    file is in JsonlAppender's form (one `json.dumps(row, sort_keys=True)` per line), so a file with no id twice,
    none dropped and no torn line already is its compaction."""
    if not path.exists():
        return
    rows = list(read_jsonl(path))
    kept = [row for row in last_row_per_id(rows).values() if keep(row)]
    if len(kept) == len(rows) and ends_whole(path):
        return
    data = "".join(json.dumps(row, sort_keys=True) + "\n" for row in kept).encode()
    if data != path.read_bytes():
        write_atomic(path, data)


def ends_whole(path: Path) -> bool:
    """Empty, or its last line ends with a newline (a killed writer leaves a torn one)."""
    with open(path, "rb") as handle:
        if handle.seek(0, os.SEEK_END) == 0:
            return True
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) == b"\n"


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


@contextmanager
def folder_replaced_whole(out: Path) -> Iterator[Path]:
    """A fresh hidden folder beside `out` to build in: it takes the place of `out` (absent, empty or a previous
    build) when the block ends, and is removed when the block fails, so `out` is never half-written."""
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    try:
        yield partial
        if out.exists():
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            out.rename(old)
            partial.rename(out)
            shutil.rmtree(old)
        else:
            partial.rename(out)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
