"""The output folder of a build, replaced as a whole in one atomic step.

A build writes every file into a staging folder next to the output folder
(``.tmp-<name>-XXXX``), then swaps the two folders with one atomic exchange
(``renameat2(RENAME_EXCHANGE)`` on Linux) and removes the old one. At every moment the
output folder is wholly the old build or wholly the new one; a build killed before the
swap leaves the old folder untouched and its staging folder is removed by the next build.
Where the file system cannot exchange (not Linux, or a file system without it), the swap
is two renames with the old folder parked as ``.old-<name>-XXXX``; the next build puts it
back if the second rename never happened.

Before any work, :func:`open_output_folder` refuses an output folder that is a file, that
cannot be written, that holds files no build wrote, or that contains (or would overwrite)
an input of the build.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..validation import ValidationError

__all__ = ["MARKER", "OutputFolder", "open_output_folder", "exchange_directories"]

#: Written into every output folder: its presence says the folder holds only a build's files
#: (so the next build may replace it whole); it lists them.
MARKER = ".graded-build.json"

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _libc_renameat2():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


def exchange_directories(a, b) -> bool:
    """Atomically swap two existing paths; False where the platform or file system cannot."""
    fn = _libc_renameat2()
    if fn is None:
        return False
    rc = fn(_AT_FDCWD, os.fsencode(str(a)), _AT_FDCWD, os.fsencode(str(b)), _RENAME_EXCHANGE)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _recover(out: Path) -> None:
    """Put back an old output folder parked by an interrupted two-rename swap; drop stale staging."""
    parent = out.parent
    if not parent.is_dir():
        return
    parked = sorted(parent.glob(f".old-{out.name}-*"))
    if parked and not out.exists():
        os.replace(parked[-1], out)
        parked = parked[:-1]
    for p in [*parked, *parent.glob(f".tmp-{out.name}-*")]:
        shutil.rmtree(p, ignore_errors=True)


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


@dataclass
class OutputFolder:
    """A staging folder for a build's files and the output folder it will replace.

    Use :meth:`commit` once every file is written, :meth:`discard` on failure (both idempotent).
    """

    out: Path
    staging: Path
    field: str = "outputs.directory"

    def path(self, name: str) -> Path:
        """Where to write the file ``name`` now (inside the staging folder)."""
        return self.staging / name

    def final(self, name: str) -> Path:
        """Where the file ``name`` will be after :meth:`commit`."""
        return self.out / name

    def commit(self) -> dict:
        """Swap the staging folder in as the output folder; returns ``name -> final path``."""
        names = sorted(p.name for p in self.staging.iterdir() if p.name != MARKER)
        (self.staging / MARKER).write_text(json.dumps({"files": names}, indent=1) + "\n")
        if not self.out.exists():
            os.replace(self.staging, self.out)
        elif exchange_directories(self.staging, self.out):
            shutil.rmtree(self.staging, ignore_errors=True)  # now holds the old build
        else:
            parked = Path(tempfile.mkdtemp(prefix=f".old-{self.out.name}-", dir=self.out.parent))
            parked.rmdir()  # a free name next to the output folder
            os.replace(self.out, parked)
            os.replace(self.staging, self.out)
            shutil.rmtree(parked, ignore_errors=True)
        return {n: self.out / n for n in names}

    def discard(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)


def open_output_folder(out, *, inputs: Iterable = (), field: str = "outputs.directory") -> OutputFolder:
    """Check the output folder before any work and open its staging folder.

    Parameters
    ----------
    out : path-like
        The output folder (created at commit if missing).
    inputs : iterable of path-like
        Files the build reads (spec, body): none may lie inside the output folder, which is
        replaced whole.
    field : str
        How the user names the output folder (``outputs.directory``, or ``--outdir`` on the CLI).

    Raises
    ------
    ValidationError
        The path is a file, holds files no build wrote, contains an input, or is not writable.
    """
    out = Path(out).expanduser().absolute()
    if out.exists() and not out.is_dir():
        raise ValidationError(field, f"{out} exists and is a file, not a folder",
                              "give a folder path (it is created if missing)")
    for p in inputs:
        p = Path(p)
        if _inside(p, out):
            raise ValidationError(field, f"{out} contains the input {p.name}, and a build replaces the whole "
                                  "folder", "write the outputs to another folder, or move the input out of it")
    _recover(out)
    if out.is_dir():
        foreign = sorted(p.name for p in out.iterdir())
        if foreign and not (out / MARKER).is_file():
            shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
            raise ValidationError(field, f"{out} holds files no build wrote ({shown}), and a build replaces "
                                  "the whole folder", "give a new or empty folder, or remove those files")
    parent = out.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".tmp-{out.name}-", dir=parent))
    except (PermissionError, FileExistsError, NotADirectoryError, OSError) as exc:
        raise ValidationError(field, f"cannot write into {parent} ({exc.strerror or exc})",
                              "give a folder you can write to") from None
    os.chmod(staging, 0o777 & ~_umask())
    return OutputFolder(out=out, staging=staging, field=field)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
