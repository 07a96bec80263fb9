"""`python -m aigen.export DATASET_DIR... --out DIR`: one or more dataset dirs as a Hub-ready dataset.

Parquet shards (one row per pair, the JPEGs as Image columns) or WebDataset tars, the detector's split by photo
content as a column and as the card's splits, and a README.md dataset card. Several dataset dirs (e.g. several
generators over the same photos) become one export with a `generator` and a `dataset` column. The export is built
in a hidden sibling folder and renamed into place, so a failed export never leaves a half-written one.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

from PIL import Image, ImageDraw

from aigen.audit.cli import default_out_dir
from aigen.cli import add_audit_option, add_split_options, check_out_folder, one_line_errors
from aigen.dataset import DatasetDir
from aigen.dataset.record import unfinished_note
from aigen.errors import UserError
from aigen.export.card import CardFacts, dataset_card
from aigen.export.collect import SPLITS, collect_pairs, metadata_columns, open_dataset_dirs
from aigen.export.shards import FORMATS, check_format_available, write_shards
from aigen.files import folder_replaced_whole, mark_as_output, read_json_object
from aigen.gallery import contact_sheet, gallery_rows
from aigen.splits import check_fractions
from aigen.words import counted

EXPORT_RECORD = "export.json"  # what was exported, and the mark that lets --overwrite replace the folder
CARD = "README.md"
PREVIEW = "preview.png"
PREVIEW_PAIRS = 8  # per dataset dir
LABEL_HEIGHT = 16


@dataclass(frozen=True)
class ExportOptions:
    dataset_dirs: list[Path]
    out: Path
    file_format: str
    max_shard_mb: float
    seed: int
    val_fraction: float
    test_fraction: float
    audit_dirs: list[Path] = field(default_factory=list)
    overwrite: bool = False
    allow_incomplete: bool = False
    repo_id: str | None = None
    title: str | None = None


@dataclass(frozen=True)
class ExportResult:
    out: Path
    splits: dict[str, int]
    files: dict[str, list[str]]
    audited: list[str]
    repo_id: str
    outdated: str | None  # outdated_line


def check_options(options: ExportOptions) -> None:
    if options.file_format not in FORMATS:
        raise UserError(f"--format {options.file_format!r} is not one of {', '.join(FORMATS)}")
    if not options.max_shard_mb > 0:
        raise UserError(f"--max-shard-mb {options.max_shard_mb} must be positive")
    check_fractions(options.val_fraction, options.test_fraction)
    check_format_available(options.file_format)


def check_out_dir(
    out: Path, dirs: list[DatasetDir], overwrite: bool, record: str = EXPORT_RECORD, what: str = "export"
) -> None:
    """The export (or `what` else a tool builds from dataset dirs) goes next to the datasets, never into one (a
    dataset dir must stay a clean imagefolder) nor around one (--overwrite would delete it), and replaces only a
    folder that the same tool made (one holding its `record` file)."""
    resolved = out.resolve()
    if Path.cwd().resolve().is_relative_to(resolved):  # the build replaces `out` whole: never the shell's folder
        raise UserError(f"--out {out} is (or contains) the current directory; name a folder to write the {what} into")
    for dataset in dirs:
        if resolved.is_relative_to(dataset.path):
            raise UserError(f"--out {out} is inside the dataset dir {dataset.path}; write the {what} elsewhere")
        if dataset.path.is_relative_to(resolved):
            raise UserError(f"--out {out} contains the dataset dir {dataset.path}; write the {what} elsewhere")
    check_out_folder(out)
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise UserError(f"--out {out} is not empty; pass --overwrite to replace a previous {what}")
        if not (out / record).is_file():
            raise UserError(f"--out {out} is not an aigen {what} (no {record}); refusing to replace it")


def read_audit(folder: Path) -> dict:
    path = folder / "audit.json"
    if not path.is_file():
        raise UserError(f"--audit {folder} has no audit.json (python -m aigen.audit DATASET_DIR --out {folder})")
    return read_json_object(path, "run python -m aigen.audit again")


def measured(audit: dict, dataset: DatasetDir) -> bool:
    """Whether `audit` measured `dataset` as it is now: the same fingerprint and the same pairs (audits made before
    they recorded both never match)."""
    return all(audit.get(key) == value for key, value in dataset.state.items())


@dataclass(frozen=True)
class FoundAudits:
    folders: dict[str, Path]  # the audit output folder by dataset dir name
    outdated: list[Path]  # default folders passed over: they measured other settings or other pairs


def find_audit_dirs(dirs: list[DatasetDir], audit_dirs: list[Path]) -> FoundAudits:
    """The audits that measured the dataset dirs as they are now: each --audit folder (refused when it measured none
    of them), else the audit's default output folder (./outputs/audit-<dataset dir name>) when it is there and
    current. A folder name alone says nothing: another config, data_dir or resume gives the same name."""
    found: dict[str, Path] = {}
    for folder in audit_dirs:
        audit = read_audit(folder)
        names = [dataset.name for dataset in dirs if measured(audit, dataset)]
        if not names:
            what = (
                f"measured {audit.get('dataset')} with other settings or other pairs than any dataset dir given"
                if "fingerprint" in audit
                else "was made before audits recorded which settings and pairs they measured"
            )
            raise UserError(f"--audit {folder} {what}; run python -m aigen.audit DATASET_DIR --out {folder} again")
        found |= dict.fromkeys(names, folder)
    outdated = []
    for dataset in dirs:
        folder = default_out_dir(dataset.name)
        if dataset.name in found or not (folder / "audit.json").is_file():
            continue
        if measured(read_audit(folder), dataset):
            found[dataset.name] = folder
        else:
            outdated.append(folder)
    return FoundAudits({dataset.name: found[dataset.name] for dataset in dirs if dataset.name in found}, outdated)


def outdated_line(found: FoundAudits) -> str | None:
    """What the tools print about audits they passed over."""
    if not found.outdated:
        return None
    folders = ", ".join(str(folder) for folder in found.outdated)
    return f"not shown: {folders} measured other settings or pairs (or predates that record): run the audit again"


def preview_image(dirs: list[DatasetDir]) -> Image.Image:
    """Each dataset dir's gallery pairs (the same photos in every dir), one labelled contact sheet under another."""
    sheets = [(d.name, contact_sheet(d.path, gallery_rows(d.rows, PREVIEW_PAIRS))) for d in dirs]
    width = max(sheet.width for _, sheet in sheets)
    image = Image.new("RGB", (width, sum(LABEL_HEIGHT + sheet.height for _, sheet in sheets)), "white")
    draw = ImageDraw.Draw(image)
    top = 0
    for name, sheet in sheets:
        draw.text((2, top + 2), name, fill="black")
        image.paste(sheet, (0, top + LABEL_HEIGHT))
        top += LABEL_HEIGHT + sheet.height
    return image


def export_command(options: ExportOptions, dirs: list[DatasetDir]) -> str:
    """The command line for the card, with folder names only (no local paths in a published card)."""
    parts = ["python -m aigen.export", *(dataset.name for dataset in dirs), f"--out {options.out.name}"]
    parts += [f"--format {options.file_format}", f"--max-shard-mb {options.max_shard_mb:g}", f"--seed {options.seed}"]
    parts += [f"--val-fraction {options.val_fraction:g}", f"--test-fraction {options.test_fraction:g}"]
    return " ".join(parts)


def build(options: ExportOptions, dirs: list[DatasetDir], found: FoundAudits, root: Path) -> ExportResult:
    """Write shards, preview, card and export record into `root`."""
    pairs = collect_pairs(dirs, options.seed, options.val_fraction, options.test_fraction)
    columns = metadata_columns(pairs)
    max_bytes = int(options.max_shard_mb * 1_000_000)
    files = write_shards(pairs, columns, root, options.file_format, max_bytes, several_dirs=len(dirs) > 1)
    preview_image(dirs).save(root / PREVIEW)
    audits = {name: read_audit(folder) for name, folder in found.folders.items()}
    repo_id = options.repo_id or f"<user>/{options.out.name}"
    facts = CardFacts(
        title=options.title or options.out.name,
        dirs=dirs,
        pairs=pairs,
        columns=columns,
        files=files,
        file_format=options.file_format,
        seed=options.seed,
        fractions={"val_fraction": options.val_fraction, "test_fraction": options.test_fraction},
        audits=audits,
        preview=PREVIEW,
        repo_id=repo_id,
        command=export_command(options, dirs),
    )
    (root / CARD).write_text(dataset_card(facts), encoding="utf-8")
    counts = Counter(pair.split for pair in pairs)
    splits = {split: counts[split] for split in SPLITS if counts[split]}
    record = {
        "aigen_version": version("aigen"),
        "format": options.file_format,
        "seed": options.seed,
        "val_fraction": options.val_fraction,
        "test_fraction": options.test_fraction,
        "datasets": [
            {"name": d.name, "path": str(d.path), "fingerprint": d.record["fingerprint"], "pairs": len(d.rows)}
            for d in dirs
        ],
        "splits": splits,
        "files": files,
    }
    (root / EXPORT_RECORD).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    mark_as_output(root, "python -m aigen.export")
    return ExportResult(options.out, splits, files, list(audits), repo_id, outdated_line(found))


def export(options: ExportOptions) -> ExportResult:
    """Check everything, build the export in a hidden sibling folder, then rename it into place."""
    check_options(options)
    dirs = open_dataset_dirs(options.dataset_dirs)
    for dataset in dirs:
        note = unfinished_note(dataset.record)
        if note and not options.allow_incomplete:
            raise UserError(
                f"{dataset.path}: {note} (python -m aigen.status {dataset.path}); finish it, or pass "
                "--allow-incomplete to export those pairs, which the card then says"
            )
    found = find_audit_dirs(dirs, options.audit_dirs)
    check_out_dir(options.out, dirs, options.overwrite)
    with folder_replaced_whole(options.out) as partial:
        return build(options, dirs, found, partial)


def parse_args(argv: list[str] | None) -> ExportOptions:
    parser = argparse.ArgumentParser(prog="python -m aigen.export", description=__doc__.splitlines()[0])
    parser.add_argument("dataset_dirs", type=Path, nargs="+", metavar="DATASET_DIR")
    parser.add_argument(
        "--out", type=Path, required=True, metavar="DIR", help="the export folder (absent, empty, or --overwrite)"
    )
    parser.add_argument("--format", dest="file_format", choices=FORMATS, default="parquet")
    parser.add_argument("--max-shard-mb", type=float, default=500.0, help="image megabytes per shard (500)")
    add_split_options(parser)
    add_audit_option(parser)
    parser.add_argument("--overwrite", action="store_true", help="replace a previous export in --out")
    parser.add_argument(
        "--allow-incomplete", action="store_true", help="export a dataset whose runs have not all finished"
    )
    parser.add_argument("--repo-id", help="the Hub dataset repo, for the card's snippets (default: <user>/<out name>)")
    parser.add_argument("--title", help="the card's title (default: the --out folder's name)")
    return ExportOptions(**vars(parser.parse_args(argv)))


@one_line_errors
def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    result = export(options)
    counts = ", ".join(f"{split} {count}" for split, count in result.splits.items())
    shards = sum(len(names) for names in result.files.values())
    pairs = counted(sum(result.splits.values()), "pair")
    print(f"exported {pairs} ({counts}) as {options.file_format}, {counted(shards, 'shard')}")
    audited = ", ".join(result.audited) if result.audited else "none (run python -m aigen.audit first to add one)"
    print(f"bias audit in the card: {audited}")
    if result.outdated:
        print(result.outdated)
    print(f"wrote {result.out}/{CARD} (check its licence and citation fields before publishing)")
    print(f"publish: hf upload {result.repo_id} {result.out} . --repo-type dataset")
    return 0
