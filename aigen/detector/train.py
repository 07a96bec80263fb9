"""`task=train`: fit a detector on the training pairs of factory datasets, keep the best epoch by validation.

The test pairs are not read here: they are for `task=eval` / `task=matrix`, which report them alone.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from hydra.utils import instantiate, to_absolute_path
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from aigen.detector.data import RESIZES, Augment, dataset_dirs, load_pairs, make_split, select
from aigen.detector.inputs import Inputs
from aigen.detector.metrics import binary_metrics
from aigen.detector.model import (
    Model,
    checkpoint_payload,
    model_from_payload,
    model_preprocess,
    read_checkpoint,
    save_checkpoint,
)
from aigen.detector.probe import FeatureProbe
from aigen.detector.runtime import (
    autocast,
    loader,
    loader_errors,
    precision_name,
    resolve_precision,
    resolve_workers,
    score,
)
from aigen.detector.tracking import tracking
from aigen.devices import resolve_device
from aigen.errors import UserError
from aigen.files import claim_output, write_atomic
from aigen.splits import check_fractions
from aigen.words import counted

MONITORS = ("accuracy", "loss")


@dataclass
class TrainResult:
    output_dir: Path
    best: dict
    last_epoch: int
    stopped: str

    def line(self) -> str:
        best = self.best
        return (
            f"done: best val accuracy {best['val/accuracy']:.4f} (loss {best['val/loss']:.4f}) at epoch "
            f"{best['epoch']}; stopped after epoch {self.last_epoch} ({self.stopped}) -> {self.output_dir / 'best.pt'}"
        )


def check_settings(cfg: DictConfig) -> None:
    """Fail on a bad value before reading any image."""
    if cfg.monitor not in MONITORS:
        raise UserError(f"monitor={cfg.monitor!r} is not one of {', '.join(MONITORS)}")
    for key, minimum in (("epochs", 1), ("batch_size", 1), ("image_size", 32), ("patience", 0), ("seed", 0)):
        if not isinstance(cfg[key], int) or cfg[key] < minimum:
            raise UserError(f"{key}={cfg[key]!r} must be an integer >= {minimum}")
    if not cfg.lr > 0:
        raise UserError(f"lr={cfg.lr} must be positive")
    if cfg.resize not in RESIZES:
        raise UserError(f"resize={cfg.resize!r} is not one of {', '.join(RESIZES)}")
    check_fractions(cfg.val_fraction, cfg.test_fraction)
    if cfg.augment.paired and cfg.batch_size % 2:
        raise UserError(
            f"augment.paired=true keeps both halves of a pair in a batch: batch_size={cfg.batch_size} must be even"
        )


def check_trainable(model: Model, augment: Augment) -> None:
    if isinstance(model, FeatureProbe) and augment.active:
        raise UserError(
            f"model={model.config.family}_probe trains on cached backbone features: augmentations need model=resnet*"
        )


def new_model(cfg: DictConfig, augment: Augment) -> Model:
    """The model a new run starts from (seeded), refused where it cannot train with these augmentations."""
    torch.manual_seed(cfg.seed)
    model = instantiate(cfg.model, _partial_=True)()  # called here, so its UserError is not wrapped by Hydra
    check_trainable(model, augment)
    return model


def training_dirs(train_sets: list[str] | str) -> list[Path]:
    """The train_sets dirs, each once: a dataset listed twice would count its pairs twice, and break resume."""
    dirs = dataset_dirs(train_sets, "train_sets")
    if len(set(dirs)) < len(dirs):
        raise UserError(f"train_sets lists a dataset twice: {list(train_sets)}")
    return dirs


def improvement_score(record: dict, monitor: str) -> list[float]:
    """Higher is better; with `accuracy`, equal accuracies are told apart by the lower loss."""
    if monitor == "accuracy":
        return [record["val/accuracy"], -record["val/loss"]]
    return [-record["val/loss"]]


def train_epoch(model, batches, optimizer, scaler, device, dtype, desc: str) -> tuple[float, float]:
    """One pass over the shuffled training images; (mean loss, accuracy)."""
    model.train()
    loss_sum, correct, seen = 0.0, 0, 0
    progress = tqdm(batches, desc=desc, unit="batch", dynamic_ncols=True, disable=None)
    for images, targets in progress:
        images, targets = images.to(device, non_blocking=True), targets.to(device, non_blocking=True)
        with autocast(device, dtype):
            logits = model(images).logits.float()
        loss = F.cross_entropy(logits, targets)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        loss_sum += loss.item() * len(targets)
        correct += int((logits.argmax(dim=1) == targets).sum())
        seen += len(targets)
        progress.set_postfix(loss=f"{loss_sum / seen:.4f}")
    return loss_sum / max(seen, 1), correct / max(seen, 1)


def write_json(path: Path, data: dict) -> None:
    write_atomic(path, (json.dumps(data, indent=2) + "\n").encode())


def write_metrics(out: Path, monitor: str, loop: dict, stopped: str) -> None:
    """metrics.json: the best epoch's validation metrics and every epoch's, rewritten after each epoch."""
    write_json(
        out / "metrics.json", {"monitor": monitor, "stopped": stopped, "best": loop["best"], "history": loop["history"]}
    )


def train(cfg: DictConfig) -> TrainResult:
    # 1. Check the settings and the model, then read the datasets, before any training.
    check_settings(cfg)
    out = Path(to_absolute_path(cfg.output_dir))
    dirs = training_dirs(cfg.train_sets)
    augment = Augment(**OmegaConf.to_container(cfg.augment, resolve=True))
    workers = resolve_workers(cfg.workers)
    device = resolve_device(cfg.device)
    dtype = resolve_precision(cfg.precision, device)

    # 2. A new run builds the model and splits by photo content; a resumed run continues last.pt with its split.
    last_path, best_path = out / "last.pt", out / "best.pt"
    if cfg.resume:
        state = read_checkpoint(last_path)
        model = model_from_payload(state)
        check_trainable(model, augment)
        loop = state["loop"]
    else:
        if last_path.exists():
            raise UserError(
                f"{out} already holds a training run: resume=true continues it, or choose another output_dir"
            )
        model = new_model(cfg, augment)
        loop = {"epoch": 0, "best": None, "stale": 0, "history": []}
    preprocess = model_preprocess(model, cfg.image_size, cfg.resize)
    pairs = {dataset_dir: load_pairs(dataset_dir) for dataset_dir in dirs}
    if cfg.resume:
        split = state["split"]
        if sorted(split["datasets"]) != sorted(str(dataset_dir) for dataset_dir in dirs):
            raise UserError(f"resume=true with other train_sets than the run in {out}: {sorted(split['datasets'])}")
        if state["preprocess"] != asdict(preprocess):
            raise UserError(f"resume=true with other image settings than the run used: {state['preprocess']}")
        print(f"resuming {last_path} at epoch {loop['epoch'] + 1}")
    else:
        split = make_split(pairs, cfg.seed, cfg.val_fraction, cfg.test_fraction, cfg.allow_no_test)
    claim_output(out, "python -m aigen.detect task=train")
    write_json(out / "split.json", split)
    inputs = Inputs(model, preprocess, cfg.cache_dir, cfg.batch_size, workers, device, dtype)
    chosen = {side: [select(pairs[d], split["datasets"][str(d)][side]) for d in dirs] for side in ("train", "val")}
    train_images = inputs(chosen["train"], augment=augment, seed=cfg.seed, desc="features (train)")
    val_batches = loader(inputs(chosen["val"], desc="features (val)"), cfg.batch_size, inputs.workers, device)
    model.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    if cfg.resume:
        optimizer.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
    test_pairs = sum(len(sides["test"]) for sides in split["datasets"].values())
    print(
        f"{counted(len(train_images) // 2, 'training pair')}, "
        f"{counted(len(val_batches.dataset) // 2, 'validation pair')} (they choose best.pt), "
        f"{counted(test_pairs, 'test pair')} left for task=eval, from {counted(len(dirs), 'dataset')}; "
        f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters on {device} ({precision_name(dtype)})"
    )

    # 3. Epochs: train, validate, keep the best model, save the loop state, stop early.
    stopped = "max epochs"
    with tracking(cfg, "train-detector", out.name, out) as tracker, loader_errors():
        for epoch in range(loop["epoch"] + 1, cfg.epochs + 1):
            if cfg.patience and loop["stale"] >= cfg.patience:
                stopped = f"early stop: {cfg.patience} epochs without improvement"
                break
            train_images.epoch = epoch
            shuffle_seed = cfg.seed * 100_003 + epoch
            batches = loader(train_images, cfg.batch_size, inputs.workers, device, shuffle_seed, augment.paired)
            train_loss, train_accuracy = train_epoch(
                model, batches, optimizer, scaler, device, dtype, f"epoch {epoch}/{cfg.epochs}"
            )
            val = score(model, val_batches, device, dtype, "validate")
            val_metrics, _ = binary_metrics(val.labels, val.scores)
            record = {"epoch": epoch, "train/loss": train_loss, "train/accuracy": train_accuracy, "val/loss": val.loss}
            record |= {f"val/{key}": value for key, value in val_metrics.items()}
            loop["history"].append(record)
            loop["epoch"] = epoch
            best = loop["best"]
            improved = best is None or improvement_score(record, cfg.monitor) > improvement_score(best, cfg.monitor)
            if improved:
                loop |= {"best": record, "stale": 0}
                save_checkpoint(best_path, checkpoint_payload(model, preprocess, split, epoch) | {"metrics": record})
            else:
                loop["stale"] += 1
            last = {"optimizer": optimizer.state_dict(), "scaler": scaler.state_dict(), "loop": loop}
            save_checkpoint(last_path, checkpoint_payload(model, preprocess, split, epoch) | last)
            write_metrics(out, cfg.monitor, loop, "running")
            print(
                f"epoch {epoch}: train loss {train_loss:.4f} acc {train_accuracy:.4f} | val loss {val.loss:.4f} "
                f"acc {val_metrics['accuracy']:.4f} auc {val_metrics['roc_auc']:.4f}" + (" (best)" if improved else "")
            )
            if tracker:
                tracker.log(record)
        if tracker:
            tracker.summary({f"best/{key}": value for key, value in loop["best"].items()})
    result = TrainResult(out, loop["best"], loop["epoch"], stopped)
    write_metrics(out, cfg.monitor, loop, stopped)
    print(result.line())
    print(f"files: {best_path}, {last_path}, {out / 'split.json'}, {out / 'metrics.json'}")
    return result
