"""W&B for detector runs: the `logger` group's settings, the mode decided before `wandb.init`, never a prompt."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from aigen.tracking import start_wandb


class DetectorRun:
    """A started W&B run: metrics per epoch (x-axis `epoch`), tables with images, a summary."""

    def __init__(self, run) -> None:
        self.run = run

    def log(self, metrics: dict) -> None:
        self.run.log(metrics)

    def table(self, key: str, columns: list[str], rows: list[list]) -> None:
        import wandb

        self.run.log({key: wandb.Table(columns=columns, data=rows)})

    def images(self, paths: dict[str, Path]) -> None:
        import wandb

        self.run.log({key: wandb.Image(str(path)) for key, path in paths.items()})

    def summary(self, values: dict) -> None:
        self.run.summary.update(values)


@contextmanager
def tracking(cfg: DictConfig, job_type: str, default_name: str, run_dir: Path) -> Iterator[DetectorRun | None]:
    """A W&B run for the block when `logger` is set (None otherwise); a block that raises finishes it as failed."""
    if not cfg.get("logger"):
        yield None
        return
    settings = cfg.logger
    run = start_wandb(
        settings.project,
        job_type,
        settings.get("name") or default_name,
        run_dir,
        OmegaConf.to_container(cfg, resolve=True),
        settings.get("mode"),
        settings.get("entity"),
        settings.get("group"),
        settings.get("tags"),
    )
    run.define_metric("epoch")
    run.define_metric("train/*", step_metric="epoch")
    run.define_metric("val/*", step_metric="epoch")
    try:
        yield DetectorRun(run)
    except BaseException:
        run.finish(exit_code=1)
        raise
    run.finish()
