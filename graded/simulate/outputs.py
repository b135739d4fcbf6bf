"""Files of a simulation: VTU for ParaView, PNG renders and the ``simulation`` report section."""

from __future__ import annotations

import json
import re
from pathlib import Path

import meshio
import numpy as np

from ..io.atomic import atomic_path
from ..io.vtu import write_vtu

__all__ = ["write_simulation", "MAX_RENDER_STRUTS"]

#: Struts drawn in a PNG render at most (the most stressed are kept); matplotlib's 3D
#: lines cost ~10 us each and more are not visible at 130 dpi anyway.
MAX_RENDER_STRUTS = 40_000


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", name).strip("_") or "case"


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=130)
    FigureCanvasAgg(fig)
    return fig


def _equal(ax, lo, hi):
    c, half = (lo + hi) / 2, max(float(np.max(hi - lo)) / 2, 1e-9)
    ax.set(xlim=(c[0] - half, c[0] + half), ylim=(c[1] - half, c[1] + half), zlim=(c[2] - half, c[2] + half),
           xlabel="x (mm)", ylabel="y (mm)", zlabel="z (mm)")
    ax.set_box_aspect((1, 1, 1))
    ax.tick_params(labelsize=7)


def _render(path: Path, sim, case) -> Path:
    """Two panels: struts coloured by von Mises stress; continuum nodes by displacement magnitude."""
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from mpl_toolkits.mplot3d.art3d import Line3DCollection

    g = sim.graph
    vm = case.strut["von_mises"]
    keep = np.argsort(vm)[-MAX_RENDER_STRUTS:]
    panels = 2 if case.continuum_displacement is not None else 1
    fig = _figure(6.0 * panels, 5.5)
    ax = fig.add_subplot(1, panels, 1, projection="3d")
    norm = Normalize(0.0, float(max(vm.max(), 1e-30)))
    ax.add_collection3d(Line3DCollection(g.nodes[g.struts[keep]], colors=colormaps["inferno"](norm(vm[keep])),
                                         linewidths=0.6))
    lo, hi = g.bounds()
    _equal(ax, lo, hi)
    fig.colorbar(ScalarMappable(norm=norm, cmap=colormaps["inferno"]), ax=ax, shrink=0.6, pad=0.12,
                 label="strut von Mises stress (MPa)")
    ax.set_title(f"{case.name}: lattice, min safety factor {case.lattice['min_safety_factor']:.3g}", fontsize=9)
    if panels == 2:
        ax2 = fig.add_subplot(1, 2, 2, projection="3d")
        P = sim.continuum.points
        umag = np.linalg.norm(case.continuum_displacement, axis=1)
        n2 = Normalize(0.0, float(max(umag.max(), 1e-30)))
        ax2.scatter(P[:, 0], P[:, 1], P[:, 2], c=umag, cmap="viridis", norm=n2, s=2, linewidths=0)
        _equal(ax2, lo, hi)
        fig.colorbar(ScalarMappable(norm=n2, cmap=colormaps["viridis"]), ax=ax2, shrink=0.6, pad=0.12,
                     label="continuum displacement (mm)")
        K = case.comparison.get("stiffness_ratio_continuum_to_lattice") if case.comparison else None
        ax2.set_title(f"{case.name}: continuum" + (f", K_cont / K_lat = {K:.3f}" if K else ""), fontsize=9)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return path


def _lattice_vtu(path: Path, sim) -> Path:
    cell = {}
    for c in sim.cases:
        s = _slug(c.name)
        for key in ("von_mises", "safety_factor", "axial_force", "bending_moment", "torque", "shear_force"):
            v = np.asarray(c.strut[key], dtype=np.float64)
            cell[f"{s}_{key}"] = np.where(np.isfinite(v), v, np.finfo(np.float64).max) if key == "safety_factor" else v
    write_vtu(path, sim.graph, cell_data=cell)
    mesh = meshio.read(path)  # add point data (displacements) to the same file
    for c in sim.cases:
        mesh.point_data[f"{_slug(c.name)}_displacement"] = c.node_displacement
    with atomic_path(path) as tmp:
        meshio.write(tmp, mesh, file_format="vtu", binary=True)
    return path


def _continuum_vtu(path: Path, sim) -> Path:
    m = sim.continuum
    mesh = m.grid.mesh
    nv = mesh.p.shape[1]
    point = {}
    cell = {"stiffness_C33_MPa": [sim.stiffness[:, 2, 2]], "stiffness_C11_MPa": [sim.stiffness[:, 0, 0]]}
    vertex_rows = np.arange(nv)  # vertices come first among the continuum points
    for c in sim.cases:
        s = _slug(c.name)
        point[f"{s}_displacement"] = c.continuum_displacement[vertex_rows]
        cell[f"{s}_von_mises"] = [c.continuum_von_mises]
        cell[f"{s}_stress"] = [c.continuum_stress]
    out = meshio.Mesh(mesh.p.T, [("tetra", mesh.t.T)], point_data=point, cell_data=cell)
    with atomic_path(path) as tmp:
        meshio.write(tmp, out, file_format="vtu", binary=True)
    return path


def write_simulation(sim, out_dir, *, png: bool = True) -> dict:
    """Write ``lattice_fe.vtu``, ``continuum_fe.vtu``, one PNG per case and report.json.

    An existing ``report.json`` in ``out_dir`` (from ``graded build``) keeps its content
    and gets (or replaces) its ``simulation`` section.

    Returns
    -------
    dict
        Output key -> path.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {"lattice_vtu": _lattice_vtu(out / "lattice_fe.vtu", sim)}
    if sim.continuum is not None:
        files["continuum_vtu"] = _continuum_vtu(out / "continuum_fe.vtu", sim)
    if png:
        for c in sim.cases:
            files[f"png_{_slug(c.name)}"] = _render(out / f"simulation_{_slug(c.name)}.png", sim, c)
    rpath = out / "report.json"
    report = {}
    if rpath.is_file():
        try:
            report = json.loads(rpath.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            report = {}
    section = sim.summary()
    section["files"] = {k: str(Path(v).name) for k, v in files.items()}
    report["simulation"] = section
    with atomic_path(rpath) as tmp:
        tmp.write_text(json.dumps(report, indent=2, default=float) + "\n", encoding="utf-8")
    files["report"] = rpath
    return files
