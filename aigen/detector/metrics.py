"""Binary detection metrics with AI as the positive class: confusion counts, accuracy, precision, recall, F1, AUC."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

THRESHOLD = 0.5  # an image is called AI when P(ai) > 0.5, i.e. the argmax of the two logits (ties: original)


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


def confusion(labels: np.ndarray, predicted: np.ndarray) -> Confusion:
    labels, predicted = np.asarray(labels, dtype=bool), np.asarray(predicted, dtype=bool)
    return Confusion(
        tn=int(np.sum(~labels & ~predicted)),
        fp=int(np.sum(~labels & predicted)),
        fn=int(np.sum(labels & ~predicted)),
        tp=int(np.sum(labels & predicted)),
    )


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve from ranks (Mann-Whitney U): tied scores share their average rank, i.e. count 1/2.

    NaN when only one class is present (the AUC is undefined then).
    """
    labels, scores = np.asarray(labels, dtype=bool), np.asarray(scores, dtype=np.float64)
    positives, negatives = int(labels.sum()), int((~labels).sum())
    if positives == 0 or negatives == 0:
        return float("nan")
    _, group, counts = np.unique(scores, return_inverse=True, return_counts=True)
    average_rank = np.cumsum(counts) - (counts - 1) / 2  # 1-based rank of each distinct score, ties averaged
    rank_sum = average_rank[group][labels].sum()
    return float((rank_sum - positives * (positives + 1) / 2) / (positives * negatives))


def ratio(numerator: float, denominator: float) -> float:
    """0 when the denominator is 0 (e.g. precision when nothing is called AI), as scikit-learn reports it."""
    return numerator / denominator if denominator else 0.0


def binary_metrics(labels: np.ndarray, scores: np.ndarray) -> tuple[dict, Confusion]:
    """accuracy, precision, recall, f1, roc_auc and n (images) for P(ai) `scores` against 0/1 `labels`."""
    counts = confusion(labels, np.asarray(scores) > THRESHOLD)
    precision = ratio(counts.tp, counts.tp + counts.fp)
    recall = ratio(counts.tp, counts.tp + counts.fn)
    metrics = {
        "accuracy": ratio(counts.tp + counts.tn, counts.n),
        "precision": precision,
        "recall": recall,
        "f1": ratio(2 * precision * recall, precision + recall),
        "roc_auc": roc_auc(labels, scores),
        "n": counts.n,
    }
    return metrics, counts
