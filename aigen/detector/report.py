"""What a person reads after an evaluation: the cross-dataset table as CSV (every number, interval bounds in their
own columns) and Markdown (the metrics of detection papers, each with its 95% interval, and a warning where few
images were scored)."""

from __future__ import annotations

import csv
import math
from pathlib import Path

from aigen.detector.metrics import BOOTSTRAP_RESAMPLES, ECE_BINS, SMALL_SAMPLE
from aigen.tables import markdown_table

WITH_INTERVAL = ("accuracy", "accuracy_real", "accuracy_ai", "roc_auc")
COLUMNS = (
    "dataset",
    "perturbation",
    "split",
    "n",
    "n_real",
    "n_ai",
    *(f"{metric}{bound}" for metric in WITH_INTERVAL[:3] for bound in ("", "_low", "_high")),
    "balanced_accuracy",
    "roc_auc",
    "roc_auc_low",
    "roc_auc_high",
    "average_precision",
    "tpr_at_5_fpr",
    "ece",
    "precision",
    "recall",
    "f1",
    "pairs",
    "seen",
    "note",
)
# Markdown header -> the row's key; a key in WITH_INTERVAL is shown with its interval.
MARKDOWN = {
    "dataset": "dataset",
    "perturbation": "perturbation",
    "split": "split",
    "n (real/AI)": "n",
    "accuracy [95% CI]": "accuracy",
    "real acc. [95% CI]": "accuracy_real",
    "AI acc. [95% CI]": "accuracy_ai",
    "balanced acc.": "balanced_accuracy",
    "ROC AUC [95% CI]": "roc_auc",
    "AP": "average_precision",
    "TPR@5%FPR": "tpr_at_5_fpr",
    "ECE": "ece",
    "pairs": "pairs",
    "seen": "seen",
    "note": "note",
}
SPLIT_NOTE = (
    "AI is the positive class; n counts images (real / AI). real acc.: the share of real (original) images called "
    "real; AI acc.: the share of AI images called AI (recall); balanced acc.: their mean; TPR@5%FPR: the share of AI "
    "images caught at the threshold that flags at most 5% of the real ones; AP: average precision; ECE: expected "
    f"calibration error of P(ai) over {ECE_BINS} equal bins (0 = calibrated). Intervals: 95%, Wilson for the "
    f"accuracies, a bootstrap of {BOOTSTRAP_RESAMPLES} resamples (real and AI resampled apart) for ROC AUC. "
    "split `test`: the pairs whose source photo falls in the test split (by content: seed and fractions of the "
    "checkpoint's split.json); `unseen`: every pair whose photo the model neither trained nor validated on; `all`: "
    "every image of a labelled benchmark set (a real/fake folder, a CSV, a `datasets` folder). pairs: an aigen "
    "dataset's pairs; seen: those left out because the model trained or validated on their photo (by content, "
    "whatever the path). perturbation: applied alike to both classes before the detector's preprocessing."
)


def small_sample_note(n: int) -> str:
    return f"only {n} images: loose numbers" if n < SMALL_SAMPLE else ""


def formatted(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4f}"
    return str(value)


def with_interval(row: dict, metric: str) -> str:
    low, high = row[f"{metric}_low"], row[f"{metric}_high"]
    if math.isnan(row[metric]) or math.isnan(low):
        return formatted(row[metric])
    return f"{row[metric]:.4f} [{low:.3f}, {high:.3f}]"


def markdown_cell(row: dict, key: str) -> str:
    if key == "n":
        return f"{row['n']} ({row['n_real']}/{row['n_ai']})"
    return with_interval(row, key) if key in WITH_INTERVAL else formatted(row[key])


def write_csv(rows: list[dict], columns: tuple[str, ...], path: Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows({key: formatted(row[key]) for key in columns} for row in rows)


def write_table(rows: list[dict], out_dir: Path) -> tuple[Path, Path]:
    """results.csv and results.md, one row per evaluated (set, perturbation)."""
    csv_path, markdown_path = out_dir / "results.csv", out_dir / "results.md"
    write_csv(rows, COLUMNS, csv_path)
    markdown_path.write_text(results_markdown(rows) + f"\n{SPLIT_NOTE}\n", encoding="utf-8")
    return csv_path, markdown_path


def results_markdown(rows: list[dict]) -> str:
    """The cross-dataset table, one row per evaluated (set, perturbation), after a warning when a row scored fewer
    than SMALL_SAMPLE images."""
    few = sorted({row["dataset"] for row in rows if row["n"] < SMALL_SAMPLE})
    warning = (
        f"**Warning:** fewer than {SMALL_SAMPLE} images scored in {', '.join(few)}: read the intervals, not the "
        "point values.\n\n"
        if few
        else ""
    )
    table = markdown_table(list(MARKDOWN), [[markdown_cell(row, key) for key in MARKDOWN.values()] for row in rows])
    return warning + table + "\n"
