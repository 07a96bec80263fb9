"""A control generator that waits at a gate: tests overlap two processes deterministically, never by a timer."""

from __future__ import annotations

import time
from pathlib import Path

from aigen.generators.controls import Identity

GATE_TIMEOUT = 300.0  # seconds: a test that never opens the gate fails instead of hanging


class GatedIdentity(Identity):
    """The identity control; after its first call it waits until the file `gate` exists."""

    def __init__(
        self, gate: str, gen_size: int = 64, name: str = "identity", license: str | None = None, max_side: int = 1024
    ) -> None:
        super().__init__(gen_size, name, license, max_side)
        self.gate = Path(gate)
        self.calls = 0

    def generate(self, inputs, seeds):
        self.calls += 1
        deadline = time.monotonic() + GATE_TIMEOUT
        while self.calls > 1 and not self.gate.exists():
            if time.monotonic() > deadline:
                raise TimeoutError(f"the test never opened {self.gate}")
            time.sleep(0.02)
        return super().generate(inputs, seeds)
