"""`python -m aigen.bias_check`: the measurement behind the default pair processing, reproducible on any machine.

For each size regime (`gen_size` 256 and 512; `size` = `gen_size`/2 and = `gen_size`; photo sides 0.5-1x and
1-2x `gen_size`; lossless and web-JPEG photos) it builds a scene corpus offline from the photos that packages ship
(`aigen.corpus.build_scene_corpus`), runs the real factory with each control generator under each pair-processing
choice, audits every dataset (`aigen.audit`) and writes one table with the regimes in its columns. The controls
generate nothing, so every cue away from 50% is the factory's own processing (for native_twin, together with the
filter that made the photo from its scene: see `--cameras`):

- `identity`: the AI half is the photo resized to `gen_size`, as a generator's input arrives;
- `native_twin`: the AI half is the larger scene rendered once at `gen_size`, as a generator's image is born;
- `lossless_twin` (JPEG photos): the AI half is the photo before its JPEG compression.

With `symmetric` geometry the original half is exactly identity's AI half, so native_twin's symmetric row is also
how far the two controls of a generator that changes nothing disagree with each other: a processing that moves
the original toward the native render moves it away from identity by as much.

`--cameras` adds one more table: native_twin with the default processing on the same scenes, their photos made by
each of several downscale filters (the camera's or the web's, which no pipeline knows). It shows how much of the
native-render control's verdict is that filter rather than the factory's processing.

A regime whose photos are all smaller than `size` cannot hold (the loader skips them, never upscaling): it is
counted, not measured.
"""

from __future__ import annotations

import argparse
import csv
import math
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hydra import compose, initialize_config_dir

from aigen.audit import AuditResult, audit_dataset
from aigen.audit.cues import FAIR_BAND, CueResult
from aigen.cli import check_out_folder, one_line_errors
from aigen.corpus import CAMERAS, DEFAULT_CAMERA, build_scene_corpus
from aigen.errors import UserError
from aigen.factory import make_dataset
from aigen.tables import markdown_table

CONF = Path(__file__).resolve().parents[1] / "conf"
CLASSIFIER_LIMIT = 0.55  # the cue classifier's held-out accuracy a default must stay at or below
TWINS = {"lossless_twin": "lossless", "native_twin": "twins"}  # each twin control's folder in a corpus
PROCESSING = (("symmetric", "none"), ("direct", "none"), ("symmetric", "matched"), ("direct", "matched"))
NATIVE = ("native", "matched")  # generator.gen_size=native with the source's JPEG history on its own grid


@dataclass(frozen=True)
class ControlRun:
    generator: str  # identity | lossless_twin | native_twin
    geometry: str = "symmetric"  # or native: generator.gen_size=native (the halves share the photo's own grid)
    jpeg_history: str = "none"
    gen_size: int = 512
    size: int = 256

    def overrides(self, photos: Path, corpus: Path, out: Path) -> list[str]:
        twins = [f"generator.twins={corpus / TWINS[self.generator]}"] if self.generator in TWINS else []
        native = self.geometry == "native"
        return [
            "source=folder",
            f"source.root={photos}",
            f"generator={self.generator}",
            *twins,
            f"generator.gen_size={'native' if native else self.gen_size}",
            f"size={self.size}",
            f"pairing.geometry={'symmetric' if native else self.geometry}",
            f"pairing.jpeg_history={self.jpeg_history}",
            "logger=none",
            f"dataset_dir={out}",
        ]


def control_audit(run: ControlRun, corpus: Path, out: Path, photos: str = "jpeg") -> AuditResult:
    """The factory's dataset of one control run on `corpus/photos` (twins beside it), audited."""
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF)):
        cfg = compose("config", overrides=run.overrides(corpus / photos, corpus, out))
    summary = make_dataset(cfg)
    assert summary.failed == 0, f"{summary.failed} corpus photos failed"
    return audit_dataset(out)


def holds(result: AuditResult) -> bool:
    """Every cue within FAIR_BAND and the cue classifier at or below CLASSIFIER_LIMIT."""
    in_band = all(FAIR_BAND[0] <= cue.share <= FAIR_BAND[1] for cue in result.cues)
    return in_band and (result.accuracy or 0.5) <= CLASSIFIER_LIMIT


@dataclass(frozen=True)
class Regime:
    gen_size: int
    size: int
    sides: tuple[float, float]  # the photos' sides, as multiples of gen_size
    jpeg: bool

    @property
    def photo_sides(self) -> tuple[int, int]:
        return round(self.sides[0] * self.gen_size), round(self.sides[1] * self.gen_size)

    @property
    def possible(self) -> bool:
        """Some photos at least `size`: smaller ones are skipped, never upscaled."""
        return self.photo_sides[1] > self.size

    @property
    def label(self) -> str:
        """Within one gen_size's table: size, photo sides (x gen_size), photo format."""
        return f"size {self.size}, sides {self.sides[0]:g}-{self.sides[1]:g}x, {'JPEG' if self.jpeg else 'PNG'}"

    def corpus(self, folder: Path, count: int, camera: str = DEFAULT_CAMERA) -> None:
        """This regime's scene corpus, the same whichever regimes a run selects (seeded by its place in REGIMES);
        photos below `size` are never drawn (the loader would skip them: counted as impossible instead)."""
        lowest = max(self.photo_sides[0], self.size)
        sides = (lowest, self.photo_sides[1])
        seed = REGIMES.index(self)
        build_scene_corpus(folder, count, sides, self.jpeg, seed=seed, scene_side=self.gen_size, camera=camera)

    def controls(self) -> list[str]:
        return ["identity", "native_twin"] + (["lossless_twin"] if self.jpeg else [])

    def processing(self, generator: str) -> list[tuple[str, str]]:
        """A lossless photo has no JPEG history to match; the lossless control of a JPEG photo is also measured
        at native resolution (native_twin has no native mode: its twin is larger than the photo by design)."""
        choices = [choice for choice in PROCESSING if self.jpeg or choice[1] == "none"]
        return choices + ([NATIVE] if self.jpeg and generator == "lossless_twin" else [])


REGIMES = [
    Regime(gen_size, size, sides, jpeg)
    for gen_size in (256, 512)
    for size in (gen_size // 2, gen_size)
    for sides in ((0.5, 1.0), (1.0, 2.0))
    for jpeg in (False, True)
]


@dataclass(frozen=True)
class Measured:
    regime: Regime
    run: ControlRun
    result: AuditResult


def sweep(regimes: list[Regime], count: int, work: Path) -> tuple[list[Measured], list[Regime]]:
    """Every possible regime's corpus, every control and processing on it; the regimes that cannot hold."""
    measured, impossible = [], []
    for index, regime in enumerate(regimes):
        if not regime.possible:
            impossible.append(regime)
            continue
        regime_dir = work / f"regime{index}"  # removed once audited: one regime's GBs on disk at a time
        corpus = regime_dir / "corpus"
        regime.corpus(corpus, count)
        for generator in regime.controls():
            for geometry, history in regime.processing(generator):
                run = ControlRun(generator, geometry, history, regime.gen_size, regime.size)
                out = regime_dir / f"{generator}-{geometry}-{history}"
                measured.append(Measured(regime, run, control_audit(run, corpus, out, photos="photos")))
        shutil.rmtree(regime_dir)
        print(f"measured gen_size {regime.gen_size}, {regime.label}", flush=True)
    return measured, impossible


@dataclass(frozen=True)
class CameraMeasured:
    regime: Regime
    camera: str
    run: ControlRun
    result: AuditResult


def camera_sweep(
    regimes: list[Regime], cameras: list[str], count: int, work: Path, swept: Sequence[Measured] = ()
) -> list[CameraMeasured]:
    """native_twin with the default processing on the same scenes, their photos made by each camera filter (PNG
    regimes only, so that no JPEG pass blurs the filter's mark): what the native-render control's verdict owes to
    a filter no pipeline can know. Lanczos photos are the main sweep's corpus: its run is taken from `swept`."""
    done = {(m.regime, m.run): m.result for m in swept}
    measured = []
    for regime in (regime for regime in regimes if regime.possible and not regime.jpeg):
        run = ControlRun("native_twin", gen_size=regime.gen_size, size=regime.size)
        for camera in cameras:
            if camera == DEFAULT_CAMERA and (regime, run) in done:
                measured.append(CameraMeasured(regime, camera, run, done[regime, run]))
                continue
            camera_dir = work / f"regime{REGIMES.index(regime)}-{camera}"
            regime.corpus(camera_dir / "corpus", count, camera)
            result = control_audit(run, camera_dir / "corpus", camera_dir / "native_twin", photos="photos")
            shutil.rmtree(camera_dir)
            measured.append(CameraMeasured(regime, camera, run, result))
        print(f"measured cameras at gen_size {regime.gen_size}, {regime.label}", flush=True)
    return measured


def camera_table(measured: list[CameraMeasured]) -> str:
    """One row per camera filter, one column per regime."""
    regimes = [r for r in REGIMES if any(m.regime == r for m in measured)]
    cameras = [c for c in CAMERAS if any(m.camera == c for m in measured)]
    by_key = {(m.regime, m.camera): m.result for m in measured}
    header = ["photo made with", *(f"{r.gen_size} -> {r.label}" for r in regimes)]
    return markdown_table(header, [[camera, *(cell(by_key[r, camera]) for r in regimes)] for camera in cameras])


def magnitude(cue: CueResult) -> str:
    """The median per-pair difference in the cue's own unit: a share says how often, this says how much."""
    if cue.cue.log_ratio:
        return f"{math.expm1(cue.median_difference):+.1%}"
    if cue.cue.name in ("brightness", "saturation"):  # in [0, 1]: as 8-bit levels
        return f"{cue.median_difference * 255:+.2g} levels"
    return f"{cue.median_difference:+.2g}"


def cell(result: AuditResult) -> str:
    """OK when the run holds; else its worst cue (farthest from 50%) with its median difference, and the
    classifier when above the limit."""
    worst = max(result.cues, key=lambda cue: abs(cue.share - 0.5))
    text = f"{'OK' if holds(result) else 'NO'}: {worst.direction} {worst.direction_share:.0%}"
    if not holds(result):
        text += f" ({magnitude(worst)})"
    if (result.accuracy or 0.5) > CLASSIFIER_LIMIT:
        text += f", classifier {result.accuracy:.0%}"
    return text


def regime_table(measured: list[Measured], impossible: list[Regime], gen_size: int) -> str:
    regimes = [r for r in REGIMES if r.gen_size == gen_size and (r.possible or r in impossible)]
    header = ["control", "geometry", "jpeg_history"] + [r.label for r in regimes]
    keys = sorted(
        {(m.run.generator, m.run.geometry, m.run.jpeg_history) for m in measured if m.regime.gen_size == gen_size},
        key=lambda key: (
            ["identity", "native_twin", "lossless_twin"].index(key[0]),
            (*PROCESSING, NATIVE).index(key[1:]),
        ),
    )
    by_key = {(m.regime, m.run.generator, m.run.geometry, m.run.jpeg_history): m.result for m in measured}
    rows = []
    for key in keys:
        cells = []
        for regime in regimes:
            result = by_key.get((regime, *key))
            cells.append(cell(result) if result else ("below size" if not regime.possible else "n/a"))
        rows.append([*key, *cells])
    return markdown_table(header, rows)


def write_csv(measured: list[Measured], cameras: list[CameraMeasured], path: Path) -> None:
    """Every cue's share and the classifier (empty when too few pairs to train it), one row per run: the sweep's
    (photos made with the corpus' Lanczos) and the other cameras' native_twin runs with the default processing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    runs = [(m.regime, DEFAULT_CAMERA, m.run, m.result) for m in measured]
    runs += [(c.regime, c.camera, c.run, c.result) for c in cameras if c.camera != DEFAULT_CAMERA]
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        cue_names = [cue.cue.name for cue in runs[0][3].cues]
        medians = [f"{name}_median_difference" for name in cue_names]
        header = ["regime", "camera", "control", "geometry", "jpeg_history", "pairs", *cue_names, *medians]
        writer.writerow([*header, "classifier", "holds"])
        for regime, camera, run, result in runs:
            shares = [round(cue.share, 4) for cue in result.cues]
            shares += [float(f"{cue.median_difference:.4g}") for cue in result.cues]
            row = [
                f"gen_size {regime.gen_size}, {regime.label}",
                camera,
                run.generator,
                run.geometry,
                run.jpeg_history,
                result.pairs,
                *shares,
            ]
            classifier = "" if result.accuracy is None else round(result.accuracy, 4)
            writer.writerow([*row, classifier, holds(result)])


@one_line_errors
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aigen.bias_check", description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200, help="photos per regime (default 200)")
    parser.add_argument("--gen-size", type=int, choices=(256, 512), action="append", help="only these (default both)")
    parser.add_argument("--out", type=Path, default=Path("outputs/bias-check"), help="where the CSV goes")
    parser.add_argument(
        "--cameras",
        nargs="+",
        choices=list(CAMERAS),
        help="also run native_twin's default on PNG photos made by each of these filters (one more table)",
    )
    args = parser.parse_args(argv)
    if args.count < 1:
        raise UserError(f"--count {args.count}: each regime needs at least 1 photo")
    check_out_folder(args.out)  # before a sweep of minutes to hours
    gen_sizes = args.gen_size or [256, 512]
    regimes = [regime for regime in REGIMES if regime.gen_size in gen_sizes]
    with tempfile.TemporaryDirectory(prefix="aigen-bias-") as folder:  # each regime's GBs removed once audited
        measured, impossible = sweep(regimes, args.count, Path(folder))
        cameras = camera_sweep(regimes, args.cameras, args.count, Path(folder), measured) if args.cameras else []
    write_csv(measured, cameras, args.out / "bias_check.csv")
    print(f"{args.count} photos per regime; OK: every cue within 40-60% and classifier <= 55%; else the worst cue")
    for gen_size in gen_sizes:
        print(f"\ngen_size {gen_size}:\n{regime_table(measured, impossible, gen_size)}")
    if cameras:
        print(f"\nnative_twin, default processing, by the filter that made the photos:\n{camera_table(cameras)}")
    print(f"every cue: {args.out / 'bias_check.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
