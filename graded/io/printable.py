"""One call from a graded graph to the printable outputs: solid, STL, 3MF, graph files, report.

The build pipeline calls :func:`write_printable` after grading. Everything that can fail
(meshing, checks) runs before the first file is written, and every file is written
atomically, so a failed build leaves earlier outputs untouched.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

from ..graph import LatticeGraph
from .graph_json import write_graph_csv, write_graph_json
from .stl import write_stl
from .threemf import write_3mf
from .vtu import write_vtu

__all__ = ["PrintableOutputs", "write_printable"]


@dataclass
class PrintableOutputs:
    """What :func:`write_printable` made: the meshed solid, the files (name -> path), the report."""

    solid: object
    files: dict = field(default_factory=dict)
    report: object | None = None
    seconds: dict = field(default_factory=dict)


def write_printable(
    out_dir,
    graph: LatticeGraph,
    *,
    stem: str = "part",
    min_diameter: float | None = None,
    thin: str = "raise",
    body=None,
    drop_islands: bool | None = None,
    beam_lattice: bool = True,
    graph_files: bool = True,
    report: bool = True,
    targets: Mapping[str, np.ndarray] | None = None,
    as_built: Mapping[str, np.ndarray] | None = None,
    positions: Mapping[str, np.ndarray] | None = None,
    info: Mapping | None = None,
    surface_plot: Callable | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> PrintableOutputs:
    """Mesh ``graph`` and write ``<stem>.stl``, ``<stem>.3mf`` (+ beam lattice), graph files, report.

    Parameters
    ----------
    out_dir : path-like
    graph : LatticeGraph (mm)
    stem : str
        File name stem of the part files.
    min_diameter, thin, body : see :func:`graded.mesh.mesh_graph`
    drop_islands : bool, optional
        Keep only the largest solid; default: True when clipping to a body.
    beam_lattice : bool
        Also write ``<stem>_beams.3mf`` (3MF beam-lattice extension, with the triangle solid
        as representation mesh).
    graph_files : bool
        Write ``graph.vtu``, ``graph.json`` and ``graph.csv``.
    report : bool
        Write ``report.json`` and the PNG figures (see :func:`graded.report.write_report`).
    targets, as_built, positions, info, surface_plot : passed to the report.
    progress : callable(done, total, message), optional

    Returns
    -------
    PrintableOutputs
    """
    from ..mesh import mesh_graph

    out = Path(out_dir)
    tell = progress or (lambda done, total, message: None)
    seconds = {}
    t0 = time.perf_counter()
    tell(0, 4, "meshing the solid")
    solid = mesh_graph(
        graph,
        min_diameter=min_diameter,
        thin=thin,
        body=body,
        drop_islands=(body is not None) if drop_islands is None else drop_islands,
    )
    seconds["mesh"] = time.perf_counter() - t0
    files: dict[str, Path] = {}
    t0 = time.perf_counter()
    tell(1, 4, "writing STL / 3MF")
    v, f = solid.mesh.vertices, solid.mesh.faces
    files["stl"] = write_stl(out / f"{stem}.stl", v, f)
    files["3mf"] = write_3mf(out / f"{stem}.3mf", v, f, name=stem)
    if beam_lattice:
        kept = graph if len(solid.dropped_struts) == 0 else _subgraph(graph, solid.kept_struts)
        files["3mf_beams"] = write_3mf(out / f"{stem}_beams.3mf", v, f, graph=kept, name=stem)
    if graph_files:
        files["vtu"] = write_vtu(out / "graph.vtu", graph)
        files["graph_json"] = write_graph_json(out / "graph.json", graph)
        files["graph_csv"] = write_graph_csv(out / "graph.csv", graph)
    seconds["write"] = time.perf_counter() - t0
    rep = None
    if report:
        from ..report import write_report

        t0 = time.perf_counter()
        tell(2, 4, "writing the report")
        extra = dict(info or {})
        extra.setdefault("mesh_stats", solid.stats)
        extra.setdefault("dropped_struts", int(len(solid.dropped_struts)))
        rep = write_report(
            out,
            graph,
            mesh=solid.mesh,
            facts=solid.facts,
            targets=targets,
            as_built=as_built,
            positions=positions,
            info=extra,
            outputs=files,
            surface_plot=surface_plot,
        )
        seconds["report"] = time.perf_counter() - t0
        files.update({k: p for k, p in rep.files.items()})
    tell(4, 4, "done")
    return PrintableOutputs(solid=solid, files=files, report=rep, seconds=seconds)


def _subgraph(graph: LatticeGraph, struts: np.ndarray) -> LatticeGraph:
    used, inv = np.unique(graph.struts[struts], return_inverse=True)
    return LatticeGraph(graph.nodes[used], inv.reshape(-1, 2), graph.diameters[struts], dict(graph.meta))
