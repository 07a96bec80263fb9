"""`python -m aigen.verify DATASET_DIR...`: check that each dataset dir is whole and consistent; exit 1 on problems.

Corruption (a manifest row whose files are missing, do not decode or have the wrong size; a `dataset.json` or a
record line that does not parse) is always a problem, and so are records that are not exact: a pair with more than
one manifest row, a photo with more than one failure row, or a failure row for a photo that has a pair.
Leftovers of an interrupted run (pair files not in the manifest yet, temporary files) are harmless and a rerun
clears them; `--allow-incomplete` reports them without failing.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from aigen.cli import dataset_dirs, one_line_errors
from aigen.dataset import (
    AI,
    DATASET_JSON,
    FAILURES,
    MANIFEST,
    ORIGINAL,
    read_record,
    read_rows,
    record_files,
)
from aigen.dataset.record import count_records
from aigen.errors import UserError
from aigen.files import read_jsonl
from aigen.words import counted


@dataclass
class Report:
    pairs: int | None = 0  # None: a record line does not parse, so nothing was counted
    failed: int = 0  # source photos recorded as failed (and not done later)
    corrupt: list[str] = field(default_factory=list)
    incomplete: list[str] = field(default_factory=list)

    def ok(self, allow_incomplete: bool) -> bool:
        return not self.corrupt and (allow_incomplete or not self.incomplete)


def check_image(path: Path, size: int | None) -> str | None:
    """None when the file is a whole RGB JPEG of size x size (any size when its row names none), else what is
    wrong."""
    if not path.is_file():
        return "missing"
    try:
        with Image.open(path) as image:
            image.load()
            if image.format != "JPEG" or image.mode != "RGB":
                return f"{image.format} {image.mode}, expected an RGB JPEG"
            if size is not None and image.size != (size, size):
                return f"{image.size[0]}x{image.size[1]}, expected {size}x{size}"
    except OSError as error:
        return f"does not decode ({error})"
    return None


def record_problems(dataset_dir: Path) -> list[str]:
    """Duplicate rows (over every shard's file, read raw) and failure rows of photos that have a pair."""
    problems = []
    ids = {
        kind: Counter(row["id"] for path in record_files(dataset_dir, kind) for row in read_jsonl(path))
        for kind in (MANIFEST, FAILURES)
    }
    for kind, counter in ids.items():
        for image_id, rows in sorted(counter.items()):
            if rows > 1:
                problems.append(f"{kind}: {rows} rows for {image_id} (one is expected)")
    for image_id in sorted(set(ids[FAILURES]) & set(ids[MANIFEST])):
        problems.append(f"{FAILURES}: stale row for {image_id}, which has a pair")
    return problems


def verify(dataset_dir: Path) -> Report:
    report = Report()
    if not (dataset_dir / DATASET_JSON).is_file():
        report.corrupt.append(f"{DATASET_JSON} is missing: not an aigen dataset dir")
        return report
    try:
        read_record(dataset_dir)
    except UserError as error:
        report.corrupt.append(str(error))
    for path in record_files(dataset_dir, MANIFEST):
        if path.stat().st_size and not path.read_bytes().endswith(b"\n"):
            report.incomplete.append(f"{path.name}: torn last line (a killed run; the next run repairs it)")
    try:
        report.corrupt += record_problems(dataset_dir)
        rows = read_rows(dataset_dir, MANIFEST)
        report.failed = count_records(dataset_dir, rows)["failed"]
    except UserError as error:  # a record line changed outside aigen: nothing counted past it would be exact
        report.corrupt.append(str(error))
        report.pairs = None
        return report
    report.pairs = len(rows)
    recorded: set[str] = set()
    for image_id, row in sorted(rows.items()):
        for folder in (ORIGINAL, AI):
            recorded.add(row[folder])
            problem = check_image(dataset_dir / row[folder], row.get("size"))
            if problem:
                report.corrupt.append(f"{row[folder]} (pair {image_id}): {problem}")
    for folder in (ORIGINAL, AI):
        for path in sorted((dataset_dir / folder).glob("*")):
            relative = f"{folder}/{path.name}"
            if path.name.startswith("."):
                report.incomplete.append(f"{relative}: temporary file of an interrupted run")
            elif relative not in recorded:
                report.incomplete.append(f"{relative}: not in the manifest (orphan; a rerun regenerates or records it)")
    return report


def print_report(dataset_dir: Path, allow_incomplete: bool) -> bool:
    """Print the totals of one dir, then its problems (paths relative to it); whether it passes."""
    report = verify(dataset_dir)
    problems = f"{len(report.corrupt)} corrupt, {len(report.incomplete)} incomplete"
    if report.pairs is None:
        print(f"{dataset_dir}: {problems}; a record line does not parse, so no pair was counted or checked")
    else:
        failed = f"{report.failed} source photos recorded as failed"
        print(f"{dataset_dir}: {counted(report.pairs, 'pair')}, {problems}, {failed}")
    for line in report.corrupt:
        print(f"CORRUPT {line}")
    for line in report.incomplete:
        print(f"INCOMPLETE {line}")
    return report.ok(allow_incomplete)


@one_line_errors
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aigen.verify", description=__doc__.splitlines()[0])
    parser.add_argument("dataset_dirs", type=Path, nargs="+", metavar="dataset_dir", help="one or more (a sweep's)")
    parser.add_argument("--allow-incomplete", action="store_true", help="leftovers of a killed run do not fail")
    args = parser.parse_args(argv)
    passed = [print_report(dataset_dir, args.allow_incomplete) for dataset_dir in dataset_dirs(args.dataset_dirs)]
    print("OK" if all(passed) else "PROBLEMS FOUND")
    return 0 if all(passed) else 1


if __name__ == "__main__":
    sys.exit(main())
