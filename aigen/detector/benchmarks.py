"""Labelled benchmark sets for `task=eval`: unpaired real and AI images (GenImage, Synthbuster, Chameleon, ...),
told apart from aigen dataset dirs by their layout.

- A folder holding class folders `real/` + `fake/`, `0_real/` + `1_fake/` (CNNDetection) or `nature/` + `ai/`
  (GenImage), at its top or nested per generator: GenImage's `ROOT/<generator>/<subset>/val/{ai,nature}` or
  CNNDetection's `ROOT/<generator>/<class>/{0_real,1_fake}`. One row per generator (a folder directly below ROOT),
  pooling every class-folder pair below it; where a folder holds `train/` beside `val/` or `test/`, the training
  half is not scored.
- A CSV file of `path,label` (paths relative to the CSV; label 0/1 or real/fake).
- A `datasets` folder (`save_to_disk`) with an image column and a label column, and an explicit label mapping
  (`benchmark.*` in conf/detect.yaml).

Every set is read and checked (images exist, labels map) before any scoring.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from aigen.detector.data import LABELS, ImageFiles, file_stamp
from aigen.errors import UserError
from aigen.sources import APPLE_DOUBLE_PREFIX, PHOTO_EXTENSIONS

CLASS_FOLDERS = (("real", "fake"), ("0_real", "1_fake"), ("nature", "ai"))  # (real, AI) folder names
HELD_OUT_SPLITS = ("val", "test")  # beside one of these, a `train/` folder is training data: not scored
REAL, AI = LABELS["original"], LABELS["ai"]
LABEL_NAMES = {"0": REAL, "real": REAL, "1": AI, "fake": AI, "ai": AI}  # a CSV's labels and benchmark.labels values
LAYOUTS = (
    "an aigen dataset dir (manifest.jsonl), a folder with real/ + fake/ (or 0_real/ + 1_fake/, nature/ + ai/) "
    "folders, a CSV of path,label, or a `datasets` folder saved with save_to_disk"
)


@dataclass(frozen=True)
class LabelledSet:
    """One row of a benchmark: images with their labels (real 0, AI 1) and an id each (a path or a row number)."""

    name: str
    source: Path  # the eval_sets entry it came from
    images: ImageFiles | DatasetImages
    labels: list[int]
    ids: list[str]

    def __post_init__(self) -> None:
        """A row of one class would still get an accuracy, but no detection score: it needs real and AI images."""
        for label, kind in ((REAL, "real"), (AI, "AI")):
            if label not in self.labels:
                raise UserError(f"eval set {self.source}: {self.name} holds no {kind} images; a row needs both classes")


class DatasetImages:
    """The image column of a `datasets` dataset as a sequence of RGB images, decoded on access."""

    def __init__(self, dataset, column: str) -> None:
        self.dataset, self.column = dataset.select_columns([column]), column

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        return self.dataset[index][self.column].convert("RGB")

    def stamps(self) -> list:
        """The dataset's identity for a feature cache: its Arrow files (path, size, modification time), the column."""
        return [self.column, len(self.dataset), *(file_stamp(Path(f["filename"])) for f in self.dataset.cache_files)]


def is_datasets_dir(path: Path) -> bool:
    """A folder written by Dataset.save_to_disk (state.json + dataset_info.json) or DatasetDict.save_to_disk."""
    saved_dataset = (path / "state.json").is_file() and (path / "dataset_info.json").is_file()
    return saved_dataset or (path / "dataset_dict.json").is_file()


def class_folders(directory: Path) -> tuple[Path, Path] | None:
    for real, fake in CLASS_FOLDERS:
        if (directory / real).is_dir() and (directory / fake).is_dir():
            return directory / real, directory / fake
    return None


def image_files(folder: Path) -> list[Path]:
    """Every image below `folder` (by extension), sorted."""
    found = []
    for directory, subdirs, files in os.walk(folder, followlinks=True):
        subdirs.sort()
        found += [
            Path(directory) / name
            for name in sorted(files)
            if os.path.splitext(name)[1].lower() in PHOTO_EXTENSIONS and not name.startswith(APPLE_DOUBLE_PREFIX)
        ]
    return found


def labelled_folders(root: Path) -> list[tuple[Path, Path, Path]]:
    """(folder, its real folder, its AI folder) for every class-folder pair below `root`, in walk order; a class
    folder without its partner is an error, as its generator's row would be silently missing."""
    found, alone = [], []
    for directory, subdirs, _ in os.walk(root, followlinks=True):
        pair = class_folders(Path(directory))
        if pair:
            found.append((Path(directory), *pair))
            subdirs.clear()  # the class folders' contents are images, not more sets
            continue
        alone += [
            f"{(Path(directory) / name).relative_to(root)} (no {partner}/)"
            for real, fake in CLASS_FOLDERS
            for name, partner in ((real, fake), (fake, real))
            if name in subdirs
        ]
        if "train" in subdirs and set(HELD_OUT_SPLITS) & set(subdirs):
            subdirs.remove("train")
        subdirs.sort()
    if alone:
        raise UserError(f"eval set {root}: class folders without their partner beside them: {', '.join(alone)}")
    return found


def root_name(root: Path) -> str:
    """A folder's row name; a split folder given directly (GenImage's `<subset>/val`) keeps its parent's name."""
    return f"{root.parent.name}/{root.name}" if root.name in ("train", *HELD_OUT_SPLITS) else root.name


def folder_sets(root: Path) -> list[LabelledSet]:
    """One set per generator (the folder directly below `root`), or one for `root` when it holds the classes."""
    groups: dict[str, list[tuple[Path, int]]] = {}
    for folder, real, fake in labelled_folders(root):
        name = root_name(root) if folder == root else f"{root.name}/{folder.relative_to(root).parts[0]}"
        groups.setdefault(name, []).extend(
            (path, label) for label, images in ((REAL, real), (AI, fake)) for path in image_files(images)
        )
    if not groups:
        raise UserError(f"eval set {root} is not one of: {LAYOUTS}")
    sets = []
    for name, samples in groups.items():
        if not samples:
            raise UserError(f"eval set {root}: {name} holds no images in its real and fake folders")
        paths = [path for path, _ in samples]
        ids = [path.relative_to(root).as_posix() for path in paths]
        sets.append(LabelledSet(name, root, ImageFiles(paths), [label for _, label in samples], ids))
    return sets


def csv_set(path: Path) -> LabelledSet:
    """The images a CSV of `path,label` lists (paths relative to the CSV), checked to exist."""
    paths, labels = [], []
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            if not {"path", "label"} <= set(reader.fieldnames or []):
                found = ",".join(reader.fieldnames or [])
                raise UserError(f"eval set {path} needs a header with the columns path,label (found: {found!r})")
            for row in reader:
                label = LABEL_NAMES.get(str(row["label"]).strip().lower())
                if label is None or not row["path"]:
                    raise UserError(
                        f"eval set {path}, line {reader.line_num}: needs a path and a label 0, 1, real or fake "
                        f"(found {row['path']!r}, {row['label']!r})"
                    )
                paths.append(path.parent / row["path"])
                labels.append(label)
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise UserError(f"eval set {path} cannot be read as a CSV of path,label: {error}") from None
    if not paths:
        raise UserError(f"eval set {path} lists no images")
    missing = [image for image in paths if not image.is_file()]
    if missing:
        raise UserError(f"{len(missing)} images listed in eval set {path} are missing, e.g. {missing[0]}")
    ids = [os.path.relpath(image, path.parent) for image in paths]
    return LabelledSet(path.stem, path, ImageFiles(paths), labels, ids)


def label_mapping(settings: DictConfig, path: Path) -> dict[str, int]:
    """benchmark.labels as {stored value or class name: 0 | 1}; it must be given, and name both classes."""
    example = "'benchmark.labels={0: real, 1: fake}'"
    if not settings.labels:
        raise UserError(f"eval set {path} is a `datasets` folder: say which labels are real and fake, e.g. {example}")
    mapping = {}
    for value, meaning in OmegaConf.to_container(settings.labels).items():
        label = LABEL_NAMES.get(str(meaning).strip().lower())
        if label is None:
            raise UserError(f"benchmark.labels: {value!r} maps to {meaning!r}, not real or fake (e.g. {example})")
        mapping[str(value)] = label
    return mapping


def datasets_set(path: Path, settings: DictConfig) -> LabelledSet:
    """The rows of a `datasets` folder: benchmark.image_column, benchmark.label_column mapped by benchmark.labels."""
    mapping = label_mapping(settings, path)
    try:
        import datasets  # the `datasets` library reads its own folders; imported only for such a set
    except ImportError:
        raise UserError(f"eval set {path} is a `datasets` folder: reading it needs `pip install datasets`") from None
    datasets.disable_progress_bars()
    try:
        loaded = datasets.load_from_disk(str(path))
    except (OSError, ValueError) as error:
        raise UserError(f"eval set {path} cannot be read with datasets.load_from_disk: {error}") from None
    if isinstance(loaded, datasets.DatasetDict):
        split = settings.split or (next(iter(loaded)) if len(loaded) == 1 else None)
        if split not in loaded:
            raise UserError(f"eval set {path}: benchmark.split={settings.split!r} is not one of {', '.join(loaded)}")
        loaded = loaded[split]
    for key in ("image_column", "label_column"):
        if settings[key] not in loaded.column_names:
            raise UserError(
                f"eval set {path} has no column {settings[key]!r} (benchmark.{key}); its columns: "
                + ", ".join(loaded.column_names)
            )
    if not isinstance(loaded.features[settings.image_column], datasets.Image):
        raise UserError(f"eval set {path}: column {settings.image_column!r} holds no images (benchmark.image_column)")
    feature = loaded.features[settings.label_column]
    names = feature.names if isinstance(feature, datasets.ClassLabel) else None
    labels = []
    for value in loaded[settings.label_column]:
        keys = [str(value)] + ([names[value]] if names else [])
        label = next((mapping[key] for key in keys if key in mapping), None)
        if label is None:
            raise UserError(
                f"eval set {path}: label {keys[-1]!r} in column {settings.label_column!r} is not in benchmark.labels "
                f"({', '.join(mapping)})"
            )
        labels.append(label)
    if not labels:
        raise UserError(f"eval set {path} holds no rows")
    ids = [str(index) for index in range(len(labels))]
    return LabelledSet(path.name, path, DatasetImages(loaded, settings.image_column), labels, ids)


def labelled_sets(path: Path, settings: DictConfig) -> list[LabelledSet]:
    """The rows one eval_sets entry that is not an aigen dataset dir gives, by its layout."""
    if not path.exists():
        raise UserError(f"eval set {path} does not exist")
    if path.is_file():
        if path.suffix.lower() != ".csv":
            raise UserError(f"eval set {path} is a file but not a .csv; an eval set is {LAYOUTS}")
        return [csv_set(path)]
    if is_datasets_dir(path):
        return [datasets_set(path, settings)]
    return folder_sets(path)
