"""The audit's measurement: global cues of each half of every pair, their shares and a cue-only classifier."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image
from scipy.stats import binomtest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
from sklearn.model_selection import GroupKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from aigen.dataset import open_dataset
from aigen.dataset.record import is_upscaled
from aigen.errors import unreadable_as_user_error

if TYPE_CHECKING:
    from aigen.audit.probe import ProbeResult

FAIR_BAND = (0.4, 0.6)  # the effect size: a share (or classifier accuracy) must lie outside this band to be flagged
ALPHA = 0.05  # ... and differ from chance by a binomial test at this level (few pairs are never flagged on chance)
CONTROLS = ("identity", "lossless_twin", "native_twin")  # generators whose pairs differ only by processing
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
    log_ratio: bool  # per-pair difference as log(AI / original) (scale-free cues) instead of AI - original


CUES = (
    Cue("hf_energy", "high-frequency energy", "sharper", "blurrier", True),
    Cue("blockiness", "8x8 blockiness", "blockier", "less blocky", False),
    Cue("file_size", "file size", "larger as a file", "smaller as a file", True),
    Cue("brightness", "mean brightness", "brighter", "darker", False),
    Cue("saturation", "mean saturation", "more saturated", "less saturated", False),
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


def flagged(share: float, p_value: float) -> bool:
    """Both large (outside FAIR_BAND) and significant (p < ALPHA): a stated effect that chance does not explain."""
    return not FAIR_BAND[0] <= share <= FAIR_BAND[1] and p_value < ALPHA


def sign_test(original: np.ndarray, ai: np.ndarray) -> float:
    """Two-sided p-value that the AI half is greater as often as smaller (a binomial test; ties left out)."""
    greater, differ = int(np.sum(ai > original)), int(np.sum(ai != original))
    return float(binomtest(greater, differ, 0.5).pvalue) if differ else 1.0


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
    p_value: float  # sign test of that share against 0.5
    median_difference: float
    differences: np.ndarray

    @property
    def ties_note(self) -> str:
        """How many pairs are tied (identical values), which the share counts half: a share says nothing of them."""
        ties = int(np.sum(self.differences == 0))
        return f" ({ties} of {len(self.differences)} identical, counted half)" if ties else ""

    @property
    def flagged(self) -> bool:
        return flagged(self.share, self.p_value)

    @property
    def direction(self) -> str:
        return self.cue.more if self.share >= 0.5 else self.cue.less

    @property
    def direction_share(self) -> float:
        return max(self.share, 1 - self.share)

    def sentence(self, control: bool = True) -> str:
        """What the share says. Only a control's pairs differ by processing alone: on a generator's dataset a
        flagged cue may be generation itself, and the matching control says which."""
        text = f"the AI half is {self.direction} in {self.direction_share:.0%} of pairs{self.ties_note}"
        if not self.flagged:
            return text
        text += f" (p={self.p_value:.2g})"
        if control:  # which step of the processing made it, the control's own path says (docs/bias-and-controls.md)
            return f"{text}: a detector can learn this dataset's processing instead of generation"
        return (
            f"the halves differ in {self.cue.label}: {text}; this may be generation itself, and only the matching "
            "control (generator=identity, native_twin or lossless_twin with the same size, gen_size and pairing) "
            "shows whether the factory's processing causes it"
        )


@dataclass(frozen=True)
class AuditResult:
    dataset: str
    pairs: int
    cues: list[CueResult]
    accuracy: float | None
    control: bool = True  # made by a control generator (then a flagged cue is the factory's processing)
    upscaled: int = 0  # pairs from photos smaller than `size` (upscaled): a regime no pair processing makes fair
    probe: ProbeResult | None = None  # the CNN learnability probe, when asked for (`--probe`)
    state: dict[str, str] | None = None  # the dataset dir's fingerprint and pair ids (DatasetDir.state)

    @property
    def accuracy_flagged(self) -> bool:
        """Above the band, and better than chance by a binomial test over the 2 x pairs held-out images."""
        if self.accuracy is None or self.accuracy <= FAIR_BAND[1]:
            return False
        images = 2 * self.pairs
        return bool(binomtest(round(self.accuracy * images), images, 0.5).pvalue < ALPHA)

    def accuracy_sentence(self) -> str:
        if self.accuracy is None:
            return "too few pairs for the cue classifier"
        text = f"a classifier on these cues alone tells the halves apart in {self.accuracy:.0%} of held-out images"
        return f"{text}: the cues above are learnable" if self.accuracy_flagged else text

    @property
    def folds(self) -> int:
        """The cue classifier's folds: FOLDS, or one per pair when there are fewer (classifier_accuracy); 0 when
        too few pairs to train it."""
        return min(FOLDS, self.pairs) if self.accuracy is not None else 0

    def upscaled_sentence(self) -> str:
        return (
            f"{self.upscaled / self.pairs:.0%} of pairs ({self.upscaled}) come from photos smaller than size, "
            "upscaled: their original half is softer than any image born at that size, a cue no pair processing "
            "removes (raise loader.min_side to size to skip them)"
        )

    def flags(self) -> list[str]:
        found = [result.sentence(self.control) for result in self.cues if result.flagged]
        found += [self.accuracy_sentence()] if self.accuracy_flagged else []
        found += [self.probe.sentence(self.control)] if self.probe and self.probe.flagged else []
        return found + ([self.upscaled_sentence()] if self.upscaled else [])

    def rows(self) -> list[list[object]]:
        """One row per cue, then the classifier, the upscaled pairs and the probe where there are, in CSV_COLUMNS
        order."""
        rows: list[list[object]] = [
            [
                r.cue.name,
                round(r.share, 4),
                r.direction,
                round(r.direction_share, 4),
                float(f"{r.median_difference:.4g}"),
                r.flagged,
                r.sentence(self.control),
            ]
            for r in self.cues
        ]
        accuracy = None if self.accuracy is None else round(self.accuracy, 4)
        rows.append(
            ["classifier", "", "held-out accuracy", accuracy, "", self.accuracy_flagged, self.accuracy_sentence()]
        )
        if self.upscaled:
            share = round(self.upscaled / self.pairs, 4)
            rows.append(["upscaled", "", "share of pairs", share, "", True, self.upscaled_sentence()])
        if self.probe:
            probe = self.probe
            sentence = probe.sentence(self.control)
            rows.append(["probe", "", "held-out accuracy", round(probe.accuracy, 4), "", probe.flagged, sentence])
        return rows


def audit_values(
    dataset: str, ids: list[str], original: np.ndarray, ai: np.ndarray, control: bool = True, upscaled: int = 0
) -> AuditResult:
    """The audit of pairs given their cue matrices (rows: pairs in `ids` order; columns: CUES)."""
    results = []
    for column, cue in enumerate(CUES):
        before, after = original[:, column], ai[:, column]
        differences = pair_differences(cue, before, after)
        share = share_ai_greater(before, after)
        results.append(CueResult(cue, share, sign_test(before, after), float(np.median(differences)), differences))
    return AuditResult(dataset, len(ids), results, classifier_accuracy(ids, original, ai), control, upscaled)


def audit_dataset(dataset_dir: Path) -> AuditResult:
    """Read every pair of the manifest and audit it; UserError when the dir is not a dataset or has no pairs."""
    dataset = open_dataset(dataset_dir)
    ids = sorted(dataset.rows)
    halves: dict[str, list[dict[str, float]]] = {"original": [], "ai": []}
    for image_id in ids:
        for half, values in halves.items():
            path = dataset.image_path(image_id, half)
            with unreadable_as_user_error(path):
                values.append(file_cues(path))
    control = dataset.record.get("content", {}).get("generator") in CONTROLS
    upscaled = sum(is_upscaled(dataset.rows[image_id]) for image_id in ids)
    original, ai = cue_matrix(halves["original"]), cue_matrix(halves["ai"])
    result = audit_values(str(dataset_dir), ids, original, ai, control, upscaled)
    return replace(result, state=dataset.state)
