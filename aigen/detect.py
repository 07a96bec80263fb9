"""Train a real-vs-AI detector on factory datasets, evaluate one, or build the cross-generator matrix:
`python -m aigen.detect task=train|eval|matrix`.

    python -m aigen.detect task=train 'train_sets=[DIR,...]' output_dir=RUN
    python -m aigen.detect task=eval checkpoint=RUN/best.pt 'eval_sets=[DIR1,DIR2]' 'perturb=[jpeg75,blur1]'
    python -m aigen.detect task=matrix 'train_sets=[DIR1,DIR2]' 'eval_sets=[DIR1,DIR2,DIR3]' output_dir=MATRIX

Every key is in conf/detect.yaml (see docs/detector.md).
"""

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from aigen.detector.evaluate import evaluate
from aigen.detector.matrix import matrix
from aigen.detector.train import train
from aigen.devices import check_available
from aigen.errors import UserError, one_line_errors
from aigen.overrides import check_overrides

CONF_DIR = str(Path(__file__).resolve().parents[1] / "conf")
TASKS = {"train": train, "eval": evaluate, "matrix": matrix}


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="detect")
def main(cfg: DictConfig) -> None:
    multirun = HydraConfig.get().mode == RunMode.MULTIRUN
    try:
        with one_line_errors(multirun):
            if cfg.task not in TASKS:
                raise UserError(f"task={cfg.task!r} is not one of {', '.join(TASKS)}")
            check_available(cfg.device)
            TASKS[cfg.task](cfg)
    except KeyboardInterrupt:
        print(
            "interrupted: last.pt holds the last finished epoch; rerun with resume=true to continue "
            "(task=matrix: rerun the same command)",
            file=sys.stderr,
        )
        sys.exit(130)


if __name__ == "__main__":
    with one_line_errors(multirun=False):  # a typo is one line naming the closest key, before Hydra's own advice
        check_overrides(CONF_DIR, "detect", sys.argv[1:])
    main()
