"""W&B for detector runs: the `logger` group's settings, the mode decided before `wandb.init`, never a prompt."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from aigen.tracking import redact, resolve_mode


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
    import wandb

    settings = cfg.logger
    mode, notice = resolve_mode(settings.get("mode"))
    if notice:
        print(notice)
    run_dir.mkdir(parents=True, exist_ok=True)
    run = wandb.init(
        project=settings.project,
        entity=settings.get("entity"),
        group=settings.get("group"),
        tags=list(settings.get("tags") or []),
        name=settings.get("name") or default_name,
        mode=mode,
        dir=str(run_dir),
        config=redact(OmegaConf.to_container(cfg, resolve=True)),
        job_type=job_type,
        settings=wandb.Settings(console="off", save_code=False),
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
