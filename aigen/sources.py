"""Sources find the photos to pair: a folder tree scanned recursively, each photo given a stable id."""

from __future__ import annotations

import hashlib
import importlib.resources
import io
import os
import warnings
from collections import defaultdict
from collections.abc import Hashable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import BinaryIO, Protocol

from hydra.utils import to_absolute_path
from PIL import Image

from aigen.dataset import AI, ORIGINAL, is_dataset_dir
from aigen.errors import SkipImage, UserError
from aigen.files import OUTPUT_MARK
from aigen.hash_cache import HashCache
from aigen.words import counted

# Formats Pillow can open that hold data or documents rather than photos (or that it only identifies).
NOT_PHOTO_FORMATS = frozenset({"BUFR", "EPS", "FITS", "GRIB", "HDF5", "IPTC", "MPEG", "PDF", "WMF"})
# Extensions taken as photos without opening them (the common case stays a plain directory walk); any other file
# is opened once to see whether Pillow recognises its content.
PHOTO_EXTENSIONS = frozenset(
    extension
    for extension, image_format in Image.registered_extensions().items()
    if image_format in Image.OPEN and image_format not in NOT_PHOTO_FORMATS
)
APPLE_DOUBLE_PREFIX = "._"  # macOS resource forks in some archive mirrors: metadata, not photos
HIDDEN_PREFIX = "."  # hidden files and folders: thumbnails, trash, version control, temporaries; never an id's start
# The longest id: its files, temporaries and markers (`.<id>.replacing.shard0000-of-0000`, 29 bytes more) stay
# within the file system's 255-byte names.
MAX_ID_BYTES = 220
DIGEST_CHARS = 8  # of the hash that tells apart ids that collide or were cut
EXAMPLES_KEPT = 5
HASH_CHUNK = 64  # photos per task of the hashing threads


class Container(Protocol):
    """Where photos live that are not files of their own: a dataset's rows, a tar shard's members, a Parquet file's
    rows. Items keep only a reference (`member`); the bytes are read when the photo is hashed or prepared, so
    memory does not grow with the collection."""

    def read(self, member: Hashable) -> bytes:
        """The photo's exact bytes; SkipImage (stage `read`) when the row has none (an empty cell, a vanished
        shard), so that a bad row is a recorded skip."""
        ...

    def stamp(self, member: Hashable) -> tuple[int, int] | None:
        """(size, mtime_ns) of the file(s) holding the member, for the hash cache; None when it cannot be known."""
        ...


@dataclass(frozen=True)
class SourceItem:
    """One source photo: `id` names its output files, `source` says where it came from (its path relative to
    the source root, or its container and row). A photo in a container is `member` of `container`, and `path`
    is the container's file."""

    id: str
    path: Path
    source: str
    category: str
    sha256: str = ""  # of the photo's exact bytes, filled in by `with_hashes` for the selected photos
    container: Container | None = field(default=None, compare=False)
    member: Hashable = None

    def photo_file(self) -> Path | BinaryIO:
        """What Pillow opens: the photo's own file, or its bytes read from the container (SkipImage when they
        cannot be read)."""
        if self.container is None:
            return self.path
        return io.BytesIO(self.container.read(self.member))

    def sha256_of_bytes(self) -> str:
        """The hash of the photo's exact bytes, the same for a photo in a folder and in any container; "" when
        they cannot be read (the loader then records why)."""
        if self.container is None:
            return file_sha256(self.path)
        try:
            return hashlib.sha256(self.container.read(self.member)).hexdigest()
        except SkipImage:
            return ""

    def stamp(self) -> tuple[int, int] | None:
        """(size, mtime_ns) of the file holding the photo: a hash cached under another stamp is stale."""
        if self.container is not None:
            return self.container.stamp(self.member)
        try:
            stat = os.stat(self.path)
        except OSError:
            return None
        return (stat.st_size, stat.st_mtime_ns)

    def cache_key(self) -> str:
        return str(self.path) if self.container is None else f"{self.path}::{self.member}"


def file_sha256(path: Path) -> str:
    """The source photo's identity: a changed file under a known name is a different photo. Unreadable files hash
    to "" and are recorded when the loader fails on them."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    except OSError:
        return ""
    return digest.hexdigest()


def with_hashes(items: list[SourceItem], workers: int, cache: HashCache | None = None) -> list[SourceItem]:
    """The items with their `sha256`, on `workers` threads (hashlib releases the GIL). A `cache` gives the hash of
    a photo whose file is unchanged (same size and mtime) without reading it; items that already carry a hash
    (a streaming source hashes as it lists) keep it."""
    cache = cache if cache is not None else HashCache()

    def sha256(item: SourceItem) -> str:
        if item.sha256:
            return item.sha256
        key, stamp = item.cache_key(), item.stamp()  # the stamp before the read: a file changed meanwhile is redone
        digest = cache.lookup(key, stamp)
        if digest is None:
            digest = item.sha256_of_bytes()
            if digest and stamp is not None:
                cache.store(key, stamp, digest)
        return digest

    def sha256s(chunk: list[SourceItem]) -> list[str]:
        return [sha256(item) for item in chunk]

    # In chunks: a cache hit costs one stat, less than handing it to a thread.
    chunks = [items[start : start + HASH_CHUNK] for start in range(0, len(items), HASH_CHUNK)]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hash") as pool:
        digests = [digest for chunk in pool.map(sha256s, chunks) for digest in chunk]
    return [replace(item, sha256=digest) for item, digest in zip(items, digests, strict=True)]


def cell_bytes(value: object, where: str) -> bytes:
    """A photo cell of a table: bytes, or `{bytes, path}` as `datasets` stores images (a cell with only a path is
    read from that file when it exists). SkipImage for an empty cell."""
    data = value.get("bytes") if isinstance(value, dict) else value
    if data:
        return data
    path = value.get("path") if isinstance(value, dict) else None
    if path and os.path.isfile(path):
        with open(path, "rb") as handle:
            return handle.read()
    raise SkipImage("read", f"{where} has no image bytes" + (f" (only a path: {path})" if path else ""))


def is_image_file(path: Path) -> bool:
    """Whether Pillow recognises the file's content as a photo (the header only: nothing is decoded)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as image:
                return image.format not in NOT_PHOTO_FORMATS
    except Exception:  # noqa: BLE001 - anything Pillow cannot identify is simply not a photo
        return False


# What was ignored (dataset.json's keys) and its name for one file.
ONE_IGNORED = {
    "files that are not images": "file that is not an image",
    "macOS resource forks (._*)": "macOS resource fork (._*)",
    "hidden files and folders (.*)": "hidden file or folder (.*)",
    "aigen dataset dirs (dataset.json)": "aigen dataset dir (dataset.json)",
    "aigen and Hydra output folders": "aigen or Hydra output folder",
}


@dataclass
class Ignored:
    """Files of the source folder that are not photos: counted, with a few examples for the summary."""

    count: int = 0
    examples: list[str] = field(default_factory=list)

    def add(self, path: str) -> None:
        self.count += 1
        if len(self.examples) < EXAMPLES_KEPT:
            self.examples.append(path)


def flat_id(relative_path: str) -> str:
    """`living_room/patio.jpg` -> `living_room_patio`."""
    return os.path.splitext(relative_path)[0].replace(os.sep, "_").replace("/", "_")


def as_utf8(text: str, errors: str) -> str:
    """`text` as valid UTF-8: a file name that is not UTF-8 is listed with lone surrogates (surrogateescape), which
    JSON readers and UTF-8 writers refuse; `errors` says what its bytes become."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", errors)


def source_digest(item: SourceItem) -> str:
    """A short hash of the photo's `source` as listed (a name that is not UTF-8 by its own bytes)."""
    return hashlib.sha1(item.source.encode("utf-8", "surrogateescape")).hexdigest()[:DIGEST_CHARS]


def with_unique_ids(items: list[SourceItem]) -> list[SourceItem]:
    """The items sorted by id, every id a file name that file systems, `datasets` and aigen.verify keep, and every
    text valid UTF-8.

    Bytes that are not UTF-8 become `_` in an id and a backslash escape in `source` and `category`; the photo is
    still read from its `path`. An id's leading "." becomes `_`, since readers skip hidden files. Ids that collide
    (case-insensitively, as on macOS) all get a short hash of their `source`, and so does an id cut to
    MAX_ID_BYTES. Suffixing every member of a collision, not all but the first, keeps an id independent of which
    other photos happen to sort before it.
    """
    by_key: dict[str, list[SourceItem]] = defaultdict(list)
    for item in items:
        image_id = as_utf8(item.id, "replace").replace("\ufffd", "_")
        if image_id.startswith(HIDDEN_PREFIX):
            image_id = "_" + image_id[1:]
        by_key[image_id.lower()].append(replace(item, id=image_id))
    unique = []
    for group in by_key.values():
        for item in group:
            image_id = f"{item.id}-{source_digest(item)}" if len(group) > 1 else item.id
            if len(image_id.encode("utf-8")) > MAX_ID_BYTES:
                kept = image_id.encode("utf-8")[: MAX_ID_BYTES - 1 - DIGEST_CHARS].decode("utf-8", "ignore")
                image_id = f"{kept}-{source_digest(item)}"
            source, category = (as_utf8(text, "backslashreplace") for text in (item.source, item.category))
            unique.append(replace(item, id=image_id, source=source, category=category))
    return sorted(unique, key=lambda item: item.id)


class Source:
    """What every source has: `name` names the dataset dir, `identity` (which photos) and `reading` (how a photo's
    bytes and id are taken from them) go into its fingerprint, and `ignored` counts what was found but is not a
    photo (said once in the summary)."""

    def __init__(self, name: str, identity: str, reading: dict[str, str | None] | None = None) -> None:
        self.name = name
        self.identity = identity
        # Only the settings given (or not at their default): datasets made before `reading` keep their fingerprint.
        self.reading = {key: value for key, value in (reading or {}).items() if value is not None}
        self.ignored: dict[str, Ignored] = defaultdict(Ignored)

    def ignored_line(self) -> str:
        """`ignored 3 files that are not images (e.g. a.txt, b.csv)`, or "" when nothing was ignored."""
        parts = [
            f"{counted(ignored.count, ONE_IGNORED.get(why, why), why)} (e.g. {', '.join(ignored.examples)})"
            for why, ignored in self.ignored.items()
        ]
        return "ignored " + "; ".join(parts) if parts else ""

    def items(self) -> list[SourceItem]:
        raise NotImplementedError


def columns_read(image_column: str, id_column: str | None) -> dict[str, str | None]:
    """A table source's `reading`: its image column when not the default `image`, its id column when set."""
    return {"image_column": None if image_column == "image" else image_column, "id_column": id_column}


def is_aigen_dataset(folder: Path) -> bool:
    """A dataset dir aigen wrote (its dataset.json beside original/ and ai/): other collections ship a dataset.json
    of their own, and their photos are photos."""
    return is_dataset_dir(folder) and (folder / ORIGINAL).is_dir() and (folder / AI).is_dir()


def is_output_folder(folder: Path) -> bool:
    """A folder an aigen tool wrote (its OUTPUT_MARK) or a Hydra run dir (`.hydra/`: a run's preview.png)."""
    return (folder / OUTPUT_MARK).is_file() or (folder / ".hydra").is_dir()


class FolderSource(Source):
    """Every photo below `root`, found recursively and recognised by content: files with a photo extension
    (case-insensitive) are taken, any other file is opened once to see whether Pillow can read it.

    Symlinked folders are followed once (a loop cannot hang the scan); broken symlinks are kept as items so
    that loading them records a reason instead of losing them silently. Hidden files and folders (`.thumbs/`,
    `.Trash/`, `.git/`) are ignored and counted, as a file browser and `datasets`' imagefolder hide them: they hold
    thumbnails, deleted or duplicate copies rather than the collection. So is an aigen dataset dir below `root`
    (a folder with a dataset.json), and a folder an aigen tool or a Hydra run wrote (a report's copied pairs, a
    run's preview), so that generated images never come back as originals.

    `name` (default: the folder's own name) names the dataset dir; `identity` (default: the folder's absolute
    path) goes into the dataset's fingerprint, so that two folders never merge into one dataset dir unless they
    are given the same identity on purpose (e.g. a copy of the photos moved elsewhere).
    """

    def __init__(self, root: str, name: str | None = None, identity: str | None = None, missing_hint: str = "") -> None:
        if root is None or str(root).strip() == "":
            raise UserError("source.root is not set: source=folder needs source.root=/path/to/photos")
        self.root = Path(to_absolute_path(os.path.expanduser(str(root))))
        super().__init__(name or self.root.name or "root", identity or str(self.root))
        self.missing_hint = missing_hint

    def items(self) -> list[SourceItem]:
        if not self.root.is_dir():
            if self.root.exists():
                raise UserError(f"source.root={self.root} is not a folder (source=folder reads a folder of photos)")
            hint = f" ({self.missing_hint})" if self.missing_hint else ""
            raise UserError(f"source folder {self.root} does not exist{hint}")
        if self.root.name == AI and is_aigen_dataset(self.root.parent):
            raise UserError(f"source.root={self.root} holds the AI images of an aigen dataset dir, not photos")
        if is_aigen_dataset(self.root) or is_output_folder(self.root):
            made_by = "an aigen dataset dir" if is_aigen_dataset(self.root) else "an aigen or Hydra output folder"
            raise UserError(
                f"source.root={self.root} is {made_by}: its images are aigen's, not photos; "
                "point source.root at the photos"
            )
        items = []
        for path in self._image_files():
            relative = path.relative_to(self.root).as_posix()
            category = relative.split("/")[0] if "/" in relative else ""
            items.append(SourceItem(id=flat_id(relative), path=path, source=relative, category=category))
        if not items:
            raise UserError(f"no images found under {self.root} ({self.ignored_line() or 'the folder is empty'})")
        return with_unique_ids(items)

    def _image_files(self) -> list[Path]:
        found = []
        visited_dirs: set[tuple[int, int]] = set()
        for folder, dirnames, filenames in os.walk(self.root, followlinks=True):
            try:
                stat = os.stat(folder)
            except OSError:
                dirnames.clear()
                continue
            if (stat.st_dev, stat.st_ino) in visited_dirs:
                dirnames.clear()
                continue
            visited_dirs.add((stat.st_dev, stat.st_ino))
            # Never the root: items refuses a root that aigen made, before walking it.
            if is_aigen_dataset(Path(folder)):
                self.ignored["aigen dataset dirs (dataset.json)"].add(f"{self._relative(Path(folder))}/")
                dirnames.clear()
                continue
            if is_output_folder(Path(folder)):
                self.ignored["aigen and Hydra output folders"].add(f"{self._relative(Path(folder))}/")
                dirnames.clear()
                continue
            for dirname in sorted(name for name in dirnames if name.startswith(HIDDEN_PREFIX)):
                self.ignored["hidden files and folders (.*)"].add(f"{self._relative(Path(folder) / dirname)}/")
            dirnames[:] = sorted(name for name in dirnames if not name.startswith(HIDDEN_PREFIX))
            for filename in sorted(filenames):
                path = Path(folder) / filename
                if filename.startswith(APPLE_DOUBLE_PREFIX):
                    self.ignored["macOS resource forks (._*)"].add(self._relative(path))
                elif filename.startswith(HIDDEN_PREFIX):
                    self.ignored["hidden files and folders (.*)"].add(self._relative(path))
                elif os.path.splitext(filename)[1].lower() in PHOTO_EXTENSIONS or is_image_file(path):
                    found.append(path)
                else:
                    self.ignored["files that are not images"].add(self._relative(path))
        return found

    def _relative(self, path: Path) -> str:
        """`path` as the summary names it: relative to the root, valid UTF-8."""
        return as_utf8(path.relative_to(self.root).as_posix(), "backslashreplace")


class SampleSource(FolderSource):
    """Real photos shipped inside an installed package (scikit-image), so demos and tests need no download."""

    def __init__(self, package: str, files: list[str], name: str = "samples") -> None:
        root = importlib.resources.files(package)
        super().__init__(root=str(root), name=name, identity=f"package {package}")
        self.files = list(files)

    def _image_files(self) -> list[Path]:
        missing = [name for name in self.files if not (self.root / name).is_file()]
        if missing:
            raise UserError(f"sample photos {missing} are not in {self.root}; reinstall with `make install`")
        return [self.root / name for name in self.files]
