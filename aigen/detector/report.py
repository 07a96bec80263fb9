"""What a person reads after an evaluation: the cross-dataset table as CSV and Markdown."""

from __future__ import annotations

import csv
import math
from pathlib import Path

from aigen.tables import markdown_table

COLUMNS = (
    "dataset",
    "perturbation",
    "split",
    "accuracy",
    "precision",
    "recall",
    "f1",
    "roc_auc",
    "average_precision",
    "n",
    "pairs",
    "seen",
)
SPLIT_NOTE = (
    "AI is the positive class; n counts images (both halves of each scored pair). split `test`: the pairs whose "
    "source photo falls in the test split (by content: seed and fractions of the checkpoint's split.json); "
    "`unseen`: every pair whose photo the model neither trained nor validated on. pairs: the dataset's pairs; seen: "
    "those left out because the model trained or validated on their photo (by content, whatever the path). "
    "perturbation: applied alike to both classes before the detector's preprocessing."
)


def formatted(value: object) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4f}"
    return str(value)


def write_csv(rows: list[dict], columns: tuple[str, ...], path: Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows({key: formatted(row[key]) for key in columns} for row in rows)


def write_table(rows: list[dict], out_dir: Path) -> tuple[Path, Path]:
    """results.csv and results.md, one row per evaluated (dataset, perturbation), in COLUMNS order."""
    csv_path, markdown_path = out_dir / "results.csv", out_dir / "results.md"
    write_csv(rows, COLUMNS, csv_path)
    markdown_path.write_text(results_markdown(rows) + f"\n{SPLIT_NOTE}\n", encoding="utf-8")
    return csv_path, markdown_path


def results_markdown(rows: list[dict]) -> str:
    """The cross-dataset table, one row per evaluated (dataset, perturbation), in COLUMNS order."""
    return markdown_table(list(COLUMNS), [[formatted(row[key]) for key in COLUMNS] for row in rows]) + "\n"
