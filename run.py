"""Make a paired real/AI dataset: `python run.py generator=sd size=256` (see README.md for every key)."""

import sys
import warnings
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from aigen.errors import Interrupted, one_line_errors
from aigen.factory import make_dataset
from aigen.overrides import check_overrides

# conf/hydra/launcher/submitit_*.yaml override the launcher plugin's schemas of the same name on purpose,
# so that `hydra/launcher=submitit_slurm` carries our GPU defaults; Hydra 1.3 warns about that pattern.
warnings.filterwarnings("ignore", message=r"(?s).*validated against ConfigStore schema with the same name")


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> None:
    hydra_config = HydraConfig.get()
    run_dir = Path(hydra_config.runtime.output_dir)
    sweep_group = f"sweep-{Path(hydra_config.sweep.dir).as_posix().replace('/', '-')}"
    multirun = hydra_config.mode == RunMode.MULTIRUN
    try:
        with one_line_errors(multirun):
            make_dataset(cfg, run_dir=run_dir, group=sweep_group if multirun else None)
    except Interrupted as stop:  # make_dataset said so before its totals; the exit code tells a scheduler
        sys.exit(128 + stop.signal_number)


if __name__ == "__main__":
    with one_line_errors(multirun=False):  # a typo is one line naming the closest key, before Hydra's own advice
        check_overrides(str(Path(__file__).resolve().parent / "conf"), "config", sys.argv[1:])
    main()
