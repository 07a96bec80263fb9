"""PairWriter: writes pairs atomically and records each in the shard's manifest only once both files exist."""

from __future__ import annotations

import errno
import fcntl
import os
import socket
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from PIL import Image

from aigen.errors import UserError
from aigen.preprocess import JpegSettings
from aigen.records import FAILURES, MANIFEST, JsonlAppender, Shard, read_rows, repair_torn_tail
from aigen.workers import lower_priority

ORIGINAL, AI = "original", "ai"


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

    Pairs are encoded and written (with their fsyncs) in order on one background thread, so that disk waits
    overlap generation; at most MAX_PENDING pairs wait, and a write error surfaces at the next call or `flush`.
    """

    MAX_PENDING = 32

    def __init__(self, dataset_dir: Path, shard: Shard, jpeg: JpegSettings) -> None:
        self.dataset_dir = dataset_dir
        self.shard = shard
        self.jpeg = jpeg
        self._lock = DirLock(dataset_dir / f".lock{shard.tag}", what=f"{dataset_dir} (shard {shard.index})")
        self._manifest: JsonlAppender | None = None
        self._failures: JsonlAppender | None = None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="writer", initializer=lower_priority)
        self._pending: deque[Future] = deque()

    def __enter__(self) -> PairWriter:
        for folder in (ORIGINAL, AI):
            (self.dataset_dir / folder).mkdir(parents=True, exist_ok=True)
        self._lock.__enter__()
        self._remove_own_temporaries()
        manifest_path = self.shard.record_file(self.dataset_dir, MANIFEST)
        failures_path = self.shard.record_file(self.dataset_dir, FAILURES)
        for path in (manifest_path, failures_path):
            repair_torn_tail(path)
        self._manifest = JsonlAppender(manifest_path)
        self._failures = JsonlAppender(failures_path)
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
            self._lock.__exit__()

    def _remove_own_temporaries(self) -> None:
        """Temporaries of a killed run of this shard; other shards' temporaries may be in use and stay."""
        for folder in (ORIGINAL, AI):
            for tmp in (self.dataset_dir / folder).glob(f".*{self.shard.tag}.tmp"):
                tmp.unlink(missing_ok=True)

    def pair_paths(self, image_id: str) -> tuple[Path, Path]:
        return (self.dataset_dir / ORIGINAL / f"{image_id}.jpg", self.dataset_dir / AI / f"{image_id}.jpg")

    def done_ids(self) -> set[str]:
        """Ids with a manifest row (any shard) whose two files are still there."""
        return {
            image_id
            for image_id in read_rows(self.dataset_dir, MANIFEST)
            if all(path.exists() for path in self.pair_paths(image_id))
        }

    def write_pair(self, row: dict, original_jpeg: bytes, ai: Image.Image) -> None:
        """Queue a pair (the original already encoded with `self.jpeg`) for the writer thread; raises the error
        of an earlier write that failed."""
        while self._pending and self._pending[0].done():
            self._pending.popleft().result()
        self._pending.append(self._pool.submit(self._write_pair_now, row, original_jpeg, ai))
        while len(self._pending) > self.MAX_PENDING:
            self._pending.popleft().result()

    def flush(self) -> None:
        """Wait until every queued pair is on disk and in the manifest; raises the first write error."""
        while self._pending:
            self._pending.popleft().result()

    def _write_pair_now(self, row: dict, original_jpeg: bytes, ai: Image.Image) -> None:
        """Both images renamed into place first, then the manifest row: a row always means a whole pair."""
        original_path, ai_path = self.pair_paths(row["id"])
        write_atomic(original_path, original_jpeg, self.shard.tag)
        write_atomic(ai_path, self.jpeg.encode(ai), self.shard.tag)
        self._manifest.append({**row, ORIGINAL: f"{ORIGINAL}/{original_path.name}", AI: f"{AI}/{ai_path.name}"})

    def record_failure(self, image_id: str, source: str, stage: str, reason: str) -> None:
        self._failures.append({"id": image_id, "source": source, "stage": stage, "reason": reason})
