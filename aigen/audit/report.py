"""The audit's report: audit.md, audit.csv, audit.json, audit.png, and W&B."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from aigen.audit.cues import ALPHA, CSV_COLUMNS, FAIR_BAND, AuditResult, CueResult
from aigen.files import OUTPUT_MARK, mark_as_output
from aigen.tables import markdown_table

FLAG_RULE = (
    f"A cue is flagged when its share lies outside {FAIR_BAND[0]:.0%}-{FAIR_BAND[1]:.0%} and a sign test puts it "
    f"beyond chance (p < {ALPHA})."
)
CONTROL_NOTE = (
    "These pairs come from a control generator: a flagged cue is the factory's processing, learnable by a detector."
)
GENERATOR_NOTE = (
    "These pairs come from a generator: a flagged cue says the halves differ, which may be generation itself; "
    "audit the matching control (generator=identity, native_twin or lossless_twin, same settings) to see what "
    "processing adds."
)

PANEL = (360, 220)
MARGIN = 28
BINS = 31


def histogram_panel(result: CueResult) -> Image.Image:
    """One cue's per-pair differences as a histogram centred on 0 (no difference), 0 marked in red."""
    panel = Image.new("RGB", PANEL, "white")
    draw = ImageDraw.Draw(panel)
    what = "log(AI/original)" if result.cue.log_ratio else "AI - original"
    draw.text((6, 4), f"{result.cue.label}: {what}", fill="black")
    draw.text((6, 16), result.sentence().split(":")[0], fill="firebrick" if result.flagged else "black")
    finite = result.differences[np.isfinite(result.differences)]
    limit = float(np.max(np.abs(finite))) if finite.size and np.any(finite) else 1.0
    counts, _ = np.histogram(finite, bins=BINS, range=(-limit, limit))
    left, top, right, bottom = 8, 34, PANEL[0] - 8, PANEL[1] - MARGIN
    width = (right - left) / BINS
    tallest = max(int(counts.max()), 1)
    for index, count in enumerate(counts):
        height = (bottom - top) * count / tallest
        x0 = left + index * width
        draw.rectangle((x0, bottom - height, x0 + width - 1, bottom), fill="steelblue")
    middle = (left + right) / 2
    draw.line((middle, top, middle, bottom), fill="red", width=1)
    draw.line((left, bottom, right, bottom), fill="black")
    draw.text((left, bottom + 4), f"{-limit:.3g}", fill="black")
    draw.text((middle - 3, bottom + 4), "0", fill="red")
    draw.text((right - 40, bottom + 4), f"{limit:.3g}", fill="black")
    return panel


def audit_image(result: AuditResult) -> Image.Image:
    """The per-pair difference distributions, one histogram per cue, and the classifier's accuracy."""
    columns = 3
    lines = math.ceil((len(result.cues) + 1) / columns)
    sheet = Image.new("RGB", (columns * PANEL[0], lines * PANEL[1]), "white")
    for index, cue_result in enumerate(result.cues):
        sheet.paste(histogram_panel(cue_result), ((index % columns) * PANEL[0], (index // columns) * PANEL[1]))
    index = len(result.cues)
    draw = ImageDraw.Draw(sheet)
    x, y = (index % columns) * PANEL[0] + 8, (index // columns) * PANEL[1] + 8
    draw.text((x, y), f"{Path(result.dataset).name}: {result.pairs} pairs", fill="black")
    accuracy = "n/a" if result.accuracy is None else f"{result.accuracy:.0%}"
    draw.text((x, y + 16), f"cue classifier, held-out accuracy: {accuracy}", fill="black")
    draw.text(
        (x, y + 32), f"flagged outside {FAIR_BAND[0]:.0%}-{FAIR_BAND[1]:.0%}: {len(result.flags())}", fill="black"
    )
    if result.probe:
        probe = result.probe
        draw.text(
            (x, y + 48),
            f"CNN probe, held-out accuracy: {probe.accuracy:.0%} ({probe.interval[0]:.0%}-{probe.interval[1]:.0%})",
            fill="firebrick" if probe.flagged else "black",
        )
    return sheet


def markdown_report(result: AuditResult) -> str:
    header = ["cue", "AI > original", "AI half is", "in pairs", "median difference", "flag"]
    table = [
        [r.cue.label, f"{r.share:.0%}", r.direction, f"{r.direction_share:.0%}", f"{r.median_difference:.3g}"]
        + ["**flagged**" if r.flagged else ""]
        for r in result.cues
    ]
    flags = result.flags()
    lines = [
        f"# Bias audit of `{result.dataset}`",
        "",
        f"{result.pairs} pairs. {FLAG_RULE} " + (CONTROL_NOTE if result.control else GENERATOR_NOTE),
        "",
        markdown_table(header, table),
        "",
        f"Cue classifier (logistic regression on one image's cues, {result.folds} folds split by pair): "
        + result.accuracy_sentence()
        + ".",
        "",
        *([f"CNN probe: {result.probe.sentence(result.control)}. {result.probe.rule}", ""] if result.probe else []),
        "## Flags",
        "",
        *([f"- {flag}" for flag in flags] or ["- none"]),
        "",
    ]
    return "\n".join(lines)


def summary_json(result: AuditResult) -> dict:
    return {
        "dataset": result.dataset,
        "pairs": result.pairs,
        **(result.state or {}),
        "band": list(FAIR_BAND),
        "alpha": ALPHA,
        "control": result.control,
        "cues": {
            r.cue.name: {
                "share_ai_greater": r.share,
                "direction": r.direction,
                "direction_share": r.direction_share,
                "median_difference": r.median_difference,
                "flagged": r.flagged,
                "p_value": r.p_value,
                "sentence": r.sentence(result.control),
            }
            for r in result.cues
        },
        "classifier": {"accuracy": result.accuracy, "flagged": result.accuracy_flagged, "folds": result.folds},
        "upscaled": {"pairs": result.upscaled, "share": result.upscaled / result.pairs if result.pairs else 0.0},
        "probe": result.probe.summary(result.control) if result.probe else None,
        "flags": result.flags(),
    }


AUDIT_FILES = frozenset({OUTPUT_MARK, *(f"audit.{kind}" for kind in ("md", "csv", "json", "png"))})


def write_report(result: AuditResult, out_dir: Path) -> dict[str, Path]:
    """audit.md, audit.csv, audit.json and audit.png in `out_dir`, by kind."""
    out_dir.mkdir(parents=True, exist_ok=True)
    mark_as_output(out_dir, "python -m aigen.audit")
    paths = {kind: out_dir / f"audit.{kind}" for kind in ("md", "csv", "json", "png")}
    paths["md"].write_text(markdown_report(result), encoding="utf-8")
    with open(paths["csv"], "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        writer.writerows(result.rows())
    paths["json"].write_text(json.dumps(summary_json(result), indent=2) + "\n", encoding="utf-8")
    audit_image(result).save(paths["png"])
    return paths


def log_to_wandb(result: AuditResult, paths: dict[str, Path], project: str) -> None:
    """The table and the PNG as one W&B run (offline without credentials, as the factory decides)."""
    import wandb

    from aigen.tracking import start_wandb

    config = {"dataset": result.dataset, "pairs": result.pairs, "band": list(FAIR_BAND)}
    run = start_wandb(project, "audit", f"audit-{Path(result.dataset).name}", paths["png"].parent, config)
    table = wandb.Table(columns=CSV_COLUMNS, data=[[str(cell) for cell in row] for row in result.rows()])
    run.log({"audit": table, "audit_distributions": wandb.Image(str(paths["png"]))})
    run.summary.update({f"share_ai_greater/{r.cue.name}": r.share for r in result.cues})
    run.summary.update({"classifier_accuracy": result.accuracy, "flags": len(result.flags())})
    if result.probe:
        probe = result.probe
        run.summary.update({"probe_accuracy": probe.accuracy, "probe_train_accuracy": probe.train_accuracy})
    run.finish()
