"""`task=eval`: score a checkpoint on the test pairs of any number of factory datasets, and on labelled benchmark sets
(aigen.detector.benchmarks), clean and perturbed; one table row per (set, perturbation), a confusion PNG per set,
per-image scores and a robustness plot."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import torch
from hydra.utils import to_absolute_path
from omegaconf import DictConfig

from aigen.dataset import is_dataset_dir
from aigen.detector.benchmarks import AI, REAL, LabelledSet, labelled_sets
from aigen.detector.data import UNREADABLE, Pair, dataset_dirs, load_pairs, pair_images, unseen_pairs
from aigen.detector.inputs import Inputs
from aigen.detector.metrics import binary_metrics, intervals
from aigen.detector.model import Detector, load_detector
from aigen.detector.perturb import Perturbation, parse_perturbations
from aigen.detector.plots import draw_confusion, draw_robustness
from aigen.detector.report import COLUMNS, results_markdown, small_sample_note, write_table
from aigen.detector.runtime import Scores, loader, resolve_precision, resolve_workers, score
from aigen.detector.tracking import tracking
from aigen.devices import resolve_device
from aigen.errors import UserError
from aigen.files import claim_output

EVAL_SPLITS = ("test", "unseen")
SWAPPED_AUC = 0.2  # on photos of its own training data a detector cannot rank this badly unless labels are swapped
SWAPPED_MIN_IMAGES = 5  # of each class: chance ranks 5 + 5 images all backwards 1 time in 252 (2 + 2: 1 in 6)


EvalSet = Path | LabelledSet  # an aigen dataset dir (its unseen test pairs are scored) or a labelled benchmark set


def unique(names: list[str]) -> list[str]:
    """The names, with -2, -3... when two eval sets share one (their PNGs must not collide)."""
    chosen: list[str] = []
    for first in names:
        name, count = first, 1
        while name in chosen:
            count += 1
            name = f"{first}-{count}"
        chosen.append(name)
    return chosen


def unique_names(dirs: list[Path]) -> list[str]:
    """Each dataset's basename, made unique."""
    return unique([dataset_dir.name for dataset_dir in dirs])


def eval_sets(entries: list[str], settings: DictConfig) -> list[EvalSet]:
    """Each eval_sets entry by its layout: an aigen dataset dir, or the labelled sets (rows) of a benchmark."""
    sets: list[EvalSet] = []
    for path in dataset_dirs(entries, "eval_sets"):
        sets += [path] if is_dataset_dir(path) else labelled_sets(path, settings)
    return sets


def chosen_pairs(detector: Detector, dirs: list[Path], eval_split: str) -> dict[Path, tuple[list[Pair], int, int]]:
    """Per dataset: (pairs to score, pairs seen in training or validation by content, all pairs)."""
    if eval_split not in EVAL_SPLITS:
        raise UserError(f"eval_split={eval_split!r} is not one of {', '.join(EVAL_SPLITS)}")
    chosen = {}
    for dataset_dir in dirs:
        pairs = load_pairs(dataset_dir)
        selected, seen = unseen_pairs(pairs, detector.split, eval_split)
        if not selected:
            raise UserError(
                f"{dataset_dir}: none of its {len(pairs)} pairs is an unseen {eval_split} pair ({seen} photos were "
                "trained or validated on); use more photos, a larger test_fraction, or eval_split=unseen"
            )
        chosen[dataset_dir] = (selected, seen, len(pairs))
    return chosen


def check_labels(row: dict, trained_on: bool) -> None:
    """Fail loudly when labels look inverted: a detector ranks its own training data's test photos this badly only
    when original and AI are swapped somewhere (aigen: original = 0, AI = 1; HF imagefolder: ai = 0). Only on real
    evidence: the AUC's 95% interval below 0.5, on SWAPPED_MIN_IMAGES of each class (the bootstrap interval of two
    pairs ranked backwards is [0, 0]); on fewer images a low AUC is left to the row and its small-sample note."""
    evidence = row["roc_auc_high"] < 0.5 and min(row["n_real"], row["n_ai"]) >= SWAPPED_MIN_IMAGES
    if trained_on and row["perturbation"] == "none" and row["roc_auc"] < SWAPPED_AUC and evidence:
        raise UserError(
            f"{row['dataset']}: ROC AUC {row['roc_auc']:.3f} on the test pairs of a training dataset, far below 0.5: "
            "the labels look swapped (aigen uses original = 0, AI = 1)"
        )


def leave_out_unreadable(
    name: str, ids: list[str], labels: Sequence[int], result: Scores
) -> tuple[list[str], Scores, list[str]]:
    """(ids kept, their scores, ids skipped): images that could not be decoded are a counted skip, not a stop,
    unless no image of a class is left (a row of one class would have an accuracy but no detection score)."""
    readable = result.labels != UNREADABLE
    if not readable.any():
        raise UserError(f"{name}: none of its {len(ids)} images can be decoded, e.g. {ids[0]}")
    for label, kind in ((REAL, "real"), (AI, "AI")):
        of_class = [index for index, value in enumerate(labels) if value == label]
        if of_class and not readable[of_class].any():
            raise UserError(
                f"{name}: none of its {len(of_class)} {kind} images can be decoded, e.g. {ids[of_class[0]]}; a row "
                "needs both classes"
            )
    kept = [image_id for image_id, decoded in zip(ids, readable, strict=True) if decoded]
    skipped = [image_id for image_id, decoded in zip(ids, readable, strict=True) if not decoded]
    return kept, Scores(result.labels[readable], result.scores[readable], result.loss), skipped


def score_sets(
    detector: Detector,
    sets: list[EvalSet],
    cfg: DictConfig,
    perturbations: list[Perturbation],
    device: torch.device,
    dtype: torch.dtype | None,
) -> list[dict]:
    """One row per (set, perturbation): metrics with their intervals, counts, and the per-image ids, labels, scores."""
    dirs = [entry for entry in sets if isinstance(entry, Path)]
    chosen = chosen_pairs(detector, dirs, cfg.eval_split)
    workers = resolve_workers(cfg.workers)
    inputs = Inputs(detector.model, detector.preprocess, cfg.cache_dir, cfg.batch_size, workers, device, dtype)
    model = detector.model.to(device)
    trained_on = set(detector.split["datasets"])
    names = unique([entry.name for entry in sets])
    rows = []
    for entry, name in zip(sets, names, strict=True):
        if isinstance(entry, Path):
            pairs, seen, total = chosen[entry]
            images, labels = pair_images(pairs)
            ids = [pair.id for pair in pairs for _ in (0, 1)]
            about = {"dir": entry, "split": cfg.eval_split, "pairs": total, "seen": seen}
        else:
            images, labels, ids = entry.images, entry.labels, entry.ids
            about = {"dir": entry.source, "split": "all", "pairs": None, "seen": None}
        for perturbation in perturbations:
            dataset = inputs.labelled(images, labels, perturbation, desc=f"features {name} {perturbation.name}")
            batches = loader(dataset, cfg.batch_size, inputs.workers, device)
            result = score(model, batches, device, dtype, f"eval {name} {perturbation.name}")
            kept_ids, result, skipped = leave_out_unreadable(name, ids, labels, result)
            metrics, counts = binary_metrics(result.labels, result.scores)
            row = {"dataset": name, "perturbation": perturbation.name} | about | metrics
            row |= intervals(result.labels, result.scores, counts, cfg.seed)
            notes = [
                small_sample_note(counts.n),
                f"{len(skipped)} unreadable skipped, e.g. {skipped[0]}" if skipped else "",
            ]
            row |= {"counts": counts, "note": "; ".join(note for note in notes if note)}
            row |= {"ids": kept_ids, "labels": result.labels, "scores": result.scores}
            check_labels(row, str(about["dir"]) in trained_on)
            rows.append(row)
            seen_note = f"; {seen} of {total} pairs left out as seen in training" if isinstance(entry, Path) else ""
            print(
                f"{name} ({perturbation.name}, {row['split']}): accuracy {metrics['accuracy']:.4f} (real "
                f"{metrics['accuracy_real']:.4f}, AI {metrics['accuracy_ai']:.4f}), AUC {metrics['roc_auc']:.4f} "
                f"[{row['roc_auc_low']:.3f}, {row['roc_auc_high']:.3f}], AP {metrics['average_precision']:.4f}, "
                f"n={counts.n}{seen_note}" + (f" -- {row['note']}" if row["note"] else "")
            )
    return rows


def write_scores(rows: list[dict], path: Path) -> None:
    """Every scored image: dataset, perturbation, pair id, label (AI = 1), P(ai)."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["dataset", "perturbation", "id", "label", "score"])
        for row in rows:
            for image_id, label, value in zip(row["ids"], row["labels"], row["scores"], strict=True):
                writer.writerow([row["dataset"], row["perturbation"], image_id, int(label), f"{value:.6f}"])


def evaluate(cfg: DictConfig) -> list[dict]:
    # 1. Check the settings and the checkpoint before any work.
    if not cfg.checkpoint:
        raise UserError("task=eval needs checkpoint=RUN/best.pt (written by task=train)")
    perturbations = parse_perturbations(cfg.perturb)
    resolve_workers(cfg.workers)
    detector = load_detector(Path(to_absolute_path(str(Path(cfg.checkpoint).expanduser()))))
    sets = eval_sets(cfg.eval_sets, cfg.benchmark)
    device = resolve_device(cfg.device)
    dtype = resolve_precision(cfg.precision, device)
    out = Path(to_absolute_path(cfg.output_dir))
    claim_output(out, "python -m aigen.detect task=eval")

    # 2. Score each dataset, clean and perturbed; a confusion matrix per dataset (clean).
    with tracking(cfg, "eval-detector", out.name, out) as tracker:
        rows = score_sets(detector, sets, cfg, perturbations, device, dtype)
        for row in rows:
            if row["perturbation"] == "none":
                row["confusion_png"] = out / f"confusion_{row['dataset'].replace('/', '-')}.png"
                title = f"{row['dataset']} ({row['split']}, n={row['n']})"
                draw_confusion(row["counts"], title).save(row["confusion_png"])

        # 3. The table (CSV, Markdown, W&B), per-image scores, and accuracy against perturbation strength.
        csv_path, markdown_path = write_table(rows, out)
        write_scores(rows, out / "scores.csv")
        robustness_png = out / "robustness.png" if len(perturbations) > 1 else None
        if robustness_png:
            draw_robustness(rows).save(robustness_png)
        if tracker:
            tracker.table("results", list(COLUMNS), [[row[key] for key in COLUMNS] for row in rows])
            tracker.images(
                {"confusion/" + row["dataset"]: row["confusion_png"] for row in rows if "confusion_png" in row}
            )
            if robustness_png:
                tracker.images({"robustness": robustness_png})
    print(results_markdown(rows), end="")
    print(f"done: evaluated {cfg.checkpoint} on {len(sets)} set(s) -> {markdown_path}, {csv_path}")
    print(
        f"per-image scores: {out / 'scores.csv'}" + (f"; robustness plot: {robustness_png}" if robustness_png else "")
    )
    return rows
