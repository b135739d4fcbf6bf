"""One call from a graded graph to the printable outputs: solid, STL, 3MF, graph files, report.

The build pipeline calls :func:`write_printable` after grading. Everything that can fail
(meshing, checks) runs before the first file is written, and every file is written
atomically, so a failed build leaves earlier outputs untouched.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..graph import LatticeGraph
from .graph_json import write_graph_csv, write_graph_json
from .stl import write_stl
from .threemf import write_3mf
from .vtu import write_vtu

__all__ = ["PrintableOutputs", "write_printable", "write_solid_outputs", "control_point_data", "SOLID_FILES"]


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
    formats: tuple = ("stl", "3mf"),
    beam_lattice: bool = True,
    graph_files: bool = True,
    report: bool = True,
    targets: Mapping[str, np.ndarray] | None = None,
    as_built: Mapping[str, np.ndarray] | None = None,
    cells: Mapping[str, np.ndarray] | None = None,
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
    formats : tuple of {"stl", "3mf"}
        Triangle-mesh files to write.
    beam_lattice : bool
        Also write ``<stem>_beams.3mf`` (3MF beam-lattice extension, with the triangle solid
        as representation mesh).
    graph_files : bool
        Write ``graph.vtu``, ``graph.json`` and ``graph.csv``.
    report : bool
        Write ``report.json`` and the PNG figures (see :func:`graded.report.write_report`).
    targets, as_built, cells, positions, info, surface_plot : passed to the report.
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
    if "stl" in formats:
        files["stl"] = write_stl(out / f"{stem}.stl", v, f)
    if "3mf" in formats:
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
            cells=cells,
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


#: Solid output keys of a build (``outputs.files``) -> file names.
SOLID_FILES = {"stl": "part.stl", "3mf": "part.3mf", "beams": "part_beams.3mf", "report": "report.json"}


def control_point_data(graph: LatticeGraph, nu: float | None = None) -> tuple[dict, dict, dict, dict]:
    """Targets, cell and as-built stiffnesses and positions per control point from ``graph.meta``.

    Reads ``graph.meta["control_points"][i]``: ``position``; ``C_target_21`` (normalised
    target; else the target of the spec file ``graph.meta["spec"]``, divided by E for GPa); ``C_cell_21``, or else ``cell`` (a unit-cell dict, homogenized here with
    Poisson's ratio ``nu``, default ``graph.meta["nu"]`` or 0.3); ``C_as_built_21`` (or
    ``C_asbuilt_21``). Points are named by ``name`` or ``"point <i>"``.

    Returns
    -------
    targets, cells, as_built, positions : dict name -> array
    """
    from ..elastic import from_21

    targets, cells, as_built, positions = {}, {}, {}, {}
    spec = None
    if graph.meta.get("spec") and Path(str(graph.meta["spec"])).is_file():
        try:  # targets are not in the meta: read them from the spec the graph was built from
            from ..spec import load_spec

            spec = load_spec(graph.meta["spec"])
        except Exception:
            spec = None
    if nu is None:
        nu = float(graph.meta.get("nu", spec.material.nu if spec is not None else 0.3))
    for i, cp in enumerate(graph.meta.get("control_points", []) or []):
        if not isinstance(cp, dict):
            continue
        name = str(cp.get("name", f"point {i}"))
        if "position" in cp:
            positions[name] = np.asarray(cp["position"], dtype=np.float64)
        for keys, dest in ((("C_target_21", "C_target"), targets),
                           (("C_cell_21", "C_cell"), cells),
                           (("C_as_built_21", "C_asbuilt_21", "C_as_built", "C_asbuilt"), as_built)):
            for key in keys:
                if cp.get(key) is not None:
                    dest[name] = np.asarray(cp[key], dtype=np.float64)
                    break
        if name not in targets and spec is not None and i < len(spec.control_points):
            target = spec.control_points[i].target
            if target is not None:
                C = np.asarray(target.stiffness, dtype=np.float64)
                C = C if C.shape == (6, 6) else from_21(C)
                targets[name] = C / spec.material.E if target.units == "GPa" else C
        if name not in cells and isinstance(cp.get("cell"), dict):
            from ..unitcell import UnitCell

            C = UnitCell.from_dict(cp["cell"], strict=False).stiffness(nu=nu)
            C[np.abs(C) < 1e-12 * np.abs(C).max()] = 0.0  # FE round-off off the orthotropic pattern
            cells[name] = C
    return targets, cells, as_built, positions


def write_solid_outputs(
    out_dir,
    graph: LatticeGraph,
    files=tuple(SOLID_FILES),
    *,
    min_diameter: float | None = None,
    body=None,
    stem: str = "part",
    info: Mapping | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> dict:
    """The solid-mesh outputs of a build: ``part.stl``, ``part.3mf``, ``part_beams.3mf``, report.

    Made for the build's staged output directory: meshes once (before writing anything),
    writes the requested files into ``out_dir`` and returns ``key -> path`` (the report's
    figures under ``render``, ``summary``, ``surfaces_<point>``). Control-point stiffnesses
    for the report come from ``graph.meta`` (:func:`control_point_data`); the printer
    minimum defaults to ``graph.meta["min_strut_diameter_mm"]``.

    Parameters
    ----------
    out_dir : path-like
    graph : LatticeGraph
    files : iterable of {"stl", "3mf", "beams", "report"}
    min_diameter : float, optional
    body : trimesh.Trimesh, optional
        Closed surface to clip the solid to (islands then dropped).
    stem : str
    info : mapping, optional
        Extra report data; the graph's meta is added under ``"build"``.
    progress : callable(done, total, message), optional
    """
    from ..validation import check_choice

    files = [check_choice("outputs.files", f, SOLID_FILES) for f in files]
    if not files:
        return {}
    if min_diameter is None:
        md = graph.meta.get("min_strut_diameter_mm")
        min_diameter = float(md) if md else None
    targets, cells, as_built, positions = control_point_data(graph)
    extra = {"build": {k: v for k, v in graph.meta.items() if k != "control_points"}}
    extra.update(info or {})
    out = write_printable(
        out_dir,
        graph,
        stem=stem,
        min_diameter=min_diameter,
        body=body,
        formats=tuple(f for f in ("stl", "3mf") if f in files),
        beam_lattice="beams" in files,
        graph_files=False,
        report="report" in files,
        targets=targets,
        as_built=as_built,
        cells=cells,
        positions=positions,
        info=extra,
        progress=progress,
    )
    keep = {"stl": "stl", "3mf": "3mf", "beams": "3mf_beams"}
    written = {k: out.files[v] for k, v in keep.items() if k in files}
    if "report" in files:
        written.update({k: p for k, p in out.files.items() if k not in ("stl", "3mf", "3mf_beams")})
    return written
