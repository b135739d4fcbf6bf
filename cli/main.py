"""The ``graded`` click group.

Commands live one per module and are imported only when invoked, so ``graded --help``
stays fast and a heavy dependency (torch) is loaded only by the commands that need it.
"""

from __future__ import annotations

import importlib
import logging
import warnings

import click

__all__ = ["cli"]

#: command name -> "module:function" inside graded.cli
COMMANDS = {
    "homogenize": "graded.cli.homogenize:homogenize",
    "dataset": "graded.cli.dataset:dataset",
    "train": "graded.cli.train:train",
    "evaluate": "graded.cli.evaluate:evaluate",
    "design": "graded.cli.design:design",
    "build": "graded.cli.build:build",
    "simulate": "graded.cli.simulate:simulate",
}


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Library warnings as one line, ``Warning: <message>``, without Python's file and line."""
    click.echo(f"Warning: {message}", err=True)


def _show_warning_quietly(message, category, filename, lineno, file=None, line=None) -> None:
    """Under ``-q`` warnings are logged (at WARNING, which ``-q`` hides), not printed."""
    logging.getLogger("graded").warning("%s", message)


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return sorted(COMMANDS)

    def get_command(self, ctx, name):
        target = COMMANDS.get(name)
        if target is None:
            return None
        mod, attr = target.split(":")
        try:
            module = importlib.import_module(mod)
        except ModuleNotFoundError as exc:  # a command not built yet
            if exc.name == mod:
                return None
            raise
        return getattr(module, attr)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More log output (repeat for debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors.")
@click.version_option(package_name="graded")
@click.pass_context
def cli(ctx: click.Context, verbose: int, quiet: bool) -> None:
    """graded: functionally graded truss lattices from target stiffness to printable parts."""
    ctx.obj = {"quiet": quiet, "verbose": verbose}
    warnings.showwarning = _show_warning_quietly if quiet else _show_warning
    level = logging.ERROR if quiet else (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("graded").setLevel(level)


if __name__ == "__main__":  # python -m graded.cli.main
    cli()
