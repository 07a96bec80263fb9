"""`python -m aigen.status DATASET_DIR`: merged totals of a dataset dir and the last run of every shard."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from aigen.dataset_record import DATASET_JSON, count_records


def last_runs_by_shard(runs: list[dict]) -> dict[tuple[int, int], dict]:
    latest: dict[tuple[int, int], dict] = {}
    for run in runs:
        latest[tuple(run["shard"])] = run
    return latest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aigen.status", description=__doc__.splitlines()[0])
    parser.add_argument("dataset_dir", type=Path)
    args = parser.parse_args(argv)
    record_path = args.dataset_dir / DATASET_JSON
    if not record_path.is_file():
        print(f"error: {record_path} does not exist (not an aigen dataset dir)", file=sys.stderr)
        return 2
    record = json.loads(record_path.read_text(encoding="utf-8"))
    counts = count_records(args.dataset_dir)
    print(
        f"{args.dataset_dir}: {counts['pairs']} pairs, {counts['failed']} failed (fingerprint {record['fingerprint']})"
    )
    latest = last_runs_by_shard(record["runs"])
    for (index, count), run in sorted(latest.items()):
        state = "interrupted" if run.get("interrupted") else "finished"
        print(
            f"  shard {index} of {count}: {state} {run['finished']}, {run['generated']} generated, "
            f"{run['already_done']} already done, {run['failed']} failed of {run['selected']}"
        )
    shard_counts = {count for _, count in latest}
    for count in sorted(shard_counts):
        done = [i for i in range(count) if (i, count) in latest and not latest[(i, count)].get("interrupted")]
        missing = sorted(set(range(count)) - set(done))
        print(f"  {len(done)} of {count} shards finished" + (f"; not yet: {missing}" if missing else ""))
    for reason, number in counts["failure_reasons"].items():
        print(f"  failed {number}x: {reason}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
