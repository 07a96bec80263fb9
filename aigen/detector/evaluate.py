"""`task=eval`: score a checkpoint on any number of factory datasets; one table row and one confusion PNG each."""

from __future__ import annotations

from pathlib import Path

from hydra.utils import to_absolute_path
from omegaconf import DictConfig

from aigen.detector.data import Pair, PairImages, dataset_dirs, load_pairs
from aigen.detector.metrics import binary_metrics
from aigen.detector.model import load_detector
from aigen.detector.report import COLUMNS, draw_confusion, results_markdown, write_table
from aigen.detector.runtime import loader, resolve_precision, score
from aigen.detector.tracking import tracking
from aigen.devices import resolve_device
from aigen.errors import UserError


def unique_names(dirs: list[Path]) -> list[str]:
    """Each dataset's basename, with -2, -3... when two eval sets share one (their PNGs must not collide)."""
    names: list[str] = []
    for dataset_dir in dirs:
        name, count = dataset_dir.name, 1
        while name in names:
            count += 1
            name = f"{dataset_dir.name}-{count}"
        names.append(name)
    return names


def unseen_pairs(pairs: list[Pair], trained_ids: set[str]) -> list[Pair]:
    """The pairs whose photo the model never trained on: a training dataset's held-out pairs, and in another
    dataset of the same photos (indoor-sd, indoor-dalle2) the pairs whose id was not in the training split."""
    return [pair for pair in pairs if pair.id not in trained_ids]


def evaluate(cfg: DictConfig) -> list[dict]:
    # 1. Check the settings, the checkpoint and the datasets before any work.
    if not cfg.checkpoint:
        raise UserError("task=eval needs checkpoint=RUN/best.pt (written by task=train)")
    detector = load_detector(Path(to_absolute_path(str(Path(cfg.checkpoint).expanduser()))))
    dirs = dataset_dirs(cfg.eval_sets, "eval_sets")
    trained_ids = {image_id for sides in detector.split["datasets"].values() for image_id in sides["train"]}
    chosen, splits = {}, {}
    for dataset_dir in dirs:
        pairs = load_pairs(dataset_dir)
        chosen[dataset_dir] = unseen_pairs(pairs, trained_ids)
        if not chosen[dataset_dir]:
            raise UserError(f"every photo of {dataset_dir} was in the training split: nothing unseen to evaluate")
        splits[dataset_dir] = "held-out" if len(chosen[dataset_dir]) < len(pairs) else "all"
    device = resolve_device(cfg.device)
    dtype = resolve_precision(cfg.precision, device)
    out = Path(to_absolute_path(cfg.output_dir))
    out.mkdir(parents=True, exist_ok=True)
    model = detector.model.to(device)

    # 2. Score each dataset; one confusion matrix each.
    rows = []
    with tracking(cfg, "eval-detector", out.name, out) as tracker:
        for dataset_dir, name in zip(dirs, unique_names(dirs), strict=True):
            split = splits[dataset_dir]
            images = PairImages(chosen[dataset_dir], detector.preprocess)
            result = score(model, loader(images, cfg.batch_size, cfg.workers, device), device, dtype, f"eval {name}")
            metrics, counts = binary_metrics(result.labels, result.scores)
            confusion_png = out / f"confusion_{name}.png"
            draw_confusion(counts, f"{name} ({split}, n={counts.n})").save(confusion_png)
            rows.append({"dataset": name, "split": split, **metrics, "confusion_png": confusion_png})
            print(f"{name} ({split}): accuracy {metrics['accuracy']:.4f}, AUC {metrics['roc_auc']:.4f}, n={counts.n}")

        # 3. The cross-dataset table: CSV, Markdown, W&B.
        csv_path, markdown_path = write_table(rows, out)
        if tracker:
            columns = [*COLUMNS, "confusion"]
            tracker.table(
                "results",
                columns,
                [[*(row[key] for key in COLUMNS), tracker.image(row["confusion_png"])] for row in rows],
            )
    print(results_markdown(rows), end="")
    print(f"done: evaluated {cfg.checkpoint} on {len(rows)} dataset(s) -> {markdown_path}, {csv_path}")
    print(f"confusion matrices: {', '.join(str(row['confusion_png']) for row in rows)}")
    return rows
