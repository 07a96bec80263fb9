"""Binary detection metrics with AI as the positive class, from scikit-learn, and their 95% intervals.

Point metrics: confusion counts, accuracy (overall, on real images, on AI images, balanced), precision, recall, F1,
ROC AUC, average precision, TPR at 5% FPR and the expected calibration error. Intervals: Wilson for the accuracies
(scipy's binomtest), a stratified percentile bootstrap for ROC AUC (scipy's bootstrap).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats
from sklearn import metrics as sk

THRESHOLD = 0.5  # an image is called AI when P(ai) > 0.5, i.e. the argmax of the two logits (ties: original)
LOW_FPR = 0.05  # TPR at this false-positive rate: how many fakes are caught when few real photos may be flagged
ECE_BINS = 15  # equal-width bins of P(ai) for the calibration error (Guo et al. 2017)
CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 1000
SMALL_SAMPLE = 100  # fewer scored images than this: the table warns that its numbers are loose


@dataclass(frozen=True)
class Confusion:
    """Counts with rows = truth, columns = prediction: [[tn, fp], [fn, tp]]."""

    tn: int
    fp: int
    fn: int
    tp: int

    @property
    def n(self) -> int:
        return self.tn + self.fp + self.fn + self.tp

    def matrix(self) -> list[list[int]]:
        return [[self.tn, self.fp], [self.fn, self.tp]]


def both_classes(labels: np.ndarray) -> bool:
    return len(np.unique(labels)) == 2


def ranking_metrics(labels: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """(ROC AUC, average precision); both NaN when only one class is present (they are undefined then)."""
    if not both_classes(labels):
        return float("nan"), float("nan")
    return float(sk.roc_auc_score(labels, scores)), float(sk.average_precision_score(labels, scores))


def tpr_at_fpr(labels: np.ndarray, scores: np.ndarray, fpr_limit: float = LOW_FPR) -> float:
    """The highest share of AI images called AI at a threshold that calls at most `fpr_limit` of the real images AI
    (sklearn's ROC curve with every threshold kept, no interpolation); NaN when only one class is present."""
    if not both_classes(labels):
        return float("nan")
    fpr, tpr, _ = sk.roc_curve(labels, scores, drop_intermediate=False)
    return float(tpr[fpr <= fpr_limit].max())  # the first point (no image called AI) has FPR 0


def expected_calibration_error(labels: np.ndarray, scores: np.ndarray, bins: int = ECE_BINS) -> float:
    """How far P(ai) is from the share of AI images among the images given that score: the sum over `bins`
    equal-width bins of (images in the bin / n) * |mean P(ai) - share of AI| (Naeini et al. 2015), i.e. the gap
    between the two curves of sklearn.calibration.calibration_curve (same bins: (k/B, (k+1)/B], the first closed),
    weighted by the bins' sizes. 0 is perfectly calibrated; NaN with no image."""
    labels, scores = np.asarray(labels, dtype=np.float64), np.asarray(scores, dtype=np.float64)
    if not len(labels):
        return float("nan")
    bin_of = np.searchsorted(np.linspace(0.0, 1.0, bins + 1)[1:-1], scores)
    score_sums = np.bincount(bin_of, weights=scores, minlength=bins)
    label_sums = np.bincount(bin_of, weights=labels, minlength=bins)
    return float(np.abs(score_sums - label_sums).sum() / len(labels))  # sum_b n_b/n * |sum_b/n_b - labels_b/n_b|


def class_accuracy(labels: np.ndarray, predicted: np.ndarray, label: int) -> float:
    """The share of images of one class called that class (NaN when there is none)."""
    return float(sk.recall_score(labels, predicted, pos_label=label, zero_division=np.nan))


def binary_metrics(labels: np.ndarray, scores: np.ndarray) -> tuple[dict, Confusion]:
    """The point metrics for P(ai) `scores` against 0/1 `labels`; precision and F1 are 0 when nothing is called AI;
    what needs both classes (balanced accuracy, ROC AUC, AP, TPR at 5% FPR) is NaN with one."""
    labels, scores = np.asarray(labels, dtype=int), np.asarray(scores, dtype=np.float64)
    predicted = (scores > THRESHOLD).astype(int)
    (tn, fp), (fn, tp) = sk.confusion_matrix(labels, predicted, labels=[0, 1]).tolist()
    auc, average_precision = ranking_metrics(labels, scores)
    metrics = {
        "accuracy": float(sk.accuracy_score(labels, predicted)) if len(labels) else 0.0,
        "accuracy_real": class_accuracy(labels, predicted, 0),
        "accuracy_ai": class_accuracy(labels, predicted, 1),
        "balanced_accuracy": float(sk.balanced_accuracy_score(labels, predicted))
        if both_classes(labels)
        else float("nan"),
        "precision": float(sk.precision_score(labels, predicted, zero_division=0)),
        "recall": float(sk.recall_score(labels, predicted, zero_division=0)),
        "f1": float(sk.f1_score(labels, predicted, zero_division=0)),
        "roc_auc": auc,
        "average_precision": average_precision,
        "tpr_at_5_fpr": tpr_at_fpr(labels, scores),
        "ece": expected_calibration_error(labels, scores),
        "n": len(labels),
        "n_real": tn + fp,
        "n_ai": fn + tp,
    }
    return metrics, Confusion(tn=tn, fp=fp, fn=fn, tp=tp)


def wilson_interval(successes: int, trials: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The Wilson score interval of a proportion (no continuity correction); NaN with no trial."""
    if not trials:
        return float("nan"), float("nan")
    interval = stats.binomtest(successes, trials).proportion_ci(confidence_level=confidence, method="wilson")
    return float(interval.low), float(interval.high)


def auc_interval(
    labels: np.ndarray, scores: np.ndarray, seed: int = 0, resamples: int = BOOTSTRAP_RESAMPLES
) -> tuple[float, float]:
    """A percentile bootstrap interval of ROC AUC (scipy's bootstrap) that resamples the real and the AI images
    separately (stratified: every resample holds both classes, so AUC is always defined); NaN when a class has fewer
    than two images.

    scipy resamples image indices; the statistic reads each resample's AUC from the real scores sorted once (the
    share of (AI, real) pairs ranked right, ties counted half, as sklearn's roc_auc_score), so a resample costs
    O(n) rather than a sort: 1000 resamples of 100,000 images take seconds.
    """
    labels, scores = np.asarray(labels, dtype=int), np.asarray(scores, dtype=np.float64)
    ai_scores, real_sorted = scores[labels == 1], np.sort(scores[labels == 0])
    if len(ai_scores) < 2 or len(real_sorted) < 2:
        return float("nan"), float("nan")
    below = np.searchsorted(real_sorted, ai_scores, side="left")  # per AI image: real images scored lower
    up_to = np.searchsorted(real_sorted, ai_scores, side="right")  # ... lower or equal
    slots = len(real_sorted) + 1

    def resampled_auc(ai_index: np.ndarray, real_index: np.ndarray, axis: int = -1) -> np.ndarray:
        ai_index, real_index = np.moveaxis(ai_index, axis, -1), np.moveaxis(real_index, axis, -1)
        rows = real_index.reshape(-1, real_index.shape[-1])
        offsets = np.arange(len(rows))[:, None] * slots
        drawn = np.bincount((rows + offsets).ravel(), minlength=len(rows) * slots).reshape(len(rows), slots)
        cumulative = np.cumsum(drawn, axis=-1) - drawn  # [r, k]: draws of real images sorted before position k
        ai_rows = ai_index.reshape(len(rows), -1)
        lower = np.take_along_axis(cumulative, below[ai_rows], axis=-1)
        ties = np.take_along_axis(cumulative, up_to[ai_rows], axis=-1) - lower
        auc = (lower + 0.5 * ties).sum(axis=-1) / (ai_rows.shape[-1] * rows.shape[-1])
        return auc.reshape(real_index.shape[:-1])

    result = stats.bootstrap(
        (np.arange(len(ai_scores)), np.arange(len(real_sorted))),
        resampled_auc,
        n_resamples=resamples,
        batch=50,
        vectorized=True,
        method="percentile",
        confidence_level=CONFIDENCE,
        rng=np.random.default_rng(seed),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def intervals(labels: np.ndarray, scores: np.ndarray, counts: Confusion, seed: int = 0) -> dict:
    """95% intervals: `<metric>_low` and `<metric>_high` for accuracy (overall, real, AI) and ROC AUC."""
    bounds = {
        "accuracy": wilson_interval(counts.tn + counts.tp, counts.n),
        "accuracy_real": wilson_interval(counts.tn, counts.tn + counts.fp),
        "accuracy_ai": wilson_interval(counts.tp, counts.tp + counts.fn),
        "roc_auc": auc_interval(labels, scores, seed),
    }
    return {f"{key}_{side}": bounds[key][index] for key in bounds for index, side in enumerate(("low", "high"))}
