"""Options and error handling shared by every command."""

from __future__ import annotations

import functools
import json
import logging
import sys
import time
from collections.abc import Callable
from typing import Any

import click

from graded.validation import ValidationError

__all__ = ["InputError", "LINE_INTERVAL_S", "ProgressBar", "echo_json", "handle_errors", "is_quiet", "json_option",
           "scheduler_option"]

_log = logging.getLogger("graded.cli")

json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON on stdout.")


def scheduler_option(what: str) -> Callable:
    """``--scheduler ADDRESS|local``: run ``what`` as Dask tasks (docs/cluster.md)."""
    return click.option("--scheduler", default=None, metavar="ADDRESS|local",
                        help=f"Run {what} as Dask tasks: 'local' starts a LocalCluster of this machine's cores, "
                             "an address (tcp://HOST:8786) uses a running cluster.")


#: Library hints name Python keywords; on the command line they are flags.
CLI_WORDS = {"strict=False": "--no-strict", "units='GPa'": "--units GPa", "units=\"GPa\"": "--units GPa"}


def cli_words(message: str) -> str:
    """A library message with its Python keyword hints replaced by the matching CLI flags."""
    for py, flag in CLI_WORDS.items():
        message = message.replace(py, flag)
    return message


class InputError(click.ClickException):
    """Bad input found by the library: ``Error: <field>: <problem>; <fix>``, exit code 2.

    Unlike ``click.UsageError`` it prints no usage banner: the command line was fine, the
    spec, file or value it named was not.
    """

    exit_code = 2


def handle_errors(func: Callable) -> Callable:
    """Turn library errors into a one-line message and a non-zero exit code.

    ``ValidationError`` / ``ValueError`` / missing, unreadable or blocked files exit with 2
    (bad input), anything the library raised as ``RuntimeError`` with 1. No traceback.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (ValidationError, ValueError, FileNotFoundError, IsADirectoryError, NotADirectoryError,
                FileExistsError, PermissionError) as exc:
            msg = cli_words(str(exc))
            if isinstance(exc, OSError) and exc.filename and not isinstance(exc, FileNotFoundError):
                msg = f"{exc.filename}: {exc.strerror}; check the path and its permissions"
            raise InputError(msg) from None
        except RuntimeError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(1)

    return wrapper


def is_quiet() -> bool:
    """True under ``graded -q``: no progress and no summary lines, only errors."""
    ctx = click.get_current_context(silent=True)
    while ctx is not None:
        if isinstance(ctx.obj, dict) and "quiet" in ctx.obj:
            return bool(ctx.obj["quiet"])
        ctx = ctx.parent
    return False


def echo_json(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2, sort_keys=False))


#: Without a terminal, a progress line is printed when the message changes, or at the
#: latest after this many seconds of unchanged message (a log file or CI shows the build moving).
LINE_INTERVAL_S = 2.0


class ProgressBar:
    """A ``progress(done, total, message)`` callback: a bar in a terminal, lines without one.

    Library functions take such a callback and never print themselves. Everything goes to
    stderr so ``--json`` output on stdout stays clean. In a terminal it is a labelled
    ``click.progressbar`` with the current message beside it; where stderr is not a
    terminal (a log file, CI) it prints ``label [ 40%] message (12.3 s)`` lines whenever the
    message changes (at most every :data:`LINE_INTERVAL_S` for repeats). Under ``graded -q``
    or with ``enabled=False`` nothing is shown. Each message is also logged at INFO.
    """

    def __init__(self, label: str, enabled: bool = True, *, terminal: bool | None = None):
        self.label = label
        self.enabled = enabled and not is_quiet()
        self.terminal = sys.stderr.isatty() if terminal is None else terminal
        self._bar = None
        self._done = 0
        self._t0 = time.perf_counter()
        self._last = (None, -1e9)

    def _line(self, done: int, total: int, message: str) -> None:
        now = time.perf_counter()
        if message == self._last[0] and now - self._last[1] < LINE_INTERVAL_S:
            return
        self._last = (message, now)
        pct = f"[{100 * done / total:3.0f}%] " if total else ""
        click.echo(f"{self.label} {pct}{message} ({now - self._t0:.1f} s)", err=True)

    def __call__(self, done: int, total: int, message: str = "") -> None:
        if message:
            _log.info("%s: %s", self.label, message)
        if not self.enabled:
            return
        if not self.terminal:
            self._line(done, total, message)
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
