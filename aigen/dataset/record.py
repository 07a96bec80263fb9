"""`dataset.json`: which config made a dataset dir (by fingerprint), the runs that wrote it, merged totals."""

from __future__ import annotations

import fcntl
import glob
import hashlib
import json
import subprocess
import time
from collections import Counter
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from aigen.dataset.layout import (
    DATASET_JSON,
    FAILURES,
    MANIFEST,
    is_dataset_dir,
    read_record,
    read_rows,
    rows_with_files,
)
from aigen.errors import UserError
from aigen.files import write_atomic

PACKAGES = ("aigen", "torch", "diffusers", "transformers", "pillow", "openai", "hydra-core", "wandb")
FAILURE_REASONS_KEPT = 20


def fingerprint(content: dict) -> str:
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:16]


READING_RECORDED = "source_reading_recorded"  # dataset.json's mark: its fingerprint covers source.reading


def same_config(existing: dict, content: dict) -> bool:
    """Whether a dataset.json was made by `content`. One made before sources recorded how they read their photos
    (`source.reading`: a column, a member's extension; no READING_RECORDED mark) matches `content` without it:
    which one it read is not known, and such a dir resumes as it did."""
    if existing["fingerprint"] == fingerprint(content):
        return True
    source = content.get("source", {})
    if "reading" not in source or existing.get(READING_RECORDED):
        return False
    unread = content | {"source": {key: value for key, value in source.items() if key != "reading"}}
    return existing["fingerprint"] == fingerprint(unread)


def package_versions() -> dict[str, str | None]:
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = None
    return versions


def git_commit() -> str | None:
    """The commit of the code that ran (None outside a git checkout)."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            cwd=Path(__file__).parent,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None


@contextmanager
def _record_lock(dataset_dir: Path):
    """Serialises read-modify-write of dataset.json between shards (held for milliseconds)."""
    with open(dataset_dir / ".dataset.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _write(dataset_dir: Path, record: dict) -> None:
    write_atomic(dataset_dir / DATASET_JSON, (json.dumps(record, indent=2, sort_keys=True) + "\n").encode())


class Unset:
    """A setting one content config has and the other lacks (not the same as one set to None)."""

    def __repr__(self) -> str:
        return "unset"


UNSET = Unset()


def differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    """Each setting that differs between two content configs, as `key: old -> new` (nested keys dotted)."""
    changes = []
    for key in sorted(set(old) | set(new)):
        before, after = old.get(key, UNSET), new.get(key, UNSET)
        if isinstance(before, dict) and isinstance(after, dict):
            changes += differences(before, after, f"{prefix}{key}.")
        elif before != after:
            changes.append(f"{prefix}{key}: {before!r} -> {after!r}")
    return changes


def only_identity_differs(changes: list[str]) -> bool:
    """The photos' location is all that differs: most often the same photos at another path (a moved copy, a shard
    on another node), never a reason to start another dataset under the same name."""
    return bool(changes) and all(change.startswith("source.identity:") for change in changes)


def versioned_dir(named: Path, fingerprint_: str) -> Path:
    """Where a config whose default name `named` holds another config's dataset writes: `<named>-<8 hex digits>`."""
    return named.with_name(f"{named.name}-{fingerprint_[:8]}")


def sibling_notes(dataset_dir: Path, record: dict) -> list[str]:
    """How a dataset dir relates to the other configs of its default name: a versioned dir names the plain one and
    what differs; a plain one lists its versioned siblings (the plain name went to whichever config ran first)."""
    own = record.get("content")
    if not isinstance(own, dict):
        return []
    plain = dataset_dir.with_name(dataset_dir.name.rsplit("-", 1)[0])
    if plain != dataset_dir and versioned_dir(plain, str(record.get("fingerprint"))) == dataset_dir:
        other = readable_content(plain)
        return (
            [f"versioned beside {plain.name}, another config ({'; '.join(differences(other, own))})"] if other else []
        )
    notes = []
    for sibling in sorted(dataset_dir.parent.glob(f"{glob.escape(dataset_dir.name)}-*")):
        other = readable_content(sibling)
        if other is not None and versioned_dir(dataset_dir, fingerprint(other)) == sibling:
            notes.append(f"another config of this name: {sibling.name} ({'; '.join(differences(own, other))})")
    return notes


def readable_content(dataset_dir: Path) -> dict | None:
    """A dataset dir's content config, or None when it has none that parses (a neighbour's damage is its own)."""
    try:
        record = read_record(dataset_dir) if is_dataset_dir(dataset_dir) else None
    except UserError:
        return None
    content = record.get("content") if record else None
    return content if isinstance(content, dict) else None


def made_by_run(record: dict) -> bool:
    """A dataset.json that run.py wrote: a fingerprint and the content config it hashes (not one made by hand)."""
    return "fingerprint" in record and isinstance(record.get("content"), dict)


class AnotherConfigError(UserError):
    """The dataset dir holds a dataset of another content config, which this run must never write into."""


def check_record(dataset_dir: Path, content: dict, shard_count: int) -> None:
    """Refuse, before any work and without writing, a dir made by another content config or shard layout."""
    existing = read_record(dataset_dir) if dataset_dir.is_dir() else None
    if existing is None:
        strangers = (
            [p.name for p in dataset_dir.iterdir() if not p.name.startswith(".")] if dataset_dir.is_dir() else []
        )
        if strangers:
            raise UserError(
                f"{dataset_dir} is not empty and has no {DATASET_JSON} (found {', '.join(sorted(strangers)[:3])}"
                "); refusing to write into a folder aigen did not make"
            )
        return
    if not made_by_run(existing):
        raise UserError(
            f"{dataset_dir / DATASET_JSON} has no fingerprint and content: a dataset dir not made by run.py; "
            "refusing to write into it"
        )
    if not same_config(existing, content):
        changes = differences(existing["content"], content)
        if only_identity_differs(changes):
            identity = existing["content"].get("source", {}).get("identity")
            raise AnotherConfigError(
                f"{dataset_dir} was made from photos at another path ({'; '.join(changes)}): if they are the same "
                f"photos (a copy, another node), pass source.identity={identity} to resume; if not, give these their "
                "own source.name=... or dataset_dir=..."
            )
        raise AnotherConfigError(
            f"{dataset_dir} was made by a different config ({'; '.join(changes)}); pass another dataset_dir=... (or "
            "dataset_dir=null for the default name, versioned) to write a new dataset, or rerun with the original "
            "settings to resume"
        )
    layout = existing.get("shard_count", shard_count)
    if layout != shard_count:
        raise UserError(
            f"{dataset_dir} is written with shard.count={layout}, this run has shard.count={shard_count}: "
            f"runs with different shard counts would split its pairs differently; use shard.count={layout} or "
            "another dataset_dir"
        )


def create_record(dataset_dir: Path, content: dict, config: dict, shard_count: int) -> None:
    """Create the dir and its dataset.json, once the run really starts (checked again under the lock, since
    another shard may have created it meanwhile)."""
    dataset_dir.mkdir(parents=True, exist_ok=True)
    with _record_lock(dataset_dir):
        check_record(dataset_dir, content, shard_count)
        if read_record(dataset_dir) is None:
            _write(
                dataset_dir,
                {
                    "fingerprint": fingerprint(content),
                    READING_RECORDED: True,
                    "content": content,
                    "config": config,
                    "shard_count": shard_count,
                    "versions": package_versions(),
                    "git_commit": git_commit(),
                    "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                    "runs": [],
                    "counts": {"pairs": 0, "failed": 0},
                },
            )


def is_upscaled(row: dict) -> bool:
    """A pair made from a photo smaller than `size` (rows made before photo_side was recorded: unknown, False)."""
    return "photo_side" in row and "size" in row and row["photo_side"] < row["size"]


def count_records(dataset_dir: Path, rows: dict[str, dict] | None = None) -> dict:
    """Totals over every shard: finished pairs (a manifest row with both its files), images that failed and were not
    done later, top reasons; `without_files` (only when there are any) counts rows whose files are gone. `rows`: the
    manifest rows when the caller has read them already."""
    rows = read_rows(dataset_dir, MANIFEST) if rows is None else rows
    pairs = rows_with_files(dataset_dir, rows)
    failures = {key: row for key, row in read_rows(dataset_dir, FAILURES).items() if key not in rows}
    reasons = Counter(f"{row['stage']}: {row['reason']}" for row in failures.values())
    counts = {
        "pairs": len(pairs),
        "upscaled": sum(is_upscaled(row) for row in pairs.values()),
        "failed": len(failures),
        "failure_reasons": dict(reasons.most_common(FAILURE_REASONS_KEPT)),
    }
    return counts | ({"without_files": len(rows) - len(pairs)} if len(rows) > len(pairs) else {})


def start_run(dataset_dir: Path, run: dict) -> None:
    """Record a run as `running` when it starts, so that one killed before its end is seen as such (status)."""
    with _record_lock(dataset_dir):
        record = read_record(dataset_dir)
        record["runs"].append({**run, "state": "running"})
        _write(dataset_dir, record)


def run_state(run: dict) -> str:
    """finished, running, interrupted or failed; runs recorded before `state` existed say `interrupted` or nothing."""
    return run.get("state") or ("interrupted" if run.get("interrupted") else "finished")


def shards_not_finished(record: dict, selection: str | None = None) -> list[int]:
    """The shards whose latest run did not finish this selection (still running, killed, interrupted, failed,
    never run, or finished in an earlier round that selected other photos). `selection` defaults to the newest
    run's: `python -m aigen.status` judges the round in progress."""
    count = record.get("shard_count", 1)
    runs = [run for run in record["runs"] if run["shard"][1] == count]
    if selection is None and runs:
        selection = runs[-1].get("selection")
    latest: dict[int, dict] = {}
    for run in runs:
        latest[run["shard"][0]] = run
    return [
        index
        for index in range(count)
        if index not in latest or run_state(latest[index]) != "finished" or latest[index].get("selection") != selection
    ]


def unfinished_note(record: dict) -> str | None:
    """What a tool that shows or publishes a dataset says of shards that have not finished (None when all have, or
    for a dir made by hand: no runs to finish)."""
    waiting = shards_not_finished(record) if "runs" in record else []
    if not waiting:
        return None
    count = record.get("shard_count", 1)
    which = f"shard(s) {waiting} of {count} have" if count > 1 else "its last run has"
    return f"{which} not finished: it holds the pairs made so far"


def record_run(dataset_dir: Path, run: dict) -> dict:
    """Replace this run's `running` entry (same `run_id`) with its results and refresh the merged totals; the last
    shard to finish leaves them complete."""
    with _record_lock(dataset_dir):
        record = read_record(dataset_dir)
        record["runs"] = [entry for entry in record["runs"] if entry.get("run_id") != run["run_id"]] + [run]
        record["counts"] = count_records(dataset_dir)
        record["versions"] = package_versions()
        record["git_commit"] = git_commit()
        _write(dataset_dir, record)
    return record
