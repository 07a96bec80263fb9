"""`python -m aigen.bias_check`: the measurement behind the default pair processing, reproducible on any machine.

It builds the crop corpus (`aigen.corpus`: real photos saved as web JPEGs, with lossless twins), runs the real
factory with each control generator (`identity`, `lossless_twin`) and each pairing choice, audits every dataset
(`aigen.audit`) and prints one Markdown row per run: the share of pairs where the AI half is greater by each cue,
and the cue classifier's accuracy. The controls generate nothing, so every number away from 50% is the factory's
own processing.
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import dataclass
from pathlib import Path

from hydra import compose, initialize_config_dir

from aigen.audit import AuditResult, audit_dataset
from aigen.corpus import build_corpus
from aigen.factory import make_dataset
from aigen.tables import markdown_table

CONF = Path(__file__).resolve().parents[1] / "conf"


@dataclass(frozen=True)
class ControlRun:
    generator: str  # identity | lossless_twin
    geometry: str = "symmetric"
    jpeg_history: str = "none"
    gen_size: int = 512
    size: int = 256

    def overrides(self, corpus: Path, out: Path) -> list[str]:
        twins = [f"generator.twins={corpus / 'lossless'}"] if self.generator == "lossless_twin" else []
        return [
            "source=folder",
            f"source.root={corpus / 'jpeg'}",
            f"generator={self.generator}",
            *twins,
            f"generator.gen_size={self.gen_size}",
            f"size={self.size}",
            f"pairing.geometry={self.geometry}",
            f"pairing.jpeg_history={self.jpeg_history}",
            "logger=none",
            f"dataset_dir={out}",
        ]


def control_audit(run: ControlRun, corpus: Path, out: Path) -> AuditResult:
    """The factory's dataset of one control run, audited."""
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF)):
        cfg = compose("config", overrides=run.overrides(corpus, out))
    summary = make_dataset(cfg)
    assert summary.failed == 0, f"{summary.failed} corpus photos failed"
    return audit_dataset(out)


def table(results: list[tuple[ControlRun, AuditResult]]) -> str:
    header = ["control", "geometry", "jpeg_history", "gen_size -> size"]
    header += [cue.cue.more for cue in results[0][1].cues] + ["cue classifier"]
    rows = [
        [run.generator, run.geometry, run.jpeg_history, f"{run.gen_size} -> {run.size}"]
        + [f"{cue.share:.0%}" for cue in result.cues]
        + [f"{result.accuracy:.0%}"]
        for run, result in results
    ]
    return markdown_table(header, rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m aigen.bias_check", description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=320, help="corpus crops (default 320)")
    args = parser.parse_args(argv)
    runs = [
        ControlRun(generator, geometry, history, gen_size)
        for gen_size in (512, 256)
        for generator in ("identity", "lossless_twin")
        for geometry in ("direct", "symmetric")
        for history in ("none", "matched")
    ]
    with tempfile.TemporaryDirectory(prefix="aigen-bias-") as folder:  # hundreds of MB of datasets: removed after
        work = Path(folder)
        build_corpus(work / "corpus", args.count, min_side=256)
        results = [(run, control_audit(run, work / "corpus", work / f"run{i}")) for i, run in enumerate(runs)]
    print(f"{args.count} crops; share of pairs where the AI half is ...")
    print(table(results))


if __name__ == "__main__":
    main()
