"""PairWriter: writes pairs atomically and records each in the shard's manifest only once both files exist."""

from __future__ import annotations

import errno
import fcntl
import os
import socket
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from aigen.dataset.layout import (
    AI,
    FAILURES,
    MANIFEST,
    ORIGINAL,
    Shard,
    pair_on_disk,
    pair_paths,
    paired_ids,
    read_rows,
)
from aigen.errors import SkipImage, UserError
from aigen.files import JsonlAppender, compact, repair_torn_tail, write_atomic
from aigen.sources import SourceItem
from aigen.workers import lower_priority

REPLACING = ".replacing"  # `original/.<id>.replacing<shard tag>`: a pair of this id is being replaced


class DirLock:
    """An exclusive flock on a file: the kernel drops it when the holder dies, so a crash leaves no stale lock."""

    def __init__(self, path: Path, what: str) -> None:
        self.path = path
        self.what = what
        self._handle = None

    def __enter__(self) -> DirLock:
        handle = open(self.path, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise UserError(
                f"{self.what} is being written by another run ({holder}); wait for it to finish or choose "
                "another dataset_dir"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%d %H:%M:%S')}")
        handle.flush()
        self._handle = handle
        return self

    def __exit__(self, *exc_info) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


class PairWriter:
    """Owns one shard's files in a dataset dir: `original/<id>.jpg`, `ai/<id>.jpg`, manifest and failures.

    It writes bytes that the pair processing (aigen.pairing) made: pairs are written (with their fsyncs) in order
    on one background thread, so that disk waits overlap generation; at most MAX_PENDING pairs wait, and a write
    error surfaces at the next call or `flush`.

    The shard's record files are compacted when it opens (after a killed run) and when it closes cleanly: the
    manifest keeps one row per pair on disk (the latest), the failures file one row per photo that has no pair
    now (the latest reason), limited to `source_ids` (the shard's photos still in the source) when given.
    """

    MAX_PENDING = 32

    def __init__(self, dataset_dir: Path, shard: Shard, source_ids: set[str] | None = None) -> None:
        self.dataset_dir = dataset_dir
        self.shard = shard
        self.source_ids = source_ids
        self._lock = DirLock(shard.lock_file(dataset_dir), what=f"{dataset_dir} (shard {shard.index})")
        self._manifest: JsonlAppender | None = None
        self._failures: JsonlAppender | None = None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="writer", initializer=lower_priority)
        self._pending: deque[Future] = deque()

    def __enter__(self) -> PairWriter:
        for folder in (ORIGINAL, AI):
            (self.dataset_dir / folder).mkdir(parents=True, exist_ok=True)
        self._lock.__enter__()
        try:
            self._remove_own_temporaries()
            for path in self._record_paths():
                repair_torn_tail(path)
            self._compact()
            manifest_path, failures_path = self._record_paths()
            self._manifest = JsonlAppender(manifest_path)
            self._failures = JsonlAppender(failures_path)
        except BaseException:
            self._lock.__exit__()  # __exit__ is not called when __enter__ raises: release the lock here
            raise
        return self

    def __exit__(self, exc_type, *exc_info) -> None:
        try:
            if exc_type is None:
                self.flush()
            else:  # already failing: finish the whole pairs in hand, without masking the first error
                for future in self._pending:
                    future.exception()
        finally:
            self._pool.shutdown(wait=True)
            for appender in (self._manifest, self._failures):
                if appender is not None:
                    appender.close()
            try:
                if exc_type is None:
                    self._compact()
            finally:
                self._lock.__exit__()

    def _record_paths(self) -> tuple[Path, Path]:
        return self.shard.record_file(self.dataset_dir, MANIFEST), self.shard.record_file(self.dataset_dir, FAILURES)

    def _compact(self) -> None:
        """One manifest row per pair on disk; one failure row per photo of the source that has no pair now."""
        manifest_path, failures_path = self._record_paths()
        on_disk = paired_ids(self.dataset_dir)
        compact(manifest_path, lambda row: row["id"] in on_disk)
        if not failures_path.exists() or failures_path.stat().st_size == 0:
            return  # no failure rows: every shard's manifest need not be read
        paired = read_rows(self.dataset_dir, MANIFEST).keys() & on_disk  # done_rows' ids, any shard, listed once
        compact(
            failures_path,
            lambda row: row["id"] not in paired and (self.source_ids is None or row["id"] in self.source_ids),
        )

    def _remove_own_temporaries(self) -> None:
        """Temporaries of a killed run of this shard; other shards' temporaries may be in use and stay. A pair
        whose replacement was cut short loses both files, so that its old row (dropped by the compaction that
        follows) never describes a mix of the old and the new pair."""
        for marker in (self.dataset_dir / ORIGINAL).glob(f".*{REPLACING}{self.shard.tag}"):
            for path in pair_paths(self.dataset_dir, marker.name[1 : -len(REPLACING + self.shard.tag)]):
                path.unlink(missing_ok=True)
            marker.unlink()
        for folder in (ORIGINAL, AI):
            for tmp in (self.dataset_dir / folder).glob(f".*{self.shard.tag}.tmp"):
                tmp.unlink(missing_ok=True)

    def _replacing_marker(self, image_id: str) -> Path:
        return self.dataset_dir / ORIGINAL / f".{image_id}{REPLACING}{self.shard.tag}"

    def write_pair(self, row: dict, original_jpeg: bytes, encode_ai: Callable[[], bytes]) -> None:
        """Queue a pair for the writer thread: the original's JPEG bytes, and the call that makes the AI half's
        (run on the writer thread, so that encoding overlaps generation too). Raises the error of an earlier
        write that failed."""
        while self._pending and self._pending[0].done():
            self._pending.popleft().result()
        self._pending.append(self._pool.submit(self._write_pair_now, row, original_jpeg, encode_ai))
        while len(self._pending) > self.MAX_PENDING:
            self._pending.popleft().result()

    def flush(self) -> None:
        """Wait until every queued pair is on disk and in the manifest; raises the first write error."""
        while self._pending:
            self._pending.popleft().result()

    def _write_pair_now(self, row: dict, original_jpeg: bytes, encode_ai: Callable[[], bytes]) -> None:
        """Both images renamed into place first, then the manifest row: a row always means a whole pair.

        A pair that replaces an older one (its photo changed) is marked while it changes, and its old AI image goes
        first: a kill at any point leaves the old row without a whole pair (dropped when the shard next opens) or
        beside the new pair under the marker (removed then), never a new original beside an old AI image."""
        original_path, ai_path = pair_paths(self.dataset_dir, row["id"])
        ai_jpeg = encode_ai()
        marker = self._replacing_marker(row["id"]) if pair_on_disk(self.dataset_dir, row["id"]) else None
        if marker:
            marker.touch()
            ai_path.unlink()
        write_atomic(original_path, original_jpeg, self.shard.tag)
        write_atomic(ai_path, ai_jpeg, self.shard.tag)
        self._manifest.append({**row, ORIGINAL: f"{ORIGINAL}/{original_path.name}", AI: f"{AI}/{ai_path.name}"})
        if marker:
            marker.unlink()

    def record_failure(self, item: SourceItem, skip: SkipImage) -> None:
        """Record why a photo has no pair. A photo only fails when it was to be (re)made, so a pair still on disk
        under its id is a stale pair of the photo it replaced: it is removed, so that no pair of a photo that is
        no longer in the source stays in the dataset."""
        for path in pair_paths(self.dataset_dir, item.id):
            path.unlink(missing_ok=True)
        row = {"id": item.id, "source": item.source, "source_sha256": item.sha256}
        self._failures.append(skip.details | row | {"stage": skip.stage, "reason": skip.reason})
