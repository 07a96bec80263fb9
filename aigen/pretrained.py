"""Pretrained weights, loaded the same way by generators and detectors: a hub id (+ revision) or a local folder,
tiny random twins saved once into a local cache, and one line when loading fails."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch

from aigen.errors import UserError


def is_local_path(model: str) -> bool:
    """A folder rather than a hub id (`org/name`): absolute, relative with `.` or `~`, or not of the form a/b."""
    return model.startswith(("/", ".", "~")) or model.count("/") != 1 or os.path.isdir(model)


def location(model: str) -> str:
    """What `from_pretrained` is given: a folder with `~` expanded, or the hub id as it is."""
    return os.path.expanduser(model) if is_local_path(model) else model


def load_error(what: str, where: str, revision: str | None, error: Exception, option: str) -> UserError:
    """One line: what failed, and the way out that fits (a local folder, or the hub cache when offline)."""
    reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if is_local_path(where):
        return UserError(f"cannot load {what} from the folder {where}: {reason}")
    offline = os.environ.get("HF_HUB_OFFLINE", "").strip() not in ("", "0")
    note = " (HF_HUB_OFFLINE is set: only the Hugging Face cache is used)" if offline else ""
    fetch = f"hf download {where}" + (f" --revision {revision}" if revision else "")
    return UserError(
        f"cannot load {what} {where!r} (revision {revision}){note}: {reason} -- download it once with `{fetch}`, "
        f"or set {option}=/path/to/a/local/copy"
    )


def cached_build(cache_dir: str | os.PathLike, folder_name: str, build: Callable[[Path], None]) -> Path:
    """`cache_dir/folder_name`, saved by `build(folder)` on first use (tiny random twins). Concurrent first uses
    each build; one rename wins, so the folder only ever appears complete. A build seeds torch for its weights in
    a forked random state, so what the caller draws next does not depend on whether the cache was cold."""
    cache = Path(os.path.expanduser(cache_dir))
    target = cache / folder_name
    if target.is_dir():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder_name}-", dir=cache))
    try:
        with torch.random.fork_rng(devices=[]):
            build(staging)
        os.rename(staging, target)
    except OSError:
        if not target.is_dir():
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
