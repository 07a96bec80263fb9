"""Helper threads (decoding ahead, writing behind) must not slow the thread that drives the generator."""

from __future__ import annotations

import contextlib
import os
import threading


def lower_priority() -> None:
    """Thread initializer: a lower priority for this thread, so it fills idle CPU time instead of preempting
    the generator's torch threads (a preempted thread stalls a whole parallel op on a machine with few cores)."""
    with contextlib.suppress(OSError, AttributeError):  # Linux: niceness is per thread
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
