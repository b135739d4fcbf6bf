"""Build report: JSON facts plus PNG figures (lattice render, target vs as-built surfaces, summary).

:func:`write_report` takes plain data - the graph, the meshed solid (or its facts), and per
control point the target and the as-built stiffness (FE of the local cell) - and writes into
one directory:

* ``report.json`` - graph and mesh facts, per control point NMSE (main-text Eq. 8) and both
  stiffnesses (21 constants, normalised by E_s), the output files, anything in ``info``;
* ``render.png`` - the triangle mesh, shaded (or the strut graph for meshes above
  :data:`MAX_RENDER_TRIANGLES`, where a polygon plot would take minutes);
* ``surfaces_<point>.png`` - elastic surfaces of target vs as built, per control point;
* ``summary.png`` - graph render coloured by diameter, NMSE per control point, diameter
  histogram and the mesh facts on one page.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .elastic import check_admissible, from_21, nmse, to_21
from .graph import LatticeGraph
from .io.atomic import atomic_path
from .validation import check_finite, fail

__all__ = ["BUILD_REPORT_VERSION", "CONSTANTS_21", "COUNT_MEANINGS", "ERROR_DEFINITIONS", "MAX_RENDER_TRIANGLES",
           "FileSteps", "jsonable", "slug",
           "REPORT_FORMAT", "Report", "build_report", "render_graph", "render_mesh", "write_build_report",
           "write_report"]

#: Above this many triangles the render shows the strut graph instead of the mesh: matplotlib
#: drew 84k shaded triangles in 1.4 s here, so 300k keeps a render within about 5 s.
MAX_RENDER_TRIANGLES = 300_000
REPORT_FORMAT = "graded-build-report"

SurfacePlot = Callable[..., object]


@dataclass
class Report:
    """What :func:`write_report` wrote: ``data`` is the JSON document, ``files`` name -> path."""

    data: dict
    files: dict = field(default_factory=dict)

    @property
    def json_path(self) -> Path:
        return self.files["report"]


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=130)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return path


def _equal_box(ax, lo, hi):
    centre = (lo + hi) / 2
    half = max(float(np.max(hi - lo)) / 2, 1e-9)
    ax.set(xlim=(centre[0] - half, centre[0] + half), ylim=(centre[1] - half, centre[1] + half),
           zlim=(centre[2] - half, centre[2] + half), xlabel="x (mm)", ylabel="y (mm)", zlabel="z (mm)")
    ax.set_box_aspect((1, 1, 1))
    ax.tick_params(labelsize=7)


def _draw_graph(ax, graph: LatticeGraph, fig_width_in: float):
    from matplotlib import colormaps
    from matplotlib.colors import Normalize
    from mpl_toolkits.mplot3d.art3d import Line3DCollection

    segs = graph.nodes[graph.struts]
    lo, hi = graph.bounds()
    span = max(float(np.max(hi - lo)), 1e-9)
    d = graph.diameters
    norm = Normalize(vmin=float(d.min()), vmax=float(max(d.max(), d.min() * (1 + 1e-9))))
    # line width in points proportional to the strut diameter at the plot scale
    widths = np.clip(d / span * fig_width_in * 72 * 0.6, 0.3, 6.0)
    ax.add_collection3d(Line3DCollection(segs, colors=colormaps["viridis"](norm(d)), linewidths=widths))
    _equal_box(ax, lo, hi)
    return norm


def render_graph(graph: LatticeGraph, path, *, title: str | None = None) -> Path:
    """PNG of the strut graph, line width and colour by strut diameter."""
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable

    fig = _figure(6.5, 6.0)
    ax = fig.add_subplot(projection="3d")
    norm = _draw_graph(ax, graph, 6.5)
    fig.colorbar(ScalarMappable(norm=norm, cmap=colormaps["viridis"]), ax=ax, shrink=0.6, label="strut diameter (mm)")
    ax.set_title(title or f"lattice graph: {graph.n_struts} struts", fontsize=10)
    return _save(fig, Path(path))


def render_mesh(vertices: np.ndarray, triangles: np.ndarray, path, *, title: str | None = None) -> Path:
    """PNG of a triangle mesh with simple directional shading (mm axes, equal aspect)."""
    from mpl_toolkits.mplot3d.art3d import Poly3DCollection

    v = np.asarray(vertices, dtype=np.float64)
    t = np.asarray(triangles, dtype=np.int64)
    tri = v[t]
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-300)
    light = np.array([0.4, -0.6, 0.7])
    light /= np.linalg.norm(light)
    shade = 0.35 + 0.65 * np.clip(n @ light, 0.0, 1.0)
    base = np.array([0.55, 0.62, 0.72])
    colours = np.clip(shade[:, None] * base, 0, 1)
    fig = _figure(6.5, 6.0)
    ax = fig.add_subplot(projection="3d")
    ax.add_collection3d(Poly3DCollection(tri, facecolors=colours, edgecolors="none", linewidths=0))
    _equal_box(ax, v.min(axis=0), v.max(axis=0))
    ax.view_init(elev=22, azim=-58)
    ax.set_title(title or f"printable mesh: {len(t)} triangles", fontsize=10)
    return _save(fig, Path(path))


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(name)).strip("_") or "point"


def _stiffness(field_name: str, C) -> np.ndarray:
    arr = check_finite(field_name, C)
    if arr.shape == (21,):
        arr = from_21(arr)
    if arr.shape != (6, 6):
        fail(field_name, f"has shape {arr.shape}, expected (6, 6) or (21,)")
    return check_admissible(arr, field_name)


def jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, (np.floating, float)):
        f = float(obj)
        return f if math.isfinite(f) else None
    if isinstance(obj, (np.integer, np.bool_)):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_report(
    out_dir,
    graph: LatticeGraph,
    *,
    mesh=None,
    facts=None,
    targets: Mapping[str, np.ndarray] | None = None,
    as_built: Mapping[str, np.ndarray] | None = None,
    cells: Mapping[str, np.ndarray] | None = None,
    positions: Mapping[str, np.ndarray] | None = None,
    info: Mapping | None = None,
    outputs: Mapping[str, object] | None = None,
    surface_plot: SurfacePlot | None = None,
    figures: bool = True,
    max_render_triangles: int = MAX_RENDER_TRIANGLES,
) -> Report:
    """Write ``report.json`` and the PNG figures into ``out_dir``.

    Parameters
    ----------
    out_dir : path-like
        Directory (created if missing).
    graph : LatticeGraph
        The graded strut graph (mm).
    mesh : trimesh.Trimesh, optional
        The printable solid; rendered unless larger than ``max_render_triangles``.
    facts : MeshFacts, optional
        Its facts (``graded.mesh.mesh_facts``); computed from ``mesh`` when omitted.
    targets, as_built : mapping of control-point name -> (6, 6) or (21,) stiffness
        Target and as-built (FE of the local cell) stiffness per control point, normalised
        by E_s. Points present in both get an NMSE and a surface figure.
    cells : mapping of name -> (6, 6) or (21,), optional
        Stiffness of the unit cell chosen for the point (explicit or by inverse design),
        drawn with the others and compared with the as-built one (``nmse_cell``). A point
        with a cell but no target uses the cell as its target.
    positions : mapping of name -> (3,) mm, optional
        Control-point positions, recorded in the JSON.
    info : mapping, optional
        Extra JSON-ready data (spec summary, timings, material ...), stored under ``"info"``.
    outputs : mapping of name -> path, optional
        Files the build wrote (STL, 3MF, ...), recorded with their sizes.
    surface_plot : callable(stiffnesses: dict, path, title=...), optional
        Draws the target vs as-built surfaces; default :func:`graded.plot.plot_elastic_surfaces`.
    figures : bool
        Write the PNG figures (False: JSON only).
    max_render_triangles : int

    Returns
    -------
    Report
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    targets = dict(targets or {})
    as_built = dict(as_built or {})
    cells = dict(cells or {})
    positions = dict(positions or {})
    files: dict[str, Path] = {}

    if facts is None and mesh is not None:
        from .mesh.facts import mesh_facts

        facts = mesh_facts(mesh, min_strut_diameter=float(graph.diameters.min()) if graph.n_struts else math.nan)

    points = []
    for name in list(dict.fromkeys([*targets, *cells, *as_built])):
        entry: dict = {"name": str(name)}
        if name in positions:
            entry["position_mm"] = check_finite(f"positions[{name!r}]", positions[name]).reshape(3)
        Ct = _stiffness(f"targets[{name!r}]", targets[name]) if name in targets else None
        Cc = _stiffness(f"cells[{name!r}]", cells[name]) if name in cells else None
        Ca = _stiffness(f"as_built[{name!r}]", as_built[name]) if name in as_built else None
        if Ct is None and Cc is not None:
            Ct, Cc = Cc, None
            entry["target_is_cell"] = True
        if Ct is not None:
            entry["C_target_21"] = to_21(Ct)
        if Cc is not None:
            entry["C_cell_21"] = to_21(Cc)
        if Ca is not None:
            entry["C_asbuilt_21"] = to_21(Ca)
        if Ct is not None and Ca is not None:
            entry["nmse"] = float(nmse(Ct, Ca))
            # Eq. 8 weighs every entry by its own target, so near-zero entries dominate it;
            # the relative Frobenius error of the Voigt matrix is the size-aware companion
            entry["rel_error"] = float(np.linalg.norm(Ct - Ca) / np.linalg.norm(Ct))
        if Cc is not None and Ca is not None:
            entry["nmse_cell"] = float(nmse(Cc, Ca))
        if Ct is not None and Cc is not None:
            entry["nmse_cell_vs_target"] = float(nmse(Ct, Cc))
        points.append((entry, Ct, Ca, Cc))

    d = graph.diameters
    graph_doc = {
        "nodes": graph.n_nodes,
        "struts": graph.n_struts,
        "strut_volume_mm3": graph.strut_volume,
        "diameter_mm": {"min": d.min(), "max": d.max(), "mean": d.mean()} if len(d) else None,
        "length_mm": {"min": graph.lengths.min(), "max": graph.lengths.max()} if len(d) else None,
        "bounds_mm": graph.bounds() if graph.n_nodes else None,
    }
    mesh_doc = facts.to_dict() if facts is not None else None
    if mesh_doc is not None and graph.n_struts:
        # how the solid compares with the graph's node-to-node strut volume (no overlap correction)
        mesh_doc["volume_over_strut_volume"] = facts.volume / graph.strut_volume

    if figures:
        if mesh is not None and len(mesh.faces) <= max_render_triangles:
            files["render"] = render_mesh(mesh.vertices, mesh.faces, out / "render.png")
        elif graph.n_struts:
            files["render"] = render_graph(graph, out / "render.png")
        plot = surface_plot
        if plot is None:
            from .plot import plot_elastic_surfaces as plot
        for entry, Ct, Ca, Cc in points:
            if Ct is None or Ca is None:
                continue
            p = out / f"surfaces_{slug(entry['name'])}.png"
            label = "cell" if entry.get("target_is_cell") else "target"
            surfaces = {label: Ct, "as built": Ca}
            if Cc is not None:
                surfaces = {label: Ct, "designed cell": Cc, "as built": Ca}
            plot(surfaces, p, title=f"{entry['name']}: as built vs {label}: NMSE = {entry['nmse']:.3g}, "
                                    f"relative error = {entry['rel_error']:.1%}")
            entry["surface_png"] = p.name
            files[f"surfaces_{entry['name']}"] = p
        files["summary"] = _summary(out / "summary.png", graph, facts, [p[0] for p in points])

    doc = {
        "format": REPORT_FORMAT,
        "format_version": 1,
        "units": {"length": "mm", "stiffness": "E_s (normalised)"},
        "graph": graph_doc,
        "mesh": mesh_doc,
        "control_points": [p[0] for p in points],
        "outputs": {
            str(k): {"path": str(v), "bytes": Path(v).stat().st_size if Path(v).exists() else None}
            for k, v in (outputs or {}).items()
        },
        "figures": {k: p.name for k, p in files.items()},
        "info": dict(info or {}),
    }
    doc = jsonable(doc)
    path = out / "report.json"
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(doc, indent=2) + "\n")
    files["report"] = path
    return Report(doc, files)


def _summary(path: Path, graph: LatticeGraph, facts, points: list[dict]) -> Path:
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable

    fig = _figure(12.0, 8.0)
    gs = fig.add_gridspec(2, 3, width_ratios=(1.6, 1.0, 1.0), hspace=0.35, wspace=0.35)
    ax = fig.add_subplot(gs[:, 0], projection="3d")
    if graph.n_struts:
        norm = _draw_graph(ax, graph, 5.0)
        fig.colorbar(ScalarMappable(norm=norm, cmap=colormaps["viridis"]), ax=ax, shrink=0.5,
                     label="strut diameter (mm)")
    ax.set_title(f"graded lattice: {graph.n_struts} struts, {graph.n_nodes} nodes", fontsize=10)

    ax = fig.add_subplot(gs[0, 1:])
    named = [p for p in points if "nmse" in p]
    if named:
        vals = [p["nmse"] for p in named]
        floor = 1e-16  # FE round-off: an exact match shows as this
        ax.bar(range(len(vals)), np.maximum(vals, floor), color="C0")
        ax.set_yscale("log")
        ax.set_xticks(range(len(vals)), [p["name"] for p in named], rotation=30, ha="right", fontsize=8)
        for i, v in enumerate(vals):
            ax.text(i, max(v, floor), f"{v:.3g}", ha="center", va="bottom", fontsize=8)
        ax.set_ylabel("NMSE (target vs as built)")
    else:
        ax.text(0.5, 0.5, "no control points with target and as-built stiffness", ha="center", va="center",
                transform=ax.transAxes, fontsize=9)
        ax.set_axis_off()
    ax.set_title("stiffness match per control point (main text Eq. 8)", fontsize=10)

    ax = fig.add_subplot(gs[1, 1])
    if graph.n_struts:
        ax.hist(graph.diameters, bins=30, color="C2")
    ax.set(xlabel="strut diameter (mm)", ylabel="struts")
    ax.set_title("diameters", fontsize=10)

    ax = fig.add_subplot(gs[1, 2])
    ax.set_axis_off()
    if facts is not None:
        rows = [
            ("volume", f"{facts.volume:.4g} mm^3"),
            ("relative density", f"{facts.relative_density:.4f}"),
            ("triangles", f"{facts.triangles:,}"),
            ("watertight", str(facts.watertight)),
            ("is volume", str(facts.is_volume)),
            ("bodies / voids", f"{facts.bodies} / {facts.voids}"),
            ("min strut", f"{facts.min_strut_diameter:.4g} mm"),
            ("strut volume", f"{graph.strut_volume:.4g} mm^3"),
        ]
        ax.table(cellText=[[a, b] for a, b in rows], loc="center", cellLoc="left", colWidths=(0.55, 0.45))
        ax.set_title("mesh facts", fontsize=10)
    else:
        ax.text(0.5, 0.5, "no mesh", ha="center", va="center", transform=ax.transAxes)
    return _save(fig, path)


# ---------------------------------------------------------------------------
# the report of a build (graded.build.BuildResult), schema in docs/report.md
# ---------------------------------------------------------------------------

#: Version of the build report's JSON layout (docs/report.md).
BUILD_REPORT_VERSION = 2

#: Names of the 21 independent constants, in the order of ``to_21``.
CONSTANTS_21 = tuple(f"C{i + 1}{j + 1}" for i in range(6) for j in range(i, 6))

#: What each error in the report means.
ERROR_DEFINITIONS = {
    "rel_error": "relative Frobenius error ||C - C_ref||_F / ||C_ref||_F of the 6x6 Voigt matrices",
    "nmse": "normalised mean squared error of Bastek et al. Eq. 8: sum_ij (C_ij - C_ref_ij)^2 / C_ref_ij^2 over "
            "entries with C_ref_ij != 0",
    "design_vs_target": "the designed cell (FE) against the target",
    "as_built_vs_target": "the as-built local cell (FE of the lattice at the point) against the target",
    "design_mean_vs_target": "spinodoid: the mean FE stiffness of the design's verified cells (its expected "
                             "stiffness) against the target",
    "cell_scatter": "spinodoid: median relative Mandel distance of one verified cell from the mean of the design's "
                    "cells (the realisation scatter of a one-cell window)",
    "as_built_vs_cell": "the as-built local cell against the point's own cell (what the grading changed)",
    "window_vs_local": "apparent stiffness of a window of the real built graph around the point (beam FE, affine "
                       "boundary conditions: an upper bound) against the periodic as-built local cell",
    "phase_fit.residual": "sqrt(int |grad phi - k|^2 / int |k|^2): how far the blended reciprocal basis k(x) is from "
                          "a gradient field (the incompatibility the phase fields cannot follow)",
    "phase_fit.point_basis_error": "|(grad phi)^-1 - A_i|_F / |A_i|_F at each control point: the built lattice basis "
                                   "against the point's own cell basis",
}

#: What each count of the build means (``counts`` in report.json).
COUNT_MEANINGS = {
    "cells": "lattice cells placed (phase-field cells that touch the body)",
    "nodes_placed": "nodes solved through the inverse phase map, before merging",
    "struts_placed": "struts of the placed cells, before any clean-up",
    "struts_in_body": "of those, struts with both ends inside the body",
    "nodes_merged": "nodes merged with a coincident node of a neighbouring cell",
    "struts_negligible": "struts of a cell whose blend weight vanishes there (below 1 % of its diameter), left out",
    "struts_thin": "struts the blend asks for but thinner than min_strut_diameter, dropped (see where)",
    "struts_dangling": "struts removed because one end carried no other strut (cannot carry load)",
    "struts_islands": "struts removed because they were not connected to the main lattice",
    "nodes_dissolved": "2-strut nodes left by removals, joined into one strut",
    "newton_failures": "cell nodes whose inverse phase map did not converge (left out)",
    "grains": "regions built with phase fields of their own (a lattice in grains; see grading.grains)",
    "struts_joining": "struts added across grain boundaries, each replacing struts the boundary cut",
    "nodes_joined": "nodes of two grains merged at a grain boundary",
}


def _in_units(C, unit: str, E: float):
    return None if C is None else (to_21(C) * (E if unit == "GPa" else 1.0))


def _r(x, digits: int = 6):
    """A float for JSON, None for None; values below round-off of the stiffness printed as given."""
    return None if x is None else float(f"{float(x):.{digits}g}")


def _map_doc(m, unit: str, E: float) -> dict | None:
    """The as-built map in the spec's units: summary and every sample."""
    if m is None:
        return None
    scale = E if unit == "GPa" else 1.0
    return {**m.summary(), "reference": "blend of the control points' targets (or own cells)",
            "points_mm": m.points, "moduli_xyz": m.moduli * scale, "error": m.error, "empty": m.empty}


def build_report(result, files: Mapping[str, Path] | None = None) -> dict:
    """The JSON document of a build's report (layout: docs/report.md).

    Parameters
    ----------
    result : graded.build.BuildResult
    files : mapping of name -> final path, optional
        The other outputs of the build.
    """
    spec = result.spec
    E = spec.material.E
    unit = "GPa" if any(c.units == "GPa" for c in result.cells) else "E_s"
    edge = result.grading.cell_edge
    points = []
    for c, ab, dia in zip(result.cells, result.as_built, result.grading.diameters):
        cell = c.cell.to_dict()
        entry = {
            "name": c.name,
            "position_mm": c.position.tolist(),
            "source": c.source,
            "cell": {**cell, "strut_diameter_mm": float(dia), "cell_edge_mm": edge},
            "stiffness": {
                "unit": unit,
                "constants": list(CONSTANTS_21),
                "target": _in_units(c.C_target, unit, E),
                "designed": _in_units(c.C_cell, unit, E),
                "as_built": _in_units(ab.C, unit, E),
            },
            "errors": {
                "design_vs_target": {"rel_error": c.design_error,
                                     "nmse": None if c.C_target is None else float(nmse(c.C_target, c.C_cell))},
                "as_built_vs_target": {"rel_error": ab.error_vs_target, "nmse": ab.nmse_vs_target},
                "as_built_vs_cell": {"rel_error": ab.error_vs_cell, "nmse": ab.nmse_vs_cell},
            },
        }
        if c.design:
            entry["design"] = c.design
        if ab.note:
            entry["note"] = ab.note
        points.append(entry)
    realigned = getattr(result.grading, "realignment", None)
    if realigned is not None:
        for i in realigned.changed:
            # the same struts in space as "cell", written with the basis the phase fields follow
            points[i]["cell_built"] = result.grading.cells[i].to_dict()
            points[i]["built_symmetry"] = realigned.symmetries[i].tolist()
    loop = result.closed_loop
    if loop is not None:
        for entry, pc, built in zip(points, loop.points, result.grading.cells):
            entry["closed_loop"] = {"reference": pc.reference, "allowance": pc.allowance,
                                    "error_before": pc.error_before, "error_after": pc.error_after,
                                    "within": pc.within, "corrections": pc.corrections}
            if pc.corrections:
                entry["cell_built"] = built.to_dict()  # the corrected cell; "cell" is the designed one
    for entry, w in zip(points, result.windows or []):
        if w is not None:
            entry["window_check"] = {"cells": w.cells, "complete": w.complete, "struts": w.n_struts,
                                     "error_vs_local": w.error_vs_local, "error_vs_reference": w.error_vs_reference,
                                     "upper_bound_margin": w.upper_bound_margin,
                                     "as_built_window": _in_units(w.C_window, unit, E)}
    fit = getattr(result.grading.phase, "fit", None)
    g = result.graph
    d = g.diameters
    from .grading.pipeline import stats_dict

    stats = stats_dict(result.lattice.stats)
    counts = {k: {"value": v, "meaning": COUNT_MEANINGS.get(k, "")} for k, v in stats.items()}
    thin_at = result.lattice.stats.thin_at
    if len(thin_at):
        cps = np.array([c.position for c in result.cells], dtype=np.float64)
        dist = np.linalg.norm(thin_at[:, None, :] - cps[None, :, :], axis=2).min(axis=1) / edge
        counts["struts_thin"]["where"] = {
            "bounds_mm": [thin_at.min(axis=0), thin_at.max(axis=0)],
            "nearest_control_point_cells": float(dist.min()),
            "midpoints_mm": thin_at,
            "sampled": len(thin_at) < stats["struts_thin"],
        }
    mesh_doc = None
    if result.solid is not None:
        s = result.solid
        mesh_doc = s.facts.to_dict()
        if g.n_struts:
            mesh_doc["volume_over_strut_volume"] = s.facts.volume / g.strut_volume
        counts["struts_not_meshed"] = {"value": int(len(s.dropped_struts)),
                                       "meaning": "struts the mesher left out as thinner than min_strut_diameter"}
        for k in ("islands_dropped", "fallback_nodes", "fallback_struts"):
            if k in s.stats:
                counts[f"mesh_{k}"] = {"value": s.stats[k], "meaning": {
                    "islands_dropped": "solid pieces cut off by clipping to the body, removed",
                    "fallback_nodes": "joints meshed by the slower exact boolean union instead of a hull",
                    "fallback_struts": "struts meshed by the exact boolean union instead of a stitched tube",
                }[k]}
        for k in ("max_excursion_mm", "skin_mm", "skin_volume_mm3"):
            if k in s.stats:
                mesh_doc[k] = s.stats[k]
    doc = {
        "format": REPORT_FORMAT,
        "format_version": BUILD_REPORT_VERSION,
        "schema": "docs/report.md",
        "spec": spec.source,
        "units": {"length": "mm", "stiffness": unit, "E_GPa": E, "nu": spec.material.nu},
        "definitions": ERROR_DEFINITIONS,
        "settings": {"cell_size_mm": spec.cell_size, "mu": spec.mu, "built_cell_edge_mm": edge, "zeta": spec.zeta,
                     "min_strut_diameter_mm": spec.min_strut_diameter, "seed": spec.seed,
                     "skin_mm": None if spec.skin is None else spec.skin.thickness,
                     "design": spec.design.model_dump()},
        "control_points": points,
        "grading": {
            "blend": {"kind": spec.blend.kind, "width_cells": spec.blend.width, "basis": spec.blend.basis,
                      "zeta": spec.zeta},
            "phase_fit": fit.to_dict() if fit is not None else None,
            "phase_fallback": None if realigned is None else realigned.to_dict(),
            "grains": None if result.grading.grains is None else {
                "groups": [list(g) for g in result.grading.grains.groups],
                "region": "the points nearest to one of the group's control points",
                "joining_struts": result.lattice.stats.extra.get("struts_joining")},
            "closed_loop": None if loop is None else {"rebuilds": loop.rebuilds, "tolerance": loop.tolerance,
                                                      "seconds": loop.time_s, "history": loop.history},
        },
        "graph": {
            "nodes": g.n_nodes,
            "struts": g.n_struts,
            "strut_volume_mm3": g.strut_volume,
            "diameter_mm": {"min": d.min(), "max": d.max(), "mean": d.mean()} if len(d) else None,
            "length_mm": {"min": g.lengths.min(), "max": g.lengths.max()} if len(d) else None,
            "bounds_mm": g.bounds() if g.n_nodes else None,
        },
        "as_built_map": _map_doc(result.as_built_map, unit, E),
        "counts": counts,
        "mesh": mesh_doc,
        "outputs": {str(k): {"path": str(v)} for k, v in (files or {}).items()},
        "timings_s": {k: round(v, 3) for k, v in result.timings.items()},
    }
    return jsonable(doc)


def write_build_report(result, folder, progress=None) -> dict:
    """Write ``report.json``, ``render.png``, ``summary.png`` and ``surfaces_<point>.png`` into ``folder``.

    Parameters
    ----------
    result : graded.build.BuildResult
    folder : path-like
    progress : callable, optional
        ``progress(done, total, message)`` before each figure and before ``report.json``.

    Returns
    -------
    dict
        Key -> path of every file written (``report``, ``render``, ``summary``, ``surfaces_<name>``).
    """
    from .plot import plot_elastic_surfaces

    out = Path(folder)
    doc = build_report(result, result.files)
    written: dict[str, Path] = {}
    solid = result.solid
    m = result.as_built_map
    with_map = m is not None and len(m.points)
    tell = FileSteps(progress, 3 + sum(ab.C is not None for ab in result.as_built) + bool(with_map))
    if solid is not None and solid.mesh is not None and len(solid.mesh.faces) <= MAX_RENDER_TRIANGLES:
        tell("render.png")
        written["render"] = render_mesh(solid.mesh.vertices, solid.mesh.faces, out / "render.png",
                                        title=f"{result.title}, {len(solid.mesh.faces):,} triangles")
    elif result.graph.n_struts:
        tell("render.png")
        written["render"] = render_graph(result.graph, out / "render.png", title=result.title)
    unit = doc["units"]["stiffness"]
    scale = doc["units"]["E_GPa"] if unit == "GPa" else 1.0
    summary_points = []
    for entry, c, ab in zip(doc["control_points"], result.cells, result.as_built):
        ref = c.C_target if c.C_target is not None else c.C_cell
        err = entry["errors"]["as_built_vs_target" if c.C_target is not None else "as_built_vs_cell"]
        if ab.C is not None:
            summary_points.append({"name": c.name, "nmse": err["nmse"]})
            surfaces = {"target": ref * scale} if c.C_target is not None else {}
            surfaces["designed cell"] = c.C_cell * scale
            surfaces["as built"] = ab.C * scale
            p = out / f"surfaces_{slug(c.name)}.png"
            tell(p.name)
            what = "target" if c.C_target is not None else "own cell"
            plot_elastic_surfaces(surfaces, p, unit=unit,
                                  title=f"{c.name}: as built vs {what}: relative error {err['rel_error']:.1%}")
            entry["surface_png"] = p.name
            written[f"surfaces_{slug(c.name)}"] = p
    if with_map:
        from .plot import plot_field_map

        tell("as_built_map.png")
        fields = {f"E_z as built ({unit})": m.moduli[:, 2] * scale, "error vs blended reference (%)": 100 * m.error}
        title = (f"{result.title}: as-built stiffness at {len(m.points)} cells "
                 f"(median error {m.summary()['error_median']:.1%})")
        written["as_built_map"] = plot_field_map(m.points, fields, out / "as_built_map.png", title=title,
                                                 markers=np.array([c.position for c in result.cells]))
    facts = solid.facts if solid is not None else None
    tell("summary.png")
    written["summary"] = _summary(out / "summary.png", result.graph, facts, summary_points)
    doc["figures"] = {k: p.name for k, p in written.items()}
    path = out / "report.json"
    tell(path.name)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(doc, indent=2) + "\n")
    written["report"] = path
    return written


class FileSteps:
    """``progress(done, total, "writing <file>")`` of a report, one call per file it writes.

    Parameters
    ----------
    progress : callable or None
    total : int
        Files the report may write.
    """

    def __init__(self, progress, total: int):
        self.progress, self.total, self.done = progress, total, 0

    def __call__(self, filename: str) -> None:
        if self.progress is not None:
            self.progress(min(self.done, self.total), self.total, f"writing {filename}")
        self.done += 1
