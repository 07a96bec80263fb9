"""Make a paired real/AI dataset: `python run.py generator=sd size=256` (see README.md for every key)."""

import sys

import hydra
from omegaconf import DictConfig

from aigen.errors import Interrupted, UserError
from aigen.factory import make_dataset


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> None:
    try:
        make_dataset(cfg)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    except Interrupted as stop:
        print(f"interrupted: {stop}", file=sys.stderr)
        sys.exit(128 + stop.signal_number)


if __name__ == "__main__":
    main()
