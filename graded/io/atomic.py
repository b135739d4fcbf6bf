"""Atomic file output: write to a temporary file next to the target, then ``os.replace``."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..validation import fail

__all__ = ["atomic_path", "check_suffix"]


def check_suffix(path, suffixes: tuple[str, ...], field: str = "path") -> Path:
    """``path`` as a Path, raising ValidationError unless it ends in one of ``suffixes``."""
    path = Path(path)
    if path.suffix.lower() not in suffixes:
        fail(field, f"{path.name} does not end in {' or '.join(suffixes)}", f"give a {suffixes[0]} file name")
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path in the target's directory; on success move it onto ``path``.

    Readers never see a half-written file, and a failed write leaves the old file intact.
    The file gets the ordinary permissions of a new file (0666 less the umask), not the
    owner-only mode of ``mkstemp``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=suffix or path.suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
