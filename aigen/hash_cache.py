"""The source hashes of a dataset dir, kept between starts: a start reads only the photos whose file changed.

Each photo's hash is stored under its location (a path, or a container's path and member) with the (size,
mtime_ns) of the file holding it; another stamp means another file, hashed again. Every shard writes its own file
(`source_hashes.json`, or `source_hashes.shard0001-of-0004.json`) and reads them all, so shards never write into
one file, and a start after a change of shard count still finds what the others hashed. A file that cannot be
read is ignored with a note: the cache only ever saves reading.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from aigen.dataset.layout import SOURCE_HASHES, Shard
from aigen.files import write_atomic

log = logging.getLogger(__name__)

VERSION = 1


def cache_files(dataset_dir: Path) -> list[Path]:
    return sorted(dataset_dir.glob(f"{SOURCE_HASHES}*.json"))


class HashCache:
    """Hashes by location and stamp. `lookup` and `store` are safe from several threads (single dict operations
    under the GIL). Without a dataset dir it remembers nothing across starts."""

    def __init__(self, dataset_dir: Path | None = None, shard: Shard | None = None) -> None:
        self.path = (shard or Shard()).hashes_file(dataset_dir) if dataset_dir else None
        self.known: dict[str, list] = {}  # [size, mtime_ns, sha256] by location, from every shard's file
        self.used: dict[str, list] = {}  # what this start looked up or hashed: the file this shard writes
        for path in cache_files(dataset_dir) if dataset_dir and dataset_dir.is_dir() else []:
            self.known.update(self._load(path))

    @staticmethod
    def _load(path: Path) -> dict[str, list]:
        try:
            data = json.loads(path.read_text())
            if data.get("version") != VERSION or not isinstance(data.get("hashes"), dict):
                raise ValueError(f"not a version {VERSION} hash cache")
            return data["hashes"]
        except (OSError, ValueError, AttributeError) as error:
            print(f"note: ignoring the source hash cache {path} ({error}); the photos are hashed again")
            return {}

    def lookup(self, location: str, stamp: tuple[int, int] | None) -> str | None:
        entry = self.known.get(location)
        if stamp is None or not isinstance(entry, list) or len(entry) != 3 or tuple(entry[:2]) != tuple(stamp):
            return None
        self.used[location] = entry
        return entry[2]

    def store(self, location: str, stamp: tuple[int, int], sha256: str) -> None:
        self.used[location] = [*stamp, sha256]

    def save(self) -> None:
        """Write this shard's file atomically; call it only once the run really starts (its dataset dir exists)."""
        if self.path is not None:
            write_atomic(self.path, json.dumps({"version": VERSION, "hashes": self.used}).encode())
