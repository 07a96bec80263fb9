"""What a person reads after an evaluation: the cross-dataset table (CSV, Markdown) and confusion matrix PNGs."""

from __future__ import annotations

import csv
import math
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from aigen.detector.data import LABELS
from aigen.detector.metrics import Confusion
from aigen.report import markdown_table

COLUMNS = ("dataset", "split", "accuracy", "precision", "recall", "f1", "roc_auc", "n")
SPLIT_NOTE = (
    "AI is the positive class; n counts images. split `held-out`: only the pairs whose photo was not in the "
    "checkpoint's training split (split.json), e.g. the validation pairs of a training dataset; `all`: every pair."
)
CELL = 130
MARGIN = (150, 90)  # room for the row labels on the left and the title and column labels on top


def formatted(value: object) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4f}"
    return str(value)


def write_table(rows: list[dict], out_dir: Path) -> tuple[Path, Path]:
    """results.csv and results.md, one row per evaluated dataset, in COLUMNS order."""
    csv_path, markdown_path = out_dir / "results.csv", out_dir / "results.md"
    with open(csv_path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows({key: formatted(row[key]) for key in COLUMNS} for row in rows)
    markdown_path.write_text(results_markdown(rows) + f"\n{SPLIT_NOTE}\n", encoding="utf-8")
    return csv_path, markdown_path


def results_markdown(rows: list[dict]) -> str:
    """The cross-dataset table, one row per evaluated dataset, in COLUMNS order."""
    return markdown_table(COLUMNS, [[formatted(row[key]) for key in COLUMNS] for row in rows]) + "\n"


def centered_text(draw: ImageDraw.ImageDraw, center: tuple[float, float], text: str, font, fill: str) -> None:
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    draw.text((center[0] - (left + right) / 2, center[1] - (top + bottom) / 2), text, font=font, fill=fill)


def draw_confusion(counts: Confusion, title: str) -> Image.Image:
    """A 2x2 matrix, rows = truth, columns = prediction; each cell shows its count and its share of the row."""
    names = sorted(LABELS, key=LABELS.get)
    left, top = MARGIN
    image = Image.new("RGB", (left + 2 * CELL + 20, top + 2 * CELL + 20), "white")
    draw = ImageDraw.Draw(image)
    font, small = ImageFont.load_default(size=18), ImageFont.load_default(size=14)
    centered_text(draw, (image.width / 2, 18), title[:48], small, "black")
    centered_text(draw, (left + CELL, 46), "predicted", small, "gray")
    centered_text(draw, (left / 2, top - 20), "true", small, "gray")
    for index, name in enumerate(names):
        centered_text(draw, (left + (index + 0.5) * CELL, 72), name, font, "black")
        centered_text(draw, (left / 2, top + (index + 0.5) * CELL), name, font, "black")
    for row, values in enumerate(counts.matrix()):
        total = sum(values)
        for column, value in enumerate(values):
            share = value / total if total else 0.0
            box = (left + column * CELL, top + row * CELL, left + (column + 1) * CELL, top + (row + 1) * CELL)
            draw.rectangle(box, fill=(int(255 - 200 * share), int(255 - 140 * share), 255), outline="gray")
            ink = "white" if share > 0.5 else "black"
            centered_text(draw, (box[0] + CELL / 2, box[1] + CELL / 2 - 12), str(value), font, ink)
            centered_text(draw, (box[0] + CELL / 2, box[1] + CELL / 2 + 14), f"{share:.1%}", small, ink)
    return image
