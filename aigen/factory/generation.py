"""Calling the generator on a batch so that a long GPU run survives: out-of-memory halves the batch (and remembers
it), a failing batch is retried image by image, and a systematic error stops the run instead of failing every
photo for hours.

Every retry happens OUTSIDE the `except` block that caught the error: inside it, the exception's traceback keeps
the failed call's frames, and with them its tensors, alive while the retry allocates again.
"""

from __future__ import annotations

import gc
import logging
from dataclasses import dataclass

import torch

from aigen.errors import SkipImage, UserError
from aigen.generators.base import Generator, Variation

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CallFailed:
    """What is kept of a failed call: its error's type and message, never the exception (nor its traceback)."""

    error_type: str
    message: str
    out_of_memory: bool

    def reason(self) -> str:
        return f"{self.error_type}: {self.message}"


def call(generator: Generator, inputs: list, seeds: list[int]) -> list[Variation | SkipImage] | CallFailed:
    """One generator call; an error becomes a CallFailed (UserError and Ctrl-C go through)."""
    try:
        return generator.generate(inputs, seeds)
    except (UserError, KeyboardInterrupt):
        raise
    except Exception as error:  # noqa: BLE001 - a generator error is recorded or retried, never loses the run
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        return CallFailed(type(error).__name__, first_line, isinstance(error, torch.OutOfMemoryError))


def release_memory() -> None:
    """Free what a failed call left behind (called after its exception is gone), so the retry finds the memory."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


class CircuitBreaker:
    """Stops the run after `limit` generator calls in a row failed with the same error type: a bug, a compile
    failure or a broken CUDA context would otherwise become one recorded failure per photo for hours. Bad photos
    never reach the generator (they are skipped before), so they never trip it. 0 turns it off."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._error_type: str | None = None
        self._in_a_row = 0

    def succeeded(self) -> None:
        self._error_type, self._in_a_row = None, 0

    def failed(self, failure: CallFailed) -> None:
        self._in_a_row = self._in_a_row + 1 if failure.error_type == self._error_type else 1
        self._error_type = failure.error_type
        if self.limit and self._in_a_row >= self.limit:
            raise UserError(
                f"the generator failed {self._in_a_row} times in a row with {failure.reason()}: this looks "
                "systematic (a bug, a compile failure, a broken GPU context), not a bad photo, so the run stopped. "
                "Investigate with batch_size=1 limit=1 and HYDRA_FULL_ERROR=1 (the log is in the Hydra run dir); "
                "max_consecutive_failures=0 turns this check off"
            )


class BatchGenerator:
    """Calls the generator in chunks of the current batch size, which an out-of-memory error halves for the rest
    of the run; only an image that does not fit alone is recorded as failed."""

    def __init__(self, generator: Generator, batch_size: int, breaker: CircuitBreaker) -> None:
        self.generator = generator
        self.batch_size = batch_size
        self.breaker = breaker
        self.out_of_memory_sizes: list[int] = []  # the sizes that did not fit, in order

    def __call__(self, inputs: list, seeds: list[int]) -> list[Variation | SkipImage]:
        results: list[Variation | SkipImage] = []
        while len(results) < len(inputs):
            start = len(results)
            size = min(self.batch_size, len(inputs) - start)
            outcome = call(self.generator, inputs[start : start + size], seeds[start : start + size])
            if not isinstance(outcome, CallFailed):
                self.breaker.succeeded()
                results += outcome
            elif outcome.out_of_memory and size > 1:
                release_memory()
                self.out_of_memory_sizes.append(size)
                self.batch_size = max(1, min(size - 1, self.batch_size // 2))
                log.warning("out of memory at batch size %d; going on at %d", size, self.batch_size)
            else:
                self.breaker.failed(outcome)
                if outcome.out_of_memory:
                    release_memory()
                results += self.one_by_one(inputs[start : start + size], seeds[start : start + size], outcome)
        return results

    def one_by_one(self, inputs: list, seeds: list[int], failure: CallFailed) -> list[Variation | SkipImage]:
        """A chunk whose call failed (not for memory): each image alone, then its error recorded per image."""
        if len(inputs) == 1:
            return [SkipImage("generate", failure.reason())]
        log.warning("batch of %d failed (%s); retrying one by one", len(inputs), failure.reason())
        results: list[Variation | SkipImage] = []
        for single, seed in zip(inputs, seeds, strict=True):
            outcome = call(self.generator, [single], [seed])
            if isinstance(outcome, CallFailed):
                self.breaker.failed(outcome)
                if outcome.out_of_memory:
                    release_memory()
                results.append(SkipImage("generate", outcome.reason()))
            else:
                self.breaker.succeeded()
                results += outcome
        return results
