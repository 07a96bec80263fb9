"""Binary detection metrics with AI as the positive class, from scikit-learn: confusion counts, accuracy, precision,
recall, F1, ROC AUC and average precision."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn import metrics as sk

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


def ranking_metrics(labels: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """(ROC AUC, average precision); both NaN when only one class is present (they are undefined then)."""
    if len(np.unique(labels)) < 2:
        return float("nan"), float("nan")
    return float(sk.roc_auc_score(labels, scores)), float(sk.average_precision_score(labels, scores))


def binary_metrics(labels: np.ndarray, scores: np.ndarray) -> tuple[dict, Confusion]:
    """accuracy, precision, recall, f1, roc_auc, average_precision and n (images) for P(ai) `scores` against 0/1
    `labels`; precision and F1 are 0 when nothing is called AI."""
    labels, scores = np.asarray(labels, dtype=int), np.asarray(scores, dtype=np.float64)
    predicted = (scores > THRESHOLD).astype(int)
    (tn, fp), (fn, tp) = sk.confusion_matrix(labels, predicted, labels=[0, 1]).tolist()
    auc, average_precision = ranking_metrics(labels, scores)
    metrics = {
        "accuracy": float(sk.accuracy_score(labels, predicted)) if len(labels) else 0.0,
        "precision": float(sk.precision_score(labels, predicted, zero_division=0)),
        "recall": float(sk.recall_score(labels, predicted, zero_division=0)),
        "f1": float(sk.f1_score(labels, predicted, zero_division=0)),
        "roc_auc": auc,
        "average_precision": average_precision,
        "n": len(labels),
    }
    return metrics, Confusion(tn=tn, fp=fp, fn=fn, tp=tp)
