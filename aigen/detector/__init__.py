"""Real-vs-AI detectors on factory datasets and public benchmarks: data -> model -> train / evaluate / matrix ->
report.

`data` (pairs keyed by photo content, the train/val/test split, tensors, augmentations), `benchmarks` (labelled
real/fake sets to score), `perturb` (robustness perturbations), `model` (ResNet builder, checkpoints), `probe`
(linear probes on frozen CLIP or DINOv2) and `features` (its feature cache), `inputs` (what a model reads),
`runtime` (device, precision, loaders, a scoring pass), `metrics`, `report` (tables), `plots` (confusion, heatmap,
robustness PNGs), `tracking` (W&B), and the tasks `python -m aigen.detect` runs: `train`, `evaluate`, `matrix`.
"""
