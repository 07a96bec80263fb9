"""A real-vs-AI detector baseline on factory datasets: data -> model -> train / evaluate -> report.

`data` (pairs, the split by pair, tensors, augmentations), `model` (ResNet builder, checkpoints), `runtime`
(device, mixed precision, one pass over a loader), `metrics` (numbers), `report` (table, confusion PNG),
`tracking` (W&B), `train` and `evaluate` (the two tasks `python -m aigen.detect` runs).
"""
