"""Sources find the photos to pair: a folder tree scanned recursively, each photo given a stable id."""

from __future__ import annotations

import hashlib
import importlib.resources
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from hydra.utils import to_absolute_path

from aigen.errors import UserError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"})
APPLE_DOUBLE_PREFIX = "._"  # macOS resource forks in some archive mirrors: metadata, not photos


@dataclass(frozen=True)
class SourceItem:
    """One source photo: `id` names its output files, `source` is its path relative to the source root."""

    id: str
    path: Path
    source: str
    category: str


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
    """Every image file below `root`, found recursively; extensions match case-insensitively.

    Symlinked folders are followed once (a loop cannot hang the scan); broken symlinks are kept as items so
    that loading them records a reason instead of losing them silently.
    """

    def __init__(self, root: str, name: str = "folder", missing_hint: str = "") -> None:
        self.name = name
        self.root = Path(to_absolute_path(root))
        self.missing_hint = missing_hint
        self.ignored: list[str] = []

    def items(self) -> list[SourceItem]:
        if not self.root.is_dir():
            hint = f" ({self.missing_hint})" if self.missing_hint else ""
            raise UserError(f"source folder {self.root} does not exist{hint}")
        candidates = []
        for path in self._image_files():
            relative = path.relative_to(self.root).as_posix()
            candidates.append((flat_id(relative), path, relative))
        if not candidates:
            raise UserError(f"no images found under {self.root} (looked for {', '.join(sorted(IMAGE_EXTENSIONS))})")
        return _with_unique_ids(candidates)

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
                if os.path.splitext(filename)[1].lower() not in IMAGE_EXTENSIONS:
                    continue
                if filename.startswith(APPLE_DOUBLE_PREFIX):
                    self.ignored.append(os.path.join(folder, filename))
                    continue
                found.append(Path(folder) / filename)
        return found


class SampleSource(FolderSource):
    """Real photos shipped inside an installed package (scikit-image), so demos and tests need no download."""

    def __init__(self, package: str, files: list[str], name: str = "samples") -> None:
        root = importlib.resources.files(package)
        super().__init__(root=str(root), name=name)
        self.files = list(files)

    def _image_files(self) -> list[Path]:
        missing = [name for name in self.files if not (self.root / name).is_file()]
        if missing:
            raise UserError(f"sample photos {missing} are not in {self.root}; reinstall with `make install`")
        return [self.root / name for name in self.files]
