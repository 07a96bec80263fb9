"""`python -m aigen.audit DATASET_DIR`: measure a dataset dir's pairs and write the report beside it, never in it."""

from __future__ import annotations

import argparse
from pathlib import Path

from aigen.audit.cues import AuditResult, audit_dataset
from aigen.audit.report import log_to_wandb, write_report
from aigen.cli import add_wandb_options, one_line_errors
from aigen.errors import UserError


def default_out_dir(dataset_dir: Path) -> Path:
    return Path.cwd() / f"audit-{dataset_dir.resolve().name}"


def check_out_dir(out_dir: Path, dataset_dir: Path) -> None:
    """Refuse an output dir inside the dataset dir: it must stay a clean imagefolder."""
    if out_dir.resolve().is_relative_to(dataset_dir.resolve()):
        raise UserError(f"--out {out_dir} is inside the dataset dir; write the audit elsewhere")


def run(dataset_dir: Path, out_dir: Path | None, logger: str, project: str) -> tuple[AuditResult, dict[str, Path]]:
    """Audit one dataset dir and write (and maybe log) the report."""
    out_dir = out_dir or default_out_dir(dataset_dir)
    check_out_dir(out_dir, dataset_dir)
    result = audit_dataset(dataset_dir)
    paths = write_report(result, out_dir)
    if logger == "wandb":
        log_to_wandb(result, paths, project)
    return result, paths


@one_line_errors
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aigen.audit", description=__doc__.splitlines()[0])
    parser.add_argument("dataset_dir", type=Path)
    parser.add_argument("--out", type=Path, default=None, help="output dir (default: ./audit-<dataset dir name>)")
    add_wandb_options(parser)
    args = parser.parse_args(argv)
    result, paths = run(args.dataset_dir, args.out, args.logger, args.project)
    for r in result.cues:
        print(
            f"{r.cue.name:>11}: AI > original in {r.share:.0%} of {result.pairs} pairs{' FLAGGED' if r.flagged else ''}"
        )
    print(f"{'classifier':>11}: {result.accuracy_sentence()}")
    for flag in result.flags():
        print(f"FLAG {flag}")
    print(f"wrote {paths['md']}, {paths['csv'].name}, {paths['json'].name}, {paths['png'].name}")
    return 0
