"""`python -m aigen.audit DATASET_DIR`: which global cues tell the halves of a dataset's pairs apart.

A detector should learn generation, not the factory's processing. For each cue a detector could learn instead
(high-frequency energy, 8x8 JPEG blockiness, file size, brightness, saturation) the report gives the share of
pairs where the AI half has more of it than its original, flagged outside FAIR_BAND, and the held-out accuracy of
a small classifier that sees only these cues, one image at a time, split by pair. It writes audit.md, audit.csv,
audit.json and audit.png into an output dir (never into the dataset dir, which must stay a clean imagefolder).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
from sklearn.model_selection import GroupKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from aigen.errors import UserError
from aigen.records import MANIFEST, read_rows
from aigen.tables import markdown_table

FAIR_BAND = (0.4, 0.6)  # a share (or classifier accuracy) outside this band is flagged
BLOCK = 8  # JPEG's DCT block side
FOLDS = 5
LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R BT.601, as JPEG's Y


@dataclass(frozen=True)
class Cue:
    """One global image statistic a detector could learn instead of generation."""

    name: str
    label: str
    more: str  # the AI half "is ..." when it has more of the cue
    less: str
    shortcut: str  # what a detector would learn from it
    log_ratio: bool  # per-pair difference as log(AI / original) (scale-free cues) instead of AI - original


CUES = (
    Cue("hf_energy", "high-frequency energy", "sharper", "blurrier", "resampling", True),
    Cue("blockiness", "8x8 blockiness", "blockier", "less blocky", "JPEG compression history", False),
    Cue("file_size", "file size", "larger as a file", "smaller as a file", "file size", True),
    Cue("brightness", "mean brightness", "brighter", "darker", "brightness", False),
    Cue("saturation", "mean saturation", "more saturated", "less saturated", "colour saturation", False),
)
CUE_NAMES = tuple(cue.name for cue in CUES)
CSV_COLUMNS = ["cue", "share_ai_greater", "direction", "direction_share", "median_difference", "flagged", "sentence"]


def luminance(image: Image.Image) -> np.ndarray:
    """Y in [0, 255] as floats (no rounding to 8 bits, which would hide small differences)."""
    return np.asarray(image.convert("RGB"), dtype=np.float64) @ LUMA


def high_frequency_energy(image: Image.Image) -> float:
    """Mean squared Laplacian of the luminance: falls with every low-pass resampling, rises with noise."""
    y = luminance(image)
    laplacian = 4 * y[1:-1, 1:-1] - y[:-2, 1:-1] - y[2:, 1:-1] - y[1:-1, :-2] - y[1:-1, 2:]
    return float(np.mean(laplacian**2))


def _boundary_ratio(steps: np.ndarray) -> float:
    """Mean step across block boundaries over the mean step inside blocks, along the last axis."""
    at_boundary = (np.arange(steps.shape[-1]) + 1) % BLOCK == 0
    inside = steps[..., ~at_boundary].mean()
    return float(steps[..., at_boundary].mean() / inside) if inside > 0 else 1.0


def blockiness(image: Image.Image) -> float:
    """How much larger luminance steps are across 8-pixel block boundaries than inside blocks (1 = no grid)."""
    y = luminance(image)
    return (_boundary_ratio(np.abs(np.diff(y, axis=1))) + _boundary_ratio(np.abs(np.diff(y, axis=0)).T)) / 2


def brightness(image: Image.Image) -> float:
    """Mean luminance in [0, 1]."""
    return float(luminance(image).mean() / 255)


def saturation(image: Image.Image) -> float:
    """Mean HSV saturation in [0, 1]."""
    return float(np.asarray(image.convert("HSV"))[..., 1].mean() / 255)


def image_cues(image: Image.Image, file_size: int) -> dict[str, float]:
    """Every cue of one image; `file_size` in bytes (the encoded file's, which the image cannot tell)."""
    return {
        "hf_energy": high_frequency_energy(image),
        "blockiness": blockiness(image),
        "file_size": float(file_size),
        "brightness": brightness(image),
        "saturation": saturation(image),
    }


def file_cues(path: Path) -> dict[str, float]:
    with Image.open(path) as image:
        return image_cues(image, path.stat().st_size)


def cue_matrix(rows: list[dict[str, float]]) -> np.ndarray:
    """Cue dicts as an (images, cues) array in CUES order."""
    return np.array([[row[name] for name in CUE_NAMES] for row in rows], dtype=np.float64).reshape(-1, len(CUES))


def share_ai_greater(original: np.ndarray, ai: np.ndarray) -> float:
    """Share of pairs where the AI half's value is larger; a tie counts half, so identical halves give 0.5."""
    return float(np.mean((ai > original) + 0.5 * (ai == original)))


def pair_differences(cue: Cue, original: np.ndarray, ai: np.ndarray) -> np.ndarray:
    """Per-pair AI-minus-original, as a log ratio for scale-free cues (0 = no difference either way)."""
    if cue.log_ratio:
        tiny = np.finfo(np.float64).tiny
        return np.log((ai + tiny) / (original + tiny))
    return ai - original


def flagged(share: float) -> bool:
    return not FAIR_BAND[0] <= share <= FAIR_BAND[1]


def classifier_features(values: np.ndarray) -> np.ndarray:
    """Per-image cue features: logs of the scale-free cues (file size, energy span orders of magnitude)."""
    features = values.copy()
    for column, cue in enumerate(CUES):
        if cue.log_ratio:
            features[:, column] = np.log(features[:, column] + 1e-9)
    return features


def classifier_accuracy(ids: list[str], original: np.ndarray, ai: np.ndarray, folds: int = FOLDS) -> float | None:
    """Held-out accuracy of a logistic regression telling AI from original by the cues of ONE image, with both
    halves of a pair always in the same fold (GroupKFold by pair), so no pair's content leaks across folds."""
    if len(ids) < 2:
        return None
    x = classifier_features(np.vstack([original, ai]))
    y = np.concatenate([np.zeros(len(ids)), np.ones(len(ids))])
    pairs = np.concatenate([np.arange(len(ids)), np.arange(len(ids))])
    model = make_pipeline(StandardScaler(), LogisticRegression())
    predicted = cross_val_predict(model, x, y, groups=pairs, cv=GroupKFold(n_splits=min(folds, len(ids))))
    return float(accuracy_score(y, predicted))


@dataclass(frozen=True)
class CueResult:
    cue: Cue
    share: float  # of pairs where the AI half has more of the cue (ties count half)
    median_difference: float
    differences: np.ndarray

    @property
    def flagged(self) -> bool:
        return flagged(self.share)

    @property
    def direction(self) -> str:
        return self.cue.more if self.share >= 0.5 else self.cue.less

    @property
    def direction_share(self) -> float:
        return max(self.share, 1 - self.share)

    def sentence(self) -> str:
        text = f"the AI half is {self.direction} in {self.direction_share:.0%} of pairs"
        return f"{text}: a detector can learn {self.cue.shortcut} instead of generation" if self.flagged else text


@dataclass(frozen=True)
class AuditResult:
    dataset: str
    pairs: int
    cues: list[CueResult]
    accuracy: float | None

    @property
    def accuracy_flagged(self) -> bool:
        return self.accuracy is not None and self.accuracy > FAIR_BAND[1]

    def accuracy_sentence(self) -> str:
        if self.accuracy is None:
            return "too few pairs for the cue classifier"
        text = f"a classifier on these cues alone tells the halves apart in {self.accuracy:.0%} of held-out images"
        return f"{text}: the cues above are learnable" if self.accuracy_flagged else text

    def flags(self) -> list[str]:
        found = [result.sentence() for result in self.cues if result.flagged]
        return found + ([self.accuracy_sentence()] if self.accuracy_flagged else [])

    def rows(self) -> list[list[object]]:
        """One row per cue, then the classifier, in CSV_COLUMNS order."""
        rows: list[list[object]] = [
            [
                r.cue.name,
                round(r.share, 4),
                r.direction,
                round(r.direction_share, 4),
                float(f"{r.median_difference:.4g}"),
                r.flagged,
                r.sentence(),
            ]
            for r in self.cues
        ]
        accuracy = None if self.accuracy is None else round(self.accuracy, 4)
        rows.append(
            ["classifier", "", "held-out accuracy", accuracy, "", self.accuracy_flagged, self.accuracy_sentence()]
        )
        return rows


def audit_values(dataset: str, ids: list[str], original: np.ndarray, ai: np.ndarray) -> AuditResult:
    """The audit of pairs given their cue matrices (rows: pairs in `ids` order; columns: CUES)."""
    results = []
    for column, cue in enumerate(CUES):
        differences = pair_differences(cue, original[:, column], ai[:, column])
        share = share_ai_greater(original[:, column], ai[:, column])
        results.append(CueResult(cue, share, float(np.median(differences)), differences))
    return AuditResult(dataset, len(ids), results, classifier_accuracy(ids, original, ai))


def audit_dataset(dataset_dir: Path) -> AuditResult:
    """Read every pair of the manifest and audit it; UserError when the dir is not a dataset or has no pairs."""
    if not dataset_dir.is_dir():
        raise UserError(f"{dataset_dir} is not a directory")
    if not (dataset_dir / "dataset.json").is_file():
        raise UserError(f"{dataset_dir} is not an aigen dataset dir (no dataset.json)")
    rows = read_rows(dataset_dir, MANIFEST)
    if not rows:
        raise UserError(f"{dataset_dir} has no pairs in its manifest yet")
    ids = sorted(rows)
    halves: dict[str, list[dict[str, float]]] = {"original": [], "ai": []}
    for image_id in ids:
        for half, values in halves.items():
            path = dataset_dir / rows[image_id][half]
            try:
                values.append(file_cues(path))
            except OSError as error:
                raise UserError(f"{path} cannot be read ({error}); check it with python -m aigen.verify") from None
    return audit_values(str(dataset_dir), ids, cue_matrix(halves["original"]), cue_matrix(halves["ai"]))


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
        f"{result.pairs} pairs. A share outside {FAIR_BAND[0]:.0%}-{FAIR_BAND[1]:.0%} is flagged: a detector can "
        "tell the halves apart by it without learning anything about generation.",
        "",
        markdown_table(header, table),
        "",
        f"Cue classifier (logistic regression on one image's cues, {FOLDS} folds split by pair): "
        + result.accuracy_sentence()
        + ".",
        "",
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
        "band": list(FAIR_BAND),
        "cues": {
            r.cue.name: {
                "share_ai_greater": r.share,
                "direction": r.direction,
                "direction_share": r.direction_share,
                "median_difference": r.median_difference,
                "flagged": r.flagged,
                "sentence": r.sentence(),
            }
            for r in result.cues
        },
        "classifier": {"accuracy": result.accuracy, "flagged": result.accuracy_flagged, "folds": FOLDS},
        "flags": result.flags(),
    }


def write_report(result: AuditResult, out_dir: Path) -> dict[str, Path]:
    """audit.md, audit.csv, audit.json and audit.png in `out_dir`, by kind."""
    out_dir.mkdir(parents=True, exist_ok=True)
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

    from aigen.tracking import resolve_mode

    mode, notice = resolve_mode(None)
    if notice:
        print(notice)
    run = wandb.init(
        project=project,
        name=f"audit-{Path(result.dataset).name}",
        job_type="audit",
        mode=mode,
        dir=str(paths["png"].parent),
        config={"dataset": result.dataset, "pairs": result.pairs, "band": list(FAIR_BAND)},
        settings=wandb.Settings(console="off", save_code=False),
    )
    table = wandb.Table(columns=CSV_COLUMNS, data=[[str(cell) for cell in row] for row in result.rows()])
    run.log({"audit": table, "audit_distributions": wandb.Image(str(paths["png"]))})
    run.summary.update({f"share_ai_greater/{r.cue.name}": r.share for r in result.cues})
    run.summary.update({"classifier_accuracy": result.accuracy, "flags": len(result.flags())})
    run.finish()


def default_out_dir(dataset_dir: Path) -> Path:
    return Path.cwd() / f"audit-{dataset_dir.resolve().name}"


def check_out_dir(out_dir: Path, dataset_dir: Path) -> None:
    """Refuse an output dir inside the dataset dir: it must stay a clean imagefolder."""
    if out_dir.resolve().is_relative_to(dataset_dir.resolve()):
        raise UserError(f"--out {out_dir} is inside the dataset dir; write the audit elsewhere")


def run(dataset_dir: Path, out_dir: Path | None, logger: str, project: str) -> tuple[AuditResult, dict[str, Path]]:
    """Audit one dataset dir and write (and maybe log) the report."""
    out_dir = out_dir or default_out_dir(dataset_dir)
    check_out_dir(out_dir, dataset_dir)
    result = audit_dataset(dataset_dir)
    paths = write_report(result, out_dir)
    if logger == "wandb":
        log_to_wandb(result, paths, project)
    return result, paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aigen.audit", description=__doc__.splitlines()[0])
    parser.add_argument("dataset_dir", type=Path)
    parser.add_argument("--out", type=Path, default=None, help="output dir (default: ./audit-<dataset dir name>)")
    parser.add_argument("--logger", choices=("none", "wandb"), default="none", help="also log to W&B")
    parser.add_argument("--project", default="aigen", help="W&B project (with --logger wandb)")
    args = parser.parse_args(argv)
    try:
        result, paths = run(args.dataset_dir, args.out, args.logger, args.project)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for r in result.cues:
        print(
            f"{r.cue.name:>11}: AI > original in {r.share:.0%} of {result.pairs} pairs{' FLAGGED' if r.flagged else ''}"
        )
    print(f"{'classifier':>11}: {result.accuracy_sentence()}")
    for flag in result.flags():
        print(f"FLAG {flag}")
    print(f"wrote {paths['md']}, {paths['csv'].name}, {paths['json'].name}, {paths['png'].name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
