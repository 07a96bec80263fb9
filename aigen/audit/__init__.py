"""`python -m aigen.audit DATASET_DIR`: which global cues tell the halves of a dataset's pairs apart.

A detector should learn generation, not the factory's processing. For each cue a detector could learn instead
(high-frequency energy, 8x8 JPEG blockiness, file size, brightness, saturation) the report gives the share of
pairs where the AI half has more of it than its original, flagged outside FAIR_BAND, and the held-out accuracy of
a small classifier that sees only these cues, one image at a time, split by pair. It writes audit.md, audit.csv,
audit.json and audit.png into an output dir (never into the dataset dir, which must stay a clean imagefolder).
"""

from aigen.audit.cli import main
from aigen.audit.cues import (
    CSV_COLUMNS,
    CUE_NAMES,
    CUES,
    FAIR_BAND,
    AuditResult,
    audit_dataset,
    audit_values,
    blockiness,
    brightness,
    classifier_accuracy,
    high_frequency_energy,
    saturation,
    share_ai_greater,
)
from aigen.audit.report import PANEL

__all__ = [
    "CSV_COLUMNS",
    "CUES",
    "CUE_NAMES",
    "FAIR_BAND",
    "PANEL",
    "AuditResult",
    "audit_dataset",
    "audit_values",
    "blockiness",
    "brightness",
    "classifier_accuracy",
    "high_frequency_energy",
    "main",
    "saturation",
    "share_ai_greater",
]
