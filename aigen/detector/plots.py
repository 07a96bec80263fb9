"""The PNGs a person looks at: a confusion matrix, the cross-generator heatmap and accuracy against perturbation
strength. Drawn with Pillow (no plotting dependency)."""

from __future__ import annotations

import math
import re

from PIL import Image, ImageDraw, ImageFont

from aigen.detector.data import LABELS
from aigen.detector.metrics import Confusion
from aigen.detector.perturb import SEVERITY, STRENGTH_LABELS, parse_perturbation

CELL = 130
MARGIN = (150, 90)  # room for the row labels on the left and the title and column labels on top
LINE_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")


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


def shade(value: float) -> tuple[int, int, int]:
    """White (0) to dark blue (1); grey for NaN."""
    if math.isnan(value):
        return (220, 220, 220)
    share = min(max(value, 0.0), 1.0)
    return (int(255 - 200 * share), int(255 - 140 * share), 255)


def label_lines(draw: ImageDraw.ImageDraw, name: str, font, width: float) -> list[str]:
    """`name` in lines no wider than `width`, broken after a `-`, `_` or `/` where one fits: dataset dir names share
    their first words (`<source>-<generator>-...`) and differ at the end, so a cut name would read the same."""
    lines, line = [], ""
    for part in re.split(r"(?<=[-_/])", name):
        while draw.textlength(line + part, font=font) > width:
            if line:
                lines.append(line)
                line = ""
                continue
            fits = max((k for k in range(2, len(part) + 1) if draw.textlength(part[:k], font=font) <= width), default=1)
            lines.append(part[:fits])
            part = part[fits:]
        line += part
    return [*lines, line] if line else lines


def draw_heatmap(
    values: list[list[float]], rows: list[str], columns: list[str], title: str, notes: list[list[str]] | None = None
) -> Image.Image:
    """Rows = trained on, columns = evaluated on; each cell shows its value (0..1 shading) and, under it, its note
    (the interval and how many images it scored)."""
    cell, font, small = 110, ImageFont.load_default(size=18), ImageFont.load_default(size=14)
    tiny = ImageFont.load_default(size=11)
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    left = 30 + max(int(measure.textlength(name, font=small)) for name in rows)
    labels = [label_lines(measure, name, small, cell - 8) for name in columns]
    top = 84 + 16 * max(len(lines) for lines in labels)
    image = Image.new("RGB", (left + cell * len(columns) + 20, top + cell * len(rows) + 20), "white")
    draw = ImageDraw.Draw(image)
    centered_text(draw, (image.width / 2, 16), title, font, "black")
    centered_text(draw, (left + cell * len(columns) / 2, 44), "evaluated on (test pairs)", small, "gray")
    draw.text((6, top - 24), "trained on", font=small, fill="gray")
    for index, lines in enumerate(labels):
        for number, line in enumerate(lines):
            centered_text(draw, (left + (index + 0.5) * cell, 68 + 16 * number), line, small, "black")
    for row, (name, line) in enumerate(zip(rows, values, strict=True)):
        draw.text((6, top + (row + 0.5) * cell - 8), name, font=small, fill="black")
        for column, value in enumerate(line):
            box = (left + column * cell, top + row * cell, left + (column + 1) * cell, top + (row + 1) * cell)
            draw.rectangle(box, fill=shade(value), outline="gray")
            ink = "white" if not math.isnan(value) and value > 0.5 else "black"
            text = "nan" if math.isnan(value) else f"{value:.3f}"
            centered_text(draw, (box[0] + cell / 2, box[1] + cell / 2 - (10 if notes else 0)), text, font, ink)
            if notes:
                centered_text(draw, (box[0] + cell / 2, box[1] + cell / 2 + 14), notes[row][column], tiny, ink)
    return image


def side_by_side(images: list[Image.Image]) -> Image.Image:
    joined = Image.new("RGB", (sum(image.width for image in images), max(image.height for image in images)), "white")
    left = 0
    for image in images:
        joined.paste(image, (left, 0))
        left += image.width
    return joined


def draw_robustness(rows: list[dict]) -> Image.Image:
    """Accuracy against perturbation strength: a panel per kind (JPEG, downscale, blur), a line per dataset, the
    clean images as the first point of every line."""
    kinds = sorted({parse_perturbation(row["perturbation"]).kind for row in rows} - {"none"})
    datasets = list(dict.fromkeys(row["dataset"] for row in rows))
    accuracy = {(row["dataset"], row["perturbation"]): row["accuracy"] for row in rows}
    return side_by_side([robustness_panel(kind, rows, datasets, accuracy) for kind in kinds])


def robustness_panel(kind: str, rows: list[dict], datasets: list[str], accuracy: dict) -> Image.Image:
    width, left, top, bottom = 440, 60, 40, 44 + 14 * len(datasets)
    height = top + 250 + bottom
    perturbations = sorted(
        {parse_perturbation(row["perturbation"]) for row in rows if row["perturbation"].startswith(kind)},
        key=lambda perturbation: SEVERITY[kind](perturbation.strength),
    )
    names = ["none"] + [perturbation.name for perturbation in perturbations]
    labels = ["clean"] + [f"{perturbation.strength:g}" for perturbation in perturbations]
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    font, small = ImageFont.load_default(size=16), ImageFont.load_default(size=12)
    plot_width, plot_height = width - left - 20, height - top - bottom
    centered_text(draw, (width / 2, 16), f"accuracy vs {STRENGTH_LABELS[kind]}", font, "black")
    draw.rectangle((left, top, left + plot_width, top + plot_height), outline="black")
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        y = top + plot_height * (1 - tick)
        draw.line((left - 4, y, left, y), fill="black")
        draw.text((8, y - 7), f"{tick:.2f}", font=small, fill="black")

    def x_of(index: int) -> float:
        return left + plot_width * (index + 0.5) / len(names)

    for index, label in enumerate(labels):
        centered_text(draw, (x_of(index), top + plot_height + 14), label, small, "black")
    for number, dataset in enumerate(datasets):
        colour = LINE_COLOURS[number % len(LINE_COLOURS)]
        points = [(x_of(i), top + plot_height * (1 - accuracy[dataset, name])) for i, name in enumerate(names)]
        draw.line(points, fill=colour, width=2)
        for x, y in points:
            draw.ellipse((x - 3, y - 3, x + 3, y + 3), fill=colour)
        draw.text((left, top + plot_height + 30 + 14 * number), f"- {dataset}", font=small, fill=colour)
    return image
