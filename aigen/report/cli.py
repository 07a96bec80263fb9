"""`python -m aigen.report DATASET_DIR... --out SITE`: a static site of dataset dirs, audits and detector outputs.

index.html opens from disk (no server, nothing fetched from the network). Each dataset dir gets its card and a paged
pair browser (filters by dataset, generator and alignment; a click compares both halves at full size with their
difference); the audits and detector outputs get their tables and plots. The images stay where they are, referred
to by relative path, unless --copy copies them in (for publishing the folder). The site is built in a hidden
sibling folder and renamed into place.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

from aigen.cli import add_audit_option, one_line_errors
from aigen.errors import UserError
from aigen.export.cli import FoundAudits, check_out_dir, outdated_line
from aigen.files import folder_replaced_whole, mark_as_output
from aigen.report.collect import DatasetFacts, DetectorOutput, collect_datasets, read_detector_output
from aigen.report.pages import write_pair_data
from aigen.report.render import write_site

REPORT_RECORD = "report.json"  # what the site shows, and the mark that lets --overwrite replace the folder
DEFAULT_PAGE_SIZE = 48
MAX_PAGE_SIZE = 500


@dataclass(frozen=True)
class ReportOptions:
    dataset_dirs: list[Path]
    out: Path
    audit_dirs: list[Path] = field(default_factory=list)
    detector_dirs: list[Path] = field(default_factory=list)
    copy: bool = False
    page_size: int = DEFAULT_PAGE_SIZE
    overwrite: bool = False
    title: str | None = None


def check_options(options: ReportOptions) -> None:
    if not options.dataset_dirs and not options.detector_dirs:
        raise UserError("nothing to report: give dataset dirs and/or --detector DIR")
    if not 1 <= options.page_size <= MAX_PAGE_SIZE:
        raise UserError(f"--page-size {options.page_size} must be between 1 and {MAX_PAGE_SIZE} pairs")


def record(options: ReportOptions, facts: list[DatasetFacts], outputs: list[DetectorOutput]) -> dict:
    return {
        "aigen_version": version("aigen"),
        "datasets": [
            {
                "name": fact.dataset.name,
                "path": str(fact.dataset.path),
                "fingerprint": fact.dataset.record.get("fingerprint"),
                "pairs": len(fact.dataset.rows),
                "audit": None if fact.audit_dir is None else str(fact.audit_dir.resolve()),
            }
            for fact in facts
        ],
        "detector": [str(output.path.resolve()) for output in outputs],
        "copy": options.copy,
        "page_size": options.page_size,
    }


def build(options: ReportOptions, facts: list[DatasetFacts], outputs: list[DetectorOutput], root: Path) -> dict:
    """Write the whole site into `root`, which is renamed to --out afterwards; the pair browser's index."""
    pair_index = write_pair_data(facts, options.page_size, root, options.out, options.copy)
    title = options.title or f"aigen report: {options.out.name}"
    write_site(root, title, facts, pair_index, outputs)
    (root / REPORT_RECORD).write_text(json.dumps(record(options, facts, outputs), indent=2) + "\n", encoding="utf-8")
    mark_as_output(root, "python -m aigen.report")
    return pair_index


def report(options: ReportOptions) -> tuple[dict, FoundAudits]:
    """Check everything, then build the site in a hidden sibling folder and rename it into place; the pair
    browser's index and the audits found."""
    check_options(options)
    facts, found = collect_datasets(options.dataset_dirs, options.audit_dirs)
    outputs = [read_detector_output(path) for path in options.detector_dirs]
    check_out_dir(options.out, [fact.dataset for fact in facts], options.overwrite, REPORT_RECORD, "report")
    with folder_replaced_whole(options.out) as partial:
        return build(options, facts, outputs, partial), found


def parse_args(argv: list[str] | None) -> ReportOptions:
    parser = argparse.ArgumentParser(prog="python -m aigen.report", description=__doc__.splitlines()[0])
    parser.add_argument("dataset_dirs", type=Path, nargs="*", metavar="DATASET_DIR")
    parser.add_argument(
        "--out", type=Path, required=True, metavar="SITE", help="the site's folder (absent, empty, or --overwrite)"
    )
    add_audit_option(parser)
    parser.add_argument(
        "--detector",
        dest="detector_dirs",
        metavar="DIR",
        type=Path,
        action="append",
        default=[],
        help="an output folder of python -m aigen.detect task=matrix or task=eval (repeatable)",
    )
    parser.add_argument("--copy", action="store_true", help="copy the images into the site (to publish it)")
    parser.add_argument("--page-size", type=int, default=DEFAULT_PAGE_SIZE, help="pairs per page (48)")
    parser.add_argument("--overwrite", action="store_true", help="replace a previous report in --out")
    parser.add_argument("--title", help="the page's title (default: from the --out folder's name)")
    return ReportOptions(**vars(parser.parse_args(argv)))


@one_line_errors
def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    pair_index, found = report(options)
    images = "copied into the site" if options.copy else "referred to by relative path (--copy to publish)"
    pages = pair_index["chunks"]
    print(
        f"{pair_index['pairs']:,} pairs on {pages:,} page{'s' * (pages != 1)} of {options.page_size}; images {images}"
    )
    print(f"wrote {options.out / 'index.html'} (open it in a browser; no server needed)")
    if outdated_line(found):
        print(outdated_line(found))
    return 0
