"""`python -m aigen.audit DATASET_DIR... [--probe]`: the cues a detector could learn instead of generation.

Measures each dataset dir's pairs and writes its report to --out (one dir only; by default
./outputs/audit-<dataset dir name>), never into the dataset dir; `--probe` adds the CNN learnability probe
(aigen.audit.probe, minutes on CPU)."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from aigen.audit.cues import AuditResult, audit_dataset
from aigen.audit.report import AUDIT_FILES, log_to_wandb, write_report
from aigen.cli import add_wandb_options, check_out_folder, dataset_dirs, one_line_errors
from aigen.errors import UserError

if TYPE_CHECKING:
    from aigen.detector.data import Pair


def default_out_dir(dataset_name: str) -> Path:
    """Where the audit of a dataset dir goes unless told (and where the export and the report look for it)."""
    return Path.cwd() / "outputs" / f"audit-{dataset_name}"


def check_out_dir(out_dir: Path, dataset_dir: Path) -> None:
    """Refuse an output dir inside the dataset dir (it must stay a clean imagefolder), one that is (under) a file,
    and one holding files an audit does not write (a folder of photos: the audit would mark it as its own)."""
    if out_dir.resolve().is_relative_to(dataset_dir.resolve()):
        raise UserError(f"--out {out_dir} is inside the dataset dir; write the audit elsewhere")
    check_out_folder(out_dir)
    others = sorted(p.name for p in out_dir.iterdir() if p.name not in AUDIT_FILES) if out_dir.is_dir() else []
    if others:
        raise UserError(
            f"--out {out_dir} holds files an audit does not write ({', '.join(others[:3])}); name a new or empty "
            "folder, or an earlier audit's"
        )


def run(
    dataset_dir: Path,
    out_dir: Path | None,
    logger: str,
    project: str,
    probe: bool = False,
    probe_steps: int | None = None,
    probe_split: tuple[list[Pair], list[Pair]] | None = None,
) -> tuple[AuditResult, dict[str, Path]]:
    """Audit one dataset dir (and train the CNN probe with `probe`, on `probe_split` when the caller has made it)
    and write (and maybe log) the report."""
    out_dir = out_dir or default_out_dir(dataset_dir.resolve().name)
    check_out_dir(out_dir, dataset_dir)
    if probe:
        from aigen.audit.probe import ProbeSettings, held_out_split, probe_pairs  # torch: only when asked for

        settings = ProbeSettings() if probe_steps is None else ProbeSettings(steps=probe_steps)
        split = probe_split or held_out_split(dataset_dir, settings.seed)  # too few pairs: a UserError now
    result = audit_dataset(dataset_dir)
    if probe:
        result = dataclasses.replace(result, probe=probe_pairs(*split, settings))
    paths = write_report(result, out_dir)
    if logger == "wandb":
        log_to_wandb(result, paths, project)
    return result, paths


def out_dirs(dataset_dirs: list[Path], out: Path | None) -> dict[Path, Path]:
    """Each dataset dir's audit folder, checked before any dir is measured: --out names one audit's folder, and two
    dirs of the same name would write one default folder."""
    if out is not None and len(dataset_dirs) > 1:
        raise UserError("--out names one audit's folder: give one dataset dir, or leave --out out")
    folders = {dataset_dir: out or default_out_dir(dataset_dir.resolve().name) for dataset_dir in dataset_dirs}
    if len(set(folders.values())) < len(folders):
        raise UserError("two dataset dirs share a name, so their audits would share a folder: audit them one at a time")
    for dataset_dir, folder in folders.items():
        check_out_dir(folder, dataset_dir)
    return folders


def print_result(result: AuditResult, paths: dict[str, Path]) -> None:
    for r in result.cues:
        flag = " FLAGGED" if r.flagged else ""
        print(f"{r.cue.name:>11}: AI > original in {r.share:.0%} of {result.pairs} pairs{r.ties_note}{flag}")
    print(f"{'classifier':>11}: {result.accuracy_sentence()}")
    if result.probe:
        print(f"{'probe':>11}: {result.probe.sentence(result.control)}")
    for flag in result.flags():
        print(f"FLAG {flag}")
    print(f"wrote {paths['md']}, {paths['csv'].name}, {paths['json'].name}, {paths['png'].name}")


@one_line_errors
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aigen.audit", description=__doc__.splitlines()[0])
    parser.add_argument("dataset_dirs", type=Path, nargs="+", metavar="dataset_dir", help="one or more (a sweep's)")
    parser.add_argument(
        "--out", type=Path, default=None, help="output dir of one audit (default: ./outputs/audit-<dataset dir name>)"
    )
    parser.add_argument("--probe", action="store_true", help="also train the CNN learnability probe (minutes on CPU)")
    parser.add_argument("--probe-steps", type=int, default=None, help="the probe's training steps (default: its own)")
    add_wandb_options(parser)
    args = parser.parse_args(argv)
    if args.probe_steps is not None and not args.probe:
        raise UserError("--probe-steps needs --probe")
    folders = out_dirs(dataset_dirs(args.dataset_dirs), args.out)
    splits = {}
    if args.probe:  # a dir with too few pairs for the probe: one line before any is measured
        from aigen.audit.probe import ProbeSettings, held_out_split

        splits = {dataset_dir: held_out_split(dataset_dir, ProbeSettings().seed) for dataset_dir in folders}
    for dataset_dir, out_dir in folders.items():
        if len(folders) > 1:
            print(f"{dataset_dir}:")
        result, paths = run(
            dataset_dir, out_dir, args.logger, args.project, args.probe, args.probe_steps, splits.get(dataset_dir)
        )
        print_result(result, paths)
    return 0
