"""One way to call every command-line tool: the same options spelled the same (W&B, output dir, split, audits),
and one path from a user's mistake to one `error:` line with exit code 2."""

from __future__ import annotations

import argparse
import functools
from collections.abc import Callable
from pathlib import Path

from omegaconf import OmegaConf

from aigen.dataset import check_dataset_dir
from aigen.errors import UserError, say

CONF = Path(__file__).resolve().parents[1] / "conf"


def add_wandb_options(parser: argparse.ArgumentParser, what: str = "also log to W&B") -> None:
    """`--logger wandb --project NAME`, as `logger=wandb logger.project=NAME` in run.py and aigen.detect."""
    parser.add_argument("--logger", choices=("none", "wandb"), default="none", help=what)
    parser.add_argument("--project", default="aigen", help="W&B project (with --logger wandb; default: aigen)")


def dataset_dirs(paths: list[Path]) -> list[Path]:
    """The dataset dirs a tool was given (a sweep's), in their order, a folder named twice (`x` and `x/`, a link to
    it) kept once; each checked to be a dataset dir before any is read (one line for the first that is not)."""
    first: dict[Path, Path] = {}
    for path in paths:
        first.setdefault(path.resolve(), path)
    for path in first.values():
        check_dataset_dir(path)
    return list(first.values())


def split_defaults() -> dict:
    """The detector's split settings (conf/detect.yaml: seed, val_fraction, test_fraction): the one place the
    export takes its defaults from too, so both split the same photos the same way."""
    detect = OmegaConf.load(CONF / "detect.yaml")
    return {key: detect[key] for key in ("seed", "val_fraction", "test_fraction")}


def add_split_options(parser: argparse.ArgumentParser) -> None:
    """`--seed --val-fraction --test-fraction`, as `seed= val_fraction= test_fraction=` in aigen.detect."""
    defaults = split_defaults()
    parser.add_argument("--seed", type=int, default=defaults["seed"], help=f"split seed ({defaults['seed']})")
    for key in ("val_fraction", "test_fraction"):
        flag = "--" + key.replace("_", "-")
        parser.add_argument(flag, type=float, default=defaults[key], help=f"share of source photos ({defaults[key]})")


def add_audit_option(parser: argparse.ArgumentParser) -> None:
    """`--audit DIR` (repeatable): the audits the report and the export show beside their datasets."""
    parser.add_argument(
        "--audit",
        dest="audit_dirs",
        metavar="DIR",
        type=Path,
        action="append",
        default=[],
        help="a python -m aigen.audit output folder (repeatable; default: outputs/audit-<dataset dir name>)",
    )


def check_out_folder(out: Path) -> None:
    """`--out` is a folder or does not exist yet, and does not lie under a file: said in one line before the work,
    which can take minutes, instead of a traceback after it."""
    for folder in (out, *out.parents):
        if folder.exists():
            if not folder.is_dir():
                where = "exists and is not a directory" if folder == out else f"is under {folder}, which is a file"
                raise UserError(f"--out {out} {where}")
            return


def one_line_errors(main: Callable[[list[str] | None], int]) -> Callable[[list[str] | None], int]:
    """A tool's `main(argv) -> exit code` whose UserError ends as one `error:` line and exit code 2."""

    @functools.wraps(main)
    def wrapped(argv: list[str] | None = None) -> int:
        try:
            return main(argv)
        except UserError as error:
            say(error)
            return 2

    return wrapped
