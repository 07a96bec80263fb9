"""`task=matrix`: the cross-generator table of detection papers (GenImage: train on one generator, test on all).

One detector per training set (and, with `pooled=true`, one on all of them), each scored on the test pairs of
every eval set, and on every image of labelled benchmark sets (aigen.detector.benchmarks: a column per generator
of a GenImage-style folder). Training runs live in `output_dir/runs/<name>` and scored cells in
`output_dir/cells.json`, so a rerun (after a crash, or with one more eval set) trains and scores only what is not
finished; a rerun with other training settings (output_dir/settings.json) is refused.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from hydra.utils import to_absolute_path
from omegaconf import DictConfig, OmegaConf, open_dict

from aigen.dataset import MANIFEST, read_rows
from aigen.detector.benchmarks import DatasetImages
from aigen.detector.data import Augment, load_pairs, make_split
from aigen.detector.evaluate import EvalSet, eval_sets, score_sets, unique, unique_names
from aigen.detector.model import load_detector
from aigen.detector.perturb import CLEAN
from aigen.detector.plots import draw_heatmap, side_by_side
from aigen.detector.report import SMALL_SAMPLE, formatted, markdown_cell, with_interval, write_csv
from aigen.detector.runtime import resolve_precision
from aigen.detector.tracking import tracking
from aigen.detector.train import check_settings, new_model, train, training_dirs
from aigen.devices import resolve_device
from aigen.errors import UserError
from aigen.files import claim_output, write_atomic
from aigen.tables import markdown_table

METRICS = {"accuracy": "accuracy", "roc_auc": "ROC AUC", "average_precision": "average precision"}
COLUMNS = ("train", "eval", "accuracy", "accuracy_low", "accuracy_high", "roc_auc", "roc_auc_low", "roc_auc_high",
           "average_precision", "n", "n_real", "n_ai", "pairs", "seen")  # fmt: skip
POOLED = "pooled"
TRAINING_SETTINGS = ("seed", "val_fraction", "test_fraction", "image_size", "resize", "epochs", "batch_size", "lr",
                     "weight_decay", "monitor", "patience")  # fmt: skip
SETTINGS_FILE = "settings.json"  # training_settings of the runs and cells of a matrix's output_dir


def axis_names(dirs: list[Path]) -> dict[Path, str]:
    """Each dataset's generator (from its manifest) when that tells them all apart, else the dir names."""
    generators = {}
    for dataset_dir in dirs:
        found = {row.get("generator") for row in read_rows(dataset_dir, MANIFEST).values()}
        generators[dataset_dir] = found.pop() if len(found) == 1 else None
    if None not in generators.values() and len(set(generators.values())) == len(dirs):
        return generators
    return dict(zip(dirs, unique_names(dirs), strict=True))


def training_settings(cfg: DictConfig) -> dict:
    """What decides a detector's numbers besides its datasets, flat (`model.depths`, `augment.jpeg`); not where it
    runs (device, precision, workers, cache_dir), and not eval_split, which is part of each cell's key."""
    settings = {key: cfg[key] for key in TRAINING_SETTINGS}
    for group in ("model", "augment"):
        values = OmegaConf.to_container(cfg[group], resolve=True)
        settings |= {f"{group}.{key}": value for key, value in values.items() if key != "cache_dir"}
    return settings


def check_same_settings(out: Path, settings: dict) -> None:
    """A rerun reuses the training runs and cells of `out` only under the settings they were made with (saved in
    settings.json before the first training): with others it would report the old numbers as the new ones. Until a
    checkpoint or a cell exists (a first attempt that failed early), the settings are simply those of this run."""
    path = out / SETTINGS_FILE
    if not (out / "cells.json").is_file() and not any((out / "runs").glob("*/*.pt")):
        write_atomic(path, (json.dumps(settings, indent=2) + "\n").encode())
        return
    if not path.is_file():
        raise UserError(f"{out} holds a matrix of an older aigen (no {SETTINGS_FILE}): use another output_dir")
    saved = json.loads(path.read_text())
    changed = [
        f"{key} {saved.get(key)!r} -> {settings.get(key)!r}"
        for key in sorted(saved.keys() | settings.keys())
        if saved.get(key) != settings.get(key)
    ]
    if changed:
        raise UserError(f"{out} holds a matrix made with other settings ({', '.join(changed)}): use another output_dir")


def training_run(cfg: DictConfig, train_dirs: list[Path], run: Path) -> Path:
    """best.pt of a training run on `train_dirs`: a finished run is kept, an interrupted one resumed."""
    metrics = run / "metrics.json"
    if metrics.is_file() and json.loads(metrics.read_text())["stopped"] != "running":
        trained_on = sorted(json.loads((run / "split.json").read_text())["datasets"])
        if trained_on != sorted(map(str, train_dirs)):
            raise UserError(f"{run} holds a run on other datasets ({trained_on}): choose another output_dir")
        print(f"kept the finished training run {run}")
        return run / "best.pt"
    run_cfg = OmegaConf.merge(cfg, {"task": "train", "train_sets": [str(d) for d in train_dirs]})
    with open_dict(run_cfg):
        run_cfg.output_dir = str(run)
        run_cfg.resume = (run / "last.pt").is_file()
    train(run_cfg)
    return run / "best.pt"


def scored_images(eval_set: EvalSet, benchmark: DictConfig) -> str | None:
    """What a benchmark row scores: its images' ids and labels, and for a `datasets` folder the settings that read
    them, so that a corrected `benchmark.labels` (or a folder that gained images) is a new cell, never the old
    numbers. None for a dataset dir (its test pairs are fixed by its split)."""
    if isinstance(eval_set, Path):
        return None
    reading = OmegaConf.to_container(benchmark, resolve=True) if isinstance(eval_set.images, DatasetImages) else None
    return hashlib.sha256(json.dumps([eval_set.ids, eval_set.labels, reading]).encode()).hexdigest()[:16]


def cell_key(train_dirs: list[Path], eval_set: EvalSet, eval_split: str, scored: str | None) -> str:
    """A dataset dir's test pairs, or a benchmark set (its source, row name and `scored_images`: every image,
    whatever eval_split)."""
    target = [str(eval_set)] if isinstance(eval_set, Path) else [str(eval_set.source), eval_set.name, scored]
    return json.dumps([sorted(map(str, train_dirs)), *target, eval_split])


def cell_text(cell: dict, metric: str) -> str:
    """A metric with its 95% interval where it has one (accuracy: Wilson, ROC AUC: bootstrap)."""
    return with_interval(cell, metric) if f"{metric}_low" in cell else formatted(cell[metric])


def cell_note(cell: dict, metric: str) -> str:
    """What a heatmap cell shows under its value: the interval and the number of images scored."""
    interval = f"[{cell[f'{metric}_low']:.2f}, {cell[f'{metric}_high']:.2f}] " if f"{metric}_low" in cell else ""
    return f"{interval}n={cell['n']}"


def matrix_markdown(cells: list[dict], rows: list[str], columns: list[str]) -> str:
    """One grid per metric, rows = trained on, columns = evaluated on; then the images each cell scored, and a
    warning where a cell scored fewer than SMALL_SAMPLE."""
    value = {(cell["train"], cell["eval"]): cell for cell in cells}
    parts = []
    header = ["trained on \\ evaluated on", *columns]
    for metric, title in METRICS.items():
        grid = [[name, *(cell_text(value[name, column], metric) for column in columns)] for name in rows]
        parts.append(f"### {title}\n\n" + markdown_table(header, grid) + "\n")
    grid = [[name, *(markdown_cell(value[name, column], "n") for column in columns)] for name in rows]
    parts.append("### images scored, n (real/AI)\n\n" + markdown_table(header, grid) + "\n")
    few = sorted({cell["eval"] for cell in cells if cell["n"] < SMALL_SAMPLE})
    if few:
        parts.insert(0, f"**Warning:** fewer than {SMALL_SAMPLE} images scored in {', '.join(few)}: read the "
                     "intervals, not the point values.\n")  # fmt: skip
    return "\n".join(parts)


def matrix(cfg: DictConfig) -> list[dict]:
    # 1. Check the settings before any work.
    check_settings(cfg)
    if cfg.perturb:
        raise UserError("perturb applies to task=eval: run it on a checkpoint of the matrix (output_dir/runs/NAME)")
    train_dirs = training_dirs(cfg.train_sets)
    sets = eval_sets(cfg.eval_sets, cfg.benchmark)
    names = axis_names(list(dict.fromkeys(train_dirs + [entry for entry in sets if isinstance(entry, Path)])))
    columns = unique([names[entry] if isinstance(entry, Path) else entry.name for entry in sets])
    trainings = {names[d]: [d] for d in train_dirs}
    if cfg.pooled and len(train_dirs) > 1:
        trainings[POOLED] = train_dirs
    out = Path(to_absolute_path(cfg.output_dir))
    new = [name for name in trainings if not (out / "runs" / name / "last.pt").is_file()]
    for name in new:  # a split that leaves a side empty, or a model that cannot train, fails before any write
        try:
            make_split({d: load_pairs(d) for d in trainings[name]}, cfg.seed, cfg.val_fraction, cfg.test_fraction,
                       cfg.allow_no_test)  # fmt: skip
        except UserError as error:
            raise UserError(f"the detector trained on {name}: {error}") from None
    if new:
        new_model(cfg, Augment(**OmegaConf.to_container(cfg.augment, resolve=True)))
    claim_output(out, "python -m aigen.detect task=matrix")
    device = resolve_device(cfg.device)
    dtype = resolve_precision(cfg.precision, device)
    check_same_settings(out, training_settings(cfg))
    cells_path = out / "cells.json"
    done = json.loads(cells_path.read_text()) if cells_path.is_file() else {}

    # 2. Train (or keep) each detector, then score the cells not finished before; each cell is saved at once.
    cells = []
    scored = [scored_images(entry, cfg.benchmark) for entry in sets]
    for name, dirs in trainings.items():
        checkpoint = training_run(cfg, dirs, out / "runs" / name)
        keys = [cell_key(dirs, entry, cfg.eval_split, images) for entry, images in zip(sets, scored, strict=True)]
        missing = [(entry, key) for entry, key in zip(sets, keys, strict=True) if key not in done]
        if missing:
            rows = score_sets(load_detector(checkpoint), [entry for entry, _ in missing], cfg, [CLEAN], device, dtype)
            for (_, key), row in zip(missing, rows, strict=True):
                done[key] = {column: row[column] for column in COLUMNS[2:]}
                write_atomic(cells_path, (json.dumps(done, indent=2) + "\n").encode())
        cells += [{"train": name, "eval": column} | done[key] for key, column in zip(keys, columns, strict=True)]

    # 3. The matrix: CSV (one line per cell), Markdown grids, a heatmap per metric, W&B.
    rows = list(trainings)
    write_csv(cells, COLUMNS, out / "matrix.csv")
    markdown = matrix_markdown(cells, rows, columns)
    (out / "matrix.md").write_text(markdown, encoding="utf-8")
    value = {(cell["train"], cell["eval"]): cell for cell in cells}
    heatmaps = [
        draw_heatmap(
            [[value[r, c][metric] for c in columns] for r in rows],
            rows,
            columns,
            title,
            [[cell_note(value[r, c], metric) for c in columns] for r in rows],
        )
        for metric, title in METRICS.items()
    ]
    side_by_side(heatmaps).save(out / "matrix.png")
    with tracking(cfg, "matrix-detector", out.name, out) as tracker:
        if tracker:
            tracker.table("matrix", list(COLUMNS), [[cell[key] for key in COLUMNS] for cell in cells])
            tracker.images({"matrix": out / "matrix.png"})
    print(markdown, end="")
    print(f"done: {len(rows)}x{len(columns)} matrix -> {out / 'matrix.md'}, {out / 'matrix.csv'}, {out / 'matrix.png'}")
    return cells
