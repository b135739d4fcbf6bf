"""Options and error handling shared by every command."""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Callable
from typing import Any

import click

from graded.validation import ValidationError

__all__ = ["handle_errors", "json_option", "echo_json", "ProgressBar"]

_log = logging.getLogger("graded.cli")

json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON on stdout.")


def handle_errors(func: Callable) -> Callable:
    """Turn library errors into a one-line message and a non-zero exit code.

    ``ValidationError`` / ``ValueError`` / ``FileNotFoundError`` exit with 2 (bad input),
    anything the library raised as ``RuntimeError`` with 1.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (ValidationError, ValueError, FileNotFoundError, IsADirectoryError) as exc:
            raise click.UsageError(str(exc)) from None
        except RuntimeError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(1)

    return wrapper


def echo_json(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2, sort_keys=False))


class ProgressBar:
    """A ``progress(done, total, message)`` callback backed by ``click.progressbar``.

    Library functions take such a callback and never print themselves. The bar
    writes to stderr so ``--json`` output on stdout stays clean. Each message (e.g. a
    training epoch's losses) is shown beside the bar and logged at INFO level, so
    ``graded -v ...`` keeps a record of it where stderr is not a terminal (a log file,
    CI), where the bar itself is only its label -- also with the bar switched off.
    """

    def __init__(self, label: str, enabled: bool = True):
        self.label = label
        self.enabled = enabled
        self._bar = None
        self._done = 0

    def __call__(self, done: int, total: int, message: str = "") -> None:
        if message:
            _log.info("%s: %s", self.label, message)
        if not self.enabled:
            return
        if self._bar is None:
            self._bar = click.progressbar(length=total, label=self.label, file=sys.stderr,
                                          item_show_func=lambda m: m)
            self._bar.__enter__()
        self._bar.update(done - self._done, message or None)
        self._done = done

    def close(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
