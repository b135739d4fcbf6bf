"""Beam-graph outputs of a build, written all-or-nothing into the output directory.

Files (``outputs.files`` of the spec): ``graph.vtu`` (meshio, diameters as cell data),
``graph.json`` and ``graph.csv`` (nodes and struts), ``graph.png`` (3D preview, line width
and colour by diameter). Everything is first written into a temporary directory next to
the output directory; only when every file is complete are they moved into place
(``os.replace``, one rename per file), so a build that fails halfway leaves the output
directory as it was. This module is the single place the build writes from, so the
solid-mesh writers (``graded.io.write_printable``) can replace or join it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from ..graph import LatticeGraph
from ..validation import ValidationError, check_choice

__all__ = ["GRAPH_FILES", "write_graph_outputs", "write_graph_files", "staged_directory"]

#: output key -> file name
GRAPH_FILES = {"vtu": "graph.vtu", "json": "graph.json", "csv": "graph.csv", "png": "graph.png"}


class staged_directory:
    """Context manager: a temporary sibling of ``out_dir``; on success its files move in.

    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "out"
    >>> with staged_directory(out) as tmp:
    ...     _ = (tmp / "a.txt").write_text("...")
    ...     out.exists()                      # nothing in ``out`` yet
    False
    >>> sorted(p.name for p in out.iterdir())
    ['a.txt']
    """

    def __init__(self, out_dir):
        self.out_dir = Path(out_dir)
        self.tmp: Path | None = None
        self.moved: list[Path] = []

    def __enter__(self) -> Path:
        if self.out_dir.exists() and not self.out_dir.is_dir():
            raise ValidationError("outputs.directory", f"{self.out_dir} exists and is not a directory",
                                  "give a directory path (it is created if missing)")
        self.out_dir.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{self.out_dir.name}-", dir=self.out_dir.parent))
        return self.tmp

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self.out_dir.mkdir(parents=True, exist_ok=True)
                for f in sorted(self.tmp.iterdir()):
                    if f.is_file() and not f.name.startswith(".tmp-"):
                        dest = self.out_dir / f.name
                        os.replace(f, dest)
                        self.moved.append(dest)
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)


def write_graph_outputs(out_dir, graph: LatticeGraph, files=tuple(GRAPH_FILES), *, title: str | None = None) -> dict:
    """Write the beam graph files atomically into ``out_dir``.

    Parameters
    ----------
    out_dir : path-like
        Output directory (created if missing).
    graph : LatticeGraph
    files : iterable of {"vtu", "json", "csv", "png"}
    title : str, optional
        Title of the PNG preview.

    Returns
    -------
    dict
        Output key -> final path.
    """
    files = [check_choice("outputs.files", f, GRAPH_FILES) for f in files]
    with staged_directory(out_dir) as tmp:
        written = write_graph_files(tmp, graph, files, title=title)
    return {k: Path(out_dir) / p.name for k, p in written.items()}


def write_graph_files(directory, graph: LatticeGraph, files=tuple(GRAPH_FILES), *, title: str | None = None) -> dict:
    """Write the beam graph files into an existing (staging) directory; key -> path."""
    from ..io import write_graph_csv, write_graph_json, write_vtu
    from ..report import render_graph

    written = {}
    for key in files:
        path = Path(directory) / GRAPH_FILES[check_choice("outputs.files", key, GRAPH_FILES)]
        if key == "vtu":
            write_vtu(path, graph)
        elif key == "json":
            write_graph_json(path, graph)
        elif key == "csv":
            write_graph_csv(path, graph)
        elif key == "png":
            render_graph(graph, path, title=title)
        written[key] = path
    return written
