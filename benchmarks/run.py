"""Run every benchmark and append their tables to BENCHMARKS.md: `python benchmarks/run.py [--quick]`.

--quick (a smaller corpus, fewer repeats) finishes in a few minutes on 2 CPU cores. The GPU benchmark runs
only where CUDA is available; elsewhere BENCHMARKS.md records that no GPU was measured.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python benchmarks/run.py` from the checkout

import torch  # noqa: E402

from benchmarks import generation, gpu, preprocess, startup  # noqa: E402
from benchmarks.common import report  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller runs: a few minutes on 2 CPU cores")
    parser.add_argument("--no-append", action="store_true", help="print only, leave BENCHMARKS.md alone")
    args = parser.parse_args()
    append = [] if args.no_append else ["--append"]
    if args.quick:
        preprocess.main(["--photos", "120", "--repeats", "2", *append])
        generation.main(["--photos", "16", "--repeats", "2", *append])
        startup.main(["--counts", "2000", *append])
    else:
        preprocess.main(append)
        generation.main(append)
        startup.main(["--counts", "20000", "--kilobytes", "64", *append])
    if torch.cuda.is_available():
        gpu.main(["--compile", *append] if not args.quick else ["--runs", "1", *append])
    else:
        report("GPU", "No GPU on this machine: nothing measured, no number estimated.", [], not args.no_append)


if __name__ == "__main__":
    main()
