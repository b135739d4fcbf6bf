"""The beam graph as VTK unstructured grid (.vtu, meshio): lines with diameters as cell data."""

from __future__ import annotations

from pathlib import Path

import meshio
import numpy as np

from ..graph import LatticeGraph
from .atomic import atomic_path, check_suffix

__all__ = ["write_vtu", "read_vtu"]


def write_vtu(path, graph: LatticeGraph, *, cell_data: dict | None = None) -> Path:
    """Write ``graph`` as VTU: points = nodes (mm), ``line`` cells = struts.

    Cell data: ``diameter`` (mm), ``radius`` (mm), ``length`` (mm), plus any extra
    ``cell_data`` arrays of shape (M,). Readable by ParaView and FE pre-processors.
    """
    path = check_suffix(path, (".vtu",))
    data = {
        "diameter": [graph.diameters],
        "radius": [graph.diameters / 2.0],
        "length": [graph.lengths],
    }
    for key, val in (cell_data or {}).items():
        data[key] = [np.asarray(val)]
    mesh = meshio.Mesh(points=graph.nodes, cells=[("line", graph.struts)], cell_data=data)
    with atomic_path(path) as tmp:
        meshio.write(tmp, mesh, file_format="vtu", binary=True)
    return path


def read_vtu(path) -> LatticeGraph:
    """Read a graph written by :func:`write_vtu` back (diameters from cell data)."""
    mesh = meshio.read(path)
    lines = [c for c in mesh.cells if c.type == "line"]
    idx = [i for i, c in enumerate(mesh.cells) if c.type == "line"]
    if not lines:
        raise ValueError(f"{path}: no line cells")
    struts = np.concatenate([c.data for c in lines])
    diam = np.concatenate([mesh.cell_data["diameter"][i] for i in idx])
    return LatticeGraph(np.asarray(mesh.points, dtype=np.float64), struts, diam, {"source": str(path)})
