"""`python -m aigen.status DATASET_DIR...`: merged totals of each dataset dir and the last run of every shard."""

from __future__ import annotations

import argparse
import errno
import fcntl
import sys
from pathlib import Path

from aigen.cli import add_wandb_options, dataset_dirs, one_line_errors
from aigen.dataset import Shard, read_record
from aigen.dataset.record import count_records, run_state, shards_not_finished, sibling_notes
from aigen.errors import UserError
from aigen.tracking import WandbTracker
from aigen.words import counted


def shard_is_running(dataset_dir: Path, index: int, count: int) -> bool:
    """Whether a process holds the shard's writer lock (the kernel drops it when the process dies)."""
    lock = Shard(index, count).lock_file(dataset_dir)
    if not lock.exists():
        return False
    with open(lock) as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno in (errno.EAGAIN, errno.EACCES):
                return True
            raise
        return False


def run_line(dataset_dir: Path, run: dict) -> str:
    """finished / interrupted (Ctrl-C, SIGTERM) / running / killed (started, never finished, no process)."""
    state = run_state(run)
    if state == "running" and not shard_is_running(dataset_dir, *run["shard"]):
        return f"killed (started {run['started']}, never finished; rerun to resume)"
    if state == "running":
        return f"running since {run['started']} (pid {run.get('pid')})"
    if state == "failed":
        return f"failed {run['finished']}: {run.get('error')}"
    return f"{state} {run['finished']}, {run['generated']} generated, {run['already_done']} already done, " + (
        f"{run['failed']} failed of {run['selected']}"
    )


def last_runs_by_shard(runs: list[dict]) -> dict[tuple[int, int], dict]:
    latest: dict[tuple[int, int], dict] = {}
    for run in runs:
        latest[tuple(run["shard"])] = run
    return latest


def print_status(dataset_dir: Path) -> None:
    """The dir's totals, how it relates to the other configs of its name, and each shard's last run."""
    record = read_record(dataset_dir)
    counts = count_records(dataset_dir)
    print(
        f"{dataset_dir}: {counted(counts['pairs'], 'pair')}, {counts['failed']} failed "
        f"(fingerprint {record.get('fingerprint')})"
    )
    for note in sibling_notes(dataset_dir, record):
        print(f"  {note}")
    runs = record.get("runs", [])
    newest = runs[-1].get("selection") if runs else None
    for (index, count), run in sorted(last_runs_by_shard(runs).items()):
        earlier = " (of an earlier selection of photos)" if run.get("selection") != newest else ""
        print(f"  shard {index} of {count}: {run_line(dataset_dir, run)}{earlier}")
    if runs:  # the rule the export and the W&B artifact wait on (aigen.dataset.record)
        count, waiting = record.get("shard_count", 1), shards_not_finished(record)
        print(f"  {count - len(waiting)} of {count} shards finished" + (f"; not yet: {waiting}" if waiting else ""))
    if counts.get("without_files"):
        print(
            f"  {counted(counts['without_files'], 'manifest row')} without both image files (not counted as pairs): "
            "python -m aigen.verify lists them, a rerun makes them again"
        )
    for reason, number in counts["failure_reasons"].items():
        print(f"  failed {number}x: {reason}")


def log_dataset(dataset_dir: Path, project: str) -> None:
    """The complete dataset as a W&B artifact, for one whose sharded runs did not log it."""
    record = read_record(dataset_dir)
    summary = {key: value for key, value in count_records(dataset_dir).items() if key != "failure_reasons"}
    WandbTracker(project=project).log_dataset(record["config"], dataset_dir, summary, Path.cwd())
    print(f"dataset artifact of {dataset_dir.name}: logged")


@one_line_errors
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aigen.status", description=__doc__.splitlines()[0])
    parser.add_argument("dataset_dirs", type=Path, nargs="+", metavar="dataset_dir", help="one or more (a sweep's)")
    add_wandb_options(parser, "wandb: log the complete dataset as a W&B artifact (when its sharded runs did not)")
    args = parser.parse_args(argv)
    given = dataset_dirs(args.dataset_dirs)
    for dataset_dir in given:
        print_status(dataset_dir)
    if args.logger == "wandb":  # every dir complete before the first artifact
        for dataset_dir in given:
            if waiting := shards_not_finished(read_record(dataset_dir)):
                raise UserError(f"{dataset_dir}: shard(s) {waiting} have not finished: the dataset is not complete yet")
        for dataset_dir in given:
            log_dataset(dataset_dir, args.project)
    return 0


if __name__ == "__main__":
    sys.exit(main())
