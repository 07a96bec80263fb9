"""Errors that carry a message for the user, not a stack trace."""

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class UserError(Exception):
    """A mistake the user can fix (bad path, bad option, missing model): printed as one line, exit code 2."""


class RunStopped(UserError):
    """A generator error no further photo would pass, raised after part of a batch got its images: `results` holds
    them (None for photos not sent), so that the factory writes what was already made, or paid for, first."""

    def __init__(self, message: str, results: list) -> None:
        super().__init__(message)
        self.results = results


class SkipImage(Exception):
    """One source image cannot be used: recorded in failures.jsonl with its stage and reason, the run goes on.
    `details` are facts of this one failure (an API's request id, what a model said) that go into its row but not
    into the reason, so that alike failures share one reason in dataset.json's counts."""

    def __init__(self, stage: str, reason: str, details: dict | None = None) -> None:
        super().__init__(f"{stage}: {reason}")
        self.stage = stage
        self.reason = reason
        self.details = details or {}


class Interrupted(Exception):
    """The run stopped early on SIGINT/SIGTERM after finishing its batch; the dataset is consistent and resumable."""

    def __init__(self, signal_number: int) -> None:
        super().__init__(f"stopped by signal {signal_number}; rerun the same command to resume")
        self.signal_number = signal_number


def say(error: UserError) -> None:
    """The one way a user's mistake is shown: one `error:` line on stderr."""
    print(f"error: {error}", file=sys.stderr)


@contextmanager
def one_line_errors(multirun: bool) -> Iterator[None]:
    """A UserError ends the program as one `error: ...` line and exit code 2. In a Hydra multirun it is raised
    after that line instead, so that Hydra records the failed job and still runs the others."""
    try:
        yield
    except UserError as error:
        say(error)
        if multirun:
            raise
        sys.exit(2)


@contextmanager
def unreadable_as_user_error(path: Path) -> Iterator[None]:
    """A dataset file that is gone or does not decode: one line that points at aigen.verify."""
    try:
        yield
    except OSError as error:
        reason = error.strerror or error
        raise UserError(f"{path} cannot be read ({reason}); check it with python -m aigen.verify") from None
