"""Weights & Biases tracking: config, progress, a gallery table, the dataset as an artifact; never a prompt."""

from __future__ import annotations

import netrc
import os
import re
from pathlib import Path

from aigen.dataset import MANIFEST, read_rows
from aigen.errors import UserError

MODES = ("online", "offline", "disabled")
SECRET_KEY = re.compile(r"api[_-]?key|token|secret|password", re.IGNORECASE)


URL_USER_INFO = re.compile(r"(?<=://)[^/@\s]+@")  # scheme://user:password@host
URL_SECRET_QUERY = re.compile(r"(?i)([?&](?:key|api[_-]?key|token|sig|signature|password)=)[^&#\s]+")


def redact(config: object) -> object:
    """A copy of a config with the values of secret-looking keys replaced, and the credentials a URL can carry (a
    `user:password@` or a `?key=`): nothing secret is ever logged."""
    if isinstance(config, dict):
        return {k: "<redacted>" if SECRET_KEY.search(str(k)) and v else redact(v) for k, v in config.items()}
    if isinstance(config, list):
        return [redact(value) for value in config]
    if isinstance(config, str):
        return URL_SECRET_QUERY.sub(r"\1<redacted>", URL_USER_INFO.sub("<redacted>@", config))
    return config


def has_wandb_credentials() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (OSError, netrc.NetrcParseError):
        return False


def resolve_mode(configured: str | None) -> tuple[str, str | None]:
    """(mode, notice): the config wins, then WANDB_MODE, then online only when credentials exist.

    Decided before `wandb.init`, which would otherwise prompt on a terminal or raise without one.
    """
    mode = configured or os.environ.get("WANDB_MODE")
    if mode:
        if mode not in MODES:
            raise UserError(f"logger.mode={mode!r} is not one of {', '.join(MODES)}")
        return mode, None
    if has_wandb_credentials():
        return "online", None
    return "offline", "W&B: no credentials found, logging offline (`wandb login` to go online: docs/configuration.md)"


def start_wandb(project: str, job_type: str, name: str, run_dir: Path, config: dict, mode: str | None = None,
                entity: str | None = None, group: str | None = None, tags: list[str] | None = None):  # fmt: skip
    """The one place that starts a W&B run, for every tool: the mode decided first (never a prompt), the config
    without secrets, W&B's files in `run_dir`, no console capture."""
    import wandb

    mode, notice = resolve_mode(mode)
    if notice:
        print(notice)
    run_dir.mkdir(parents=True, exist_ok=True)
    return wandb.init(
        project=project,
        entity=entity,
        group=group,
        tags=list(tags or []),
        name=name,
        mode=mode,
        dir=str(run_dir),
        config=redact(config),
        job_type=job_type,
        settings=wandb.Settings(console="off", save_code=False, quiet=True),  # no run summary on the console
    )


class WandbTracker:
    """One W&B run per dataset job; runs of a multirun sweep or of a sharded job share a group."""

    def __init__(
        self,
        project: str,
        entity: str | None = None,
        group: str | None = None,
        tags: list[str] | None = None,
        name: str | None = None,
        mode: str | None = None,
        artifact_images: str = "auto",
        artifact_files_max: int = 2000,
    ) -> None:
        if artifact_images not in ("auto", "files", "reference"):
            raise UserError(f"logger.artifact_images={artifact_images!r} is not one of auto, files, reference")
        self.project = project
        self.entity = entity
        self.group = group
        self.tags = list(tags or [])
        self.name = name
        self.mode = mode
        self.artifact_images = artifact_images
        self.artifact_files_max = artifact_files_max
        self._run = None

    def start(
        self,
        config: dict,
        dataset_dir: Path,
        run_dir: Path,
        default_group: str | None,
        job_type: str = "make-dataset",
    ) -> None:
        self._run = start_wandb(
            self.project,
            job_type,
            self.name or dataset_dir.name,
            run_dir,
            config,
            self.mode,
            self.entity,
            self.group or default_group,
            self.tags,
        )

    def progress(self, metrics: dict) -> None:
        self._run.log(metrics)

    def finish(self, summary: dict, dataset_dir: Path, gallery: list[dict], failed: bool, log_dataset: bool) -> bool:
        """The summary and gallery; the dataset artifact only when `log_dataset` (the dataset is complete: never
        a partial version per shard). Whether anything was logged: nothing is with W&B disabled."""
        import wandb

        run = self._run
        logged = not run.disabled
        run.summary.update(summary)
        if gallery:
            columns = ["id", "original", "ai", "category", "seed", "guidance_scale", "steps", "generator"]
            table = wandb.Table(columns=columns)
            for row in gallery:
                table.add_data(
                    row["id"],
                    wandb.Image(str(dataset_dir / row["original"])),
                    wandb.Image(str(dataset_dir / row["ai"])),
                    row.get("category", ""),
                    str(row.get("seed")),  # 63-bit seeds do not fit W&B's float numbers exactly
                    row.get("guidance_scale"),
                    row.get("steps"),
                    row["generator"],
                )
            run.log({"gallery": table})
        if log_dataset:
            run.log_artifact(self._artifact(dataset_dir, summary))
        run.finish(exit_code=1 if failed else 0)
        self._run = None
        return logged

    def log_dataset(self, config: dict, dataset_dir: Path, summary: dict, run_dir: Path) -> None:
        """A run of its own that logs a complete dataset's artifact (`python -m aigen.status DIR --log`)."""
        self.start(config, dataset_dir, run_dir, dataset_dir.name, job_type="log-dataset")
        self.finish(summary, dataset_dir, [], failed=False, log_dataset=True)

    def abort(self) -> None:
        """Finish the run as failed (the job raised); a sweep's other jobs go on."""
        if self._run is not None:
            self._run.finish(exit_code=1)
            self._run = None

    def _artifact(self, dataset_dir: Path, summary: dict):
        """The records and every pair in the manifest, file by file: never a walk of the folders, which would
        meet other runs' temporary files."""
        import wandb

        name = re.sub(r"[^A-Za-z0-9._-]", "-", dataset_dir.name)
        artifact = wandb.Artifact(name, type="dataset", metadata=summary)
        for path in sorted(dataset_dir.glob("*.json*")):
            artifact.add_file(str(path))
        rows = read_rows(dataset_dir, MANIFEST)
        as_files = self.artifact_images == "files" or (
            self.artifact_images == "auto" and len(rows) <= self.artifact_files_max
        )
        for image_id in sorted(rows):
            for half in ("original", "ai"):
                relative = rows[image_id][half]
                if as_files:
                    artifact.add_file(str(dataset_dir / relative), name=relative)
                else:
                    artifact.add_reference(f"file://{dataset_dir / relative}", name=relative)
        return artifact
