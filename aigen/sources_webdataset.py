"""source=webdataset: tar shards as img2dataset writes them (`KEY.jpg` beside `KEY.json`, `KEY.txt`), read in place.

webdataset names the shards (brace notation, `::` between lists) and says how member names group into samples;
one pass over each shard's tar headers (`tarfile` seeks over the data) notes where each photo's bytes lie, and
they are read from there when the photo is hashed or prepared: a start reads no image it does not need.
"""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

from hydra.utils import to_absolute_path
from webdataset.shardlists import expand_urls
from webdataset.tariterators import base_plus_ext, meta_prefix

from aigen.errors import SkipImage, UserError
from aigen.sources import PHOTO_EXTENSIONS, Source, SourceItem, with_unique_ids

REMOTE_PREFIXES = ("pipe:", "http://", "https://", "s3://", "gs://", "hf://")
UNREAD = "shards that could not be read to the end"


class TarShard:
    """One shard's photo members by name, with where their bytes start and how many there are."""

    def __init__(self, path: Path) -> None:
        self.path = path
        stat = os.stat(path)
        self.size_and_mtime = (stat.st_size, stat.st_mtime_ns)
        self.extents: dict[str, tuple[int, int]] = {}

    def read(self, member: str) -> bytes:
        if member not in self.extents:
            raise SkipImage("read", f"sample {member} of {self.path.name} has no photo member")
        offset, size = self.extents[member]
        try:
            with open(self.path, "rb") as handle:
                handle.seek(offset)
                data = handle.read(size)
        except OSError as error:
            raise SkipImage("read", f"cannot read {self.path.name}: {error}") from None
        if len(data) != size:
            raise SkipImage("read", f"{self.path.name} ends inside {member} (truncated shard?)")
        return data

    def stamp(self, member: str) -> tuple[int, int]:
        return self.size_and_mtime


def photo_extension(extension: str) -> bool:
    """`jpg`, `JPEG`, `seg.png`: the member is a photo when its last extension is one."""
    return f".{extension.rsplit('.', 1)[-1].lower()}" in PHOTO_EXTENSIONS


class WebDatasetSource(Source):
    """Every sample of local tar shards, one photo each: the first member whose extension is a photo's, or the
    member with `extension` (e.g. `jpg`) when a sample holds several photos. The sample's key is its id."""

    def __init__(
        self, urls: str | list[str], name: str | None = None, identity: str | None = None, extension: str | None = None
    ) -> None:
        if not urls:
            raise UserError("source.urls is not set: source=webdataset needs source.urls='/data/{00000..00009}.tar'")
        expanded = expand_urls(urls) if isinstance(urls, str) else [str(url) for url in urls]
        remote = [url for url in expanded if url.startswith(REMOTE_PREFIXES)]
        if remote:
            raise UserError(f"source.urls: {remote[0]} is not a local file; shards are read in place, copy them first")
        self.shards = [Path(to_absolute_path(os.path.expanduser(url.removeprefix("file:")))) for url in expanded]
        first = self.shards[0]
        pattern = urls if isinstance(urls, str) else "::".join(str(url) for url in urls)
        absolute = "::".join(to_absolute_path(os.path.expanduser(part)) for part in pattern.split("::"))
        super().__init__(name or first.parent.name or "webdataset", identity or absolute, {"extension": extension})
        self.extension = extension

    def items(self) -> list[SourceItem]:
        missing = [str(shard) for shard in self.shards if not shard.is_file()]
        if missing:
            raise UserError(f"{len(missing)} of {len(self.shards)} webdataset shards do not exist (e.g. {missing[0]})")
        items = []
        for path in self.shards:
            items += self._samples(TarShard(path))
        if not items:
            unread = self.ignored.get(UNREAD)
            why = f": {unread.examples[0]}" if unread else ""
            raise UserError(f"no samples in {len(self.shards)} webdataset shard(s) ({self.shards[0]}, ...){why}")
        return with_unique_ids(items)

    def _samples(self, shard: TarShard) -> list[SourceItem]:
        """One item per sample key, in shard order; a sample without a photo is kept, so that it is a recorded skip."""
        photos: dict[str, str] = {}  # key -> member name of its photo ("" while none was seen)
        try:
            with tarfile.open(shard.path, mode="r:") as tar:
                for info in tar:
                    key, extension = base_plus_ext(info.name)
                    if not info.isreg() or key is None or os.path.basename(key).startswith(meta_prefix):
                        continue
                    wanted = extension == self.extension if self.extension else photo_extension(extension)
                    if wanted and not photos.get(key):
                        photos[key] = info.name
                        shard.extents[info.name] = (info.offset_data, info.size)
                    else:
                        photos.setdefault(key, "")
                    tar.members = []  # headers are not kept: memory stays flat however large the shard
        except (OSError, tarfile.TarError) as error:
            self.ignored[UNREAD].add(f"{shard.path.name} ({error})")
        return [
            SourceItem(
                id=key.removeprefix("./").replace("/", "_"),  # tar -C dir . packs ./000.jpg
                path=shard.path,
                source=f"{shard.path.name}/{key}",
                category="",
                container=shard,
                member=member or key,
            )
            for key, member in photos.items()
        ]
