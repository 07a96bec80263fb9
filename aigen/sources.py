"""Sources find the photos to pair: a folder tree scanned recursively, each photo given a stable id."""

from __future__ import annotations

import hashlib
import importlib.resources
import os
import warnings
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from hydra.utils import to_absolute_path
from PIL import Image

from aigen.errors import UserError
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
EXAMPLES_KEPT = 5


@dataclass(frozen=True)
class SourceItem:
    """One source photo: `id` names its output files, `source` is its path relative to the source root."""

    id: str
    path: Path
    source: str
    category: str
    sha256: str = ""  # of the file's bytes, filled in by `with_hashes` for the selected photos


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


def with_hashes(items: list[SourceItem], workers: int) -> list[SourceItem]:
    """The items with their `sha256`, hashed on `workers` threads (hashlib releases the GIL)."""
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hash") as pool:
        digests = list(pool.map(file_sha256, [item.path for item in items]))
    return [replace(item, sha256=digest) for item, digest in zip(items, digests, strict=True)]


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
    """`living_room/patio.jpg` -> `living_room_patio`; bytes that are not UTF-8 become `_`."""
    stem = os.path.splitext(relative_path)[0]
    readable = stem.encode("utf-8", "surrogateescape").decode("utf-8", "replace").replace("\ufffd", "_")
    return readable.replace(os.sep, "_").replace("/", "_")


def _with_unique_ids(candidates: list[tuple[str, Path, str]]) -> list[SourceItem]:
    """Give every photo an id; ids that collide (case-insensitively, as on macOS) all get a hash suffix.

    Suffixing every member of a collision, not all but the first, keeps an id independent of which other
    files happen to sort before it.
    """
    by_key: dict[str, list[tuple[str, Path, str]]] = defaultdict(list)
    for candidate in candidates:
        by_key[candidate[0].lower()].append(candidate)
    items = []
    for group in by_key.values():
        for plain_id, path, relative in group:
            item_id = plain_id
            if len(group) > 1:
                digest = hashlib.sha1(relative.encode("utf-8", "surrogateescape")).hexdigest()[:8]
                item_id = f"{plain_id}-{digest}"
            category = relative.split("/")[0] if "/" in relative else ""
            items.append(SourceItem(id=item_id, path=path, source=relative, category=category))
    return sorted(items, key=lambda item: item.id)


class FolderSource:
    """Every photo below `root`, found recursively and recognised by content: files with a photo extension
    (case-insensitive) are taken, any other file is opened once to see whether Pillow can read it.

    Symlinked folders are followed once (a loop cannot hang the scan); broken symlinks are kept as items so
    that loading them records a reason instead of losing them silently.

    `name` (default: the folder's own name) names the dataset dir; `identity` (default: the folder's absolute
    path) goes into the dataset's fingerprint, so that two folders never merge into one dataset dir unless they
    are given the same identity on purpose (e.g. a copy of the photos moved elsewhere).
    """

    def __init__(self, root: str, name: str | None = None, identity: str | None = None, missing_hint: str = "") -> None:
        if root is None or str(root).strip() == "":
            raise UserError("source.root is not set: source=folder needs source.root=/path/to/photos")
        self.root = Path(to_absolute_path(os.path.expanduser(str(root))))
        self.name = name or self.root.name or "root"
        self.identity = identity or str(self.root)
        self.missing_hint = missing_hint
        self.ignored: dict[str, Ignored] = defaultdict(Ignored)

    def items(self) -> list[SourceItem]:
        if not self.root.is_dir():
            hint = f" ({self.missing_hint})" if self.missing_hint else ""
            raise UserError(f"source folder {self.root} does not exist{hint}")
        candidates = []
        for path in self._image_files():
            relative = path.relative_to(self.root).as_posix()
            candidates.append((flat_id(relative), path, relative))
        if not candidates:
            raise UserError(f"no images found under {self.root} ({self.ignored_line() or 'the folder is empty'})")
        return _with_unique_ids(candidates)

    def ignored_line(self) -> str:
        """`ignored 3 files that are not images (e.g. a.txt, b.csv)`, or "" when nothing was ignored."""
        parts = [
            f"{counted(ignored.count, ONE_IGNORED[why], why)} (e.g. {', '.join(ignored.examples)})"
            for why, ignored in self.ignored.items()
        ]
        return "ignored " + "; ".join(parts) if parts else ""

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
            dirnames.sort()
            for filename in sorted(filenames):
                path = Path(folder) / filename
                relative = path.relative_to(self.root).as_posix()
                if filename.startswith(APPLE_DOUBLE_PREFIX):
                    self.ignored["macOS resource forks (._*)"].add(relative)
                elif os.path.splitext(filename)[1].lower() in PHOTO_EXTENSIONS or is_image_file(path):
                    found.append(path)
                else:
                    self.ignored["files that are not images"].add(relative)
        return found


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
