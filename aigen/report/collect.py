"""What a report shows, read from what exists: dataset dirs through the export's reader, the current counts and
skips through aigen.dataset.record, each dir's audit folder as the export finds it, and detector output folders."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from aigen.dataset import DatasetDir
from aigen.dataset.record import count_records
from aigen.errors import UserError
from aigen.export.cli import FoundAudits, find_audit_dirs
from aigen.export.collect import open_dataset_dirs
from aigen.export.licenses import Terms, dataset_model_terms, source_terms

MATRIX_CSV = "matrix.csv"  # python -m aigen.detect task=matrix
RESULTS_CSV = "results.csv"  # python -m aigen.detect task=eval
DETECTOR_PLOTS = ("matrix.png", "robustness.png", "confusion_*.png")


@dataclass(frozen=True)
class DatasetFacts:
    """One dataset dir with what its card says: current counts and skips, terms, and its audit when there is one."""

    dataset: DatasetDir
    counts: dict  # pairs, failed, failure_reasons (aigen.dataset.record.count_records)
    photos: Terms
    model: Terms
    audit_dir: Path | None

    @property
    def content(self) -> dict:
        """The fingerprinted settings that decide the pixels (empty for a dir made by hand)."""
        return self.dataset.record.get("content", {})

    @property
    def audit(self) -> dict | None:
        return json.loads((self.audit_dir / "audit.json").read_text(encoding="utf-8")) if self.audit_dir else None

    @property
    def random_weights(self) -> bool:
        return any(row.get("weights") == "random" for row in self.dataset.rows.values())


@dataclass(frozen=True)
class DetectorOutput:
    """One output folder of python -m aigen.detect: a matrix (task=matrix) and/or a results table (task=eval)."""

    path: Path
    matrix: list[dict]
    results: list[dict]
    plots: list[Path]


def read_csv(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def read_detector_output(path: Path) -> DetectorOutput:
    """The tables and plots of one detector output folder, or one line saying why it is not one."""
    if not path.is_dir():
        raise UserError(f"--detector {path} is not a directory")
    output = DetectorOutput(
        path=path,
        matrix=read_csv(path / MATRIX_CSV),
        results=read_csv(path / RESULTS_CSV),
        plots=[plot for pattern in DETECTOR_PLOTS for plot in sorted(path.glob(pattern))],
    )
    if not output.matrix and not output.results:
        raise UserError(
            f"--detector {path} has neither {MATRIX_CSV} (python -m aigen.detect task=matrix) nor {RESULTS_CSV} "
            "(task=eval)"
        )
    return output


def collect_datasets(paths: list[Path], audit_dirs: list[Path]) -> tuple[list[DatasetFacts], FoundAudits]:
    """Every dataset dir with its facts, and the audits found for them; one line for a dir that is not one, or an
    --audit folder that measured none of them."""
    dirs = open_dataset_dirs(paths)
    found = find_audit_dirs(dirs, audit_dirs)
    facts = [
        DatasetFacts(
            dataset=dataset,
            counts=count_records(dataset.path, dataset.rows),
            photos=source_terms(dataset.record.get("content", {}).get("source", {})),
            model=dataset_model_terms(dataset.record),
            audit_dir=found.folders.get(dataset.name),
        )
        for dataset in dirs
    ]
    return facts, found
