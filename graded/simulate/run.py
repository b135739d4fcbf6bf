"""Whole-part simulation: beam FE of the built lattice against the homogenized continuum.

For every load case of ``spec.loads``:

1. the lattice model: every strut a Timoshenko beam (:mod:`graded.fem.frame`), supports
   and loads on the lattice nodes the regions catch, forces shared by them in proportion
   to their tributary area (:func:`graded.simulate.loads.tributary_weights`);
2. the continuum model: the body meshed by tetrahedra (:mod:`graded.fem.continuum`), each
   with the FE stiffness of the *as-built* local cell of the grading at its centroid
   (:func:`graded.grading.local.local_cell`, sampled on a grid and interpolated), the
   same regions, forces as uniform tractions on the boundary facets they catch.

The apparent stiffness of a case (N/mm) is ``sum |F|^2 / sum F . u_mean`` for force
control (``u_mean``: mean displacement of the loaded region) and
``sum R . g / sum |g|^2`` for displacement control (``R``: reaction of the loaded region,
``g``: prescribed displacement). Their relative difference is the figure of merit of the
grading's scale separation.

Units: mm, N, MPa (the spec's E in GPa is converted).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np

from ..fem.continuum import (
    ContinuumModel,
    continuum_model,
    grid_mesh,
    probe,
    solve_continuum,
    stiffness_matrix,
    traction_load,
)
from ..fem.frame import assemble_frame, solve_frame, strut_end_forces, strut_stresses
from ..graph import LatticeGraph
from ..progress import StageProgress, within
from ..spec import LoadCase, Spec, load_spec, parse_spec
from ..validation import ValidationError
from .loads import (
    BoundaryConditions,
    boundary_conditions,
    region_mask,
    region_tolerance,
    resolve_tolerances,
    tributary_weights,
)

__all__ = ["built_lattice", "cells_across", "simulate", "Simulation", "CaseResult", "stiffness_field", "periodic_share",
           "MESH_CELLS", "MAX_TETS", "FIELD_SAMPLES", "VOID_STIFFNESS", "FRAGMENT_DEGREE"]

_log = logging.getLogger("graded.simulate")

#: Continuum mesh size in built cell edges: the homogenized model cannot resolve
#: anything finer than a cell, P2 elements of one cell already resolve its smooth field.
MESH_CELLS = 1.0
#: Box edges of the continuum grid along the smallest extent of the body, at least
#: (so thin parts are still resolved through their thickness).
MIN_BOXES_ACROSS = 4
#: Cap on continuum tetrahedra (6 per grid box); the mesh is coarsened to stay under it.
MAX_TETS = 150_000
#: Spacing of the stiffness-field samples in built cell edges: the grading changes over
#: about one cell (zeta ~ 0.5), so half a cell resolves it for trilinear interpolation.
FIELD_SPACING = 0.5
#: Cap on the stiffness-field samples (one FE homogenization each, ~1 ms).
FIELD_SAMPLES = 4096
#: Loaded lattice nodes with at most this many struts are reported as surface fragments.
FRAGMENT_DEGREE = 2
#: Stiffness given to continuum points where the lattice has no printable strut (a void
#: of the grading), as a fraction of the mean stiffness of the field: small enough not
#: to carry load, large enough to keep the continuum stiffness matrix non-singular.
VOID_STIFFNESS = 1e-6


#: Shares of ``simulate``'s progress bar: the build (design, grading, meshing is skipped), the
#: continuum (mesh, as-built stiffness field, assembly) and the load cases.
SIMULATE_STAGES = {"build": 60, "continuum": 15, "cases": 25}

@dataclass
class CaseResult:
    """Results of one load case on both models (see :func:`simulate`)."""

    name: str
    lattice: dict
    continuum: dict | None
    comparison: dict | None
    node_displacement: np.ndarray  # (N, 3) lattice nodes, mm
    strut: dict  # per-strut arrays (M,): axial_force, bending_moment, von_mises, safety_factor, ...
    continuum_displacement: np.ndarray | None = None  # (P, 3) at the continuum points
    continuum_stress: np.ndarray | None = None  # (T, 6) MPa
    continuum_von_mises: np.ndarray | None = None  # (T,)


@dataclass
class Simulation:
    """A simulated part: its lattice, its continuum model and every case."""

    graph: LatticeGraph
    cases: list
    continuum: ContinuumModel | None
    stiffness: np.ndarray | None  # (T, 6, 6) MPa per tetrahedron
    info: dict = field(default_factory=dict)

    def summary(self) -> dict:
        """The ``simulation`` section of report.json (JSON-ready)."""
        return {**self.info, "cases": [{"name": c.name, "lattice": c.lattice, "continuum": c.continuum,
                                        "comparison": c.comparison} for c in self.cases]}


def built_lattice(spec: Spec, progress=None):
    """Build the part of a spec (the one call into the build pipeline): a :class:`graded.build.BuildResult`."""
    from ..build import build

    return build(spec, progress)


def periodic_share(nodes: np.ndarray, struts: np.ndarray, lo, hi, tol: float = 1e-6) -> np.ndarray:
    """Share of every strut that the periodic cell counts: ``2^-k`` for a strut lying in k box faces.

    A strut in a face of a block of whole cells belongs to one cell of the block but to two
    periodic cells (four on an edge of the block), so the homogenized stiffness counts half
    (a quarter) of it. Scaling such struts' areas by this share turns the block into the
    truncation of the periodic lattice: the diagnostic that shows the surface layer of a
    block of whole cells (stiffer by O(1/n)) is these struts and nothing else.

    Parameters
    ----------
    nodes : ndarray, shape (N, 3)
        Lattice nodes (mm).
    struts : ndarray of int, shape (M, 2)
    lo, hi : array_like, shape (3,)
        The box (mm).
    tol : float
        Distance (mm) within which a node lies on a face.

    Returns
    -------
    ndarray, shape (M,), float64
        1, 1/2, 1/4 or 1/8.
    """
    x = np.asarray(nodes, dtype=np.float64)[np.asarray(struts, dtype=np.int64)]  # (M, 2, 3)
    k = np.zeros(len(x), dtype=np.int64)
    for ax in range(3):
        for level in (lo[ax], hi[ax]):
            k += np.all(np.abs(x[:, :, ax] - level) <= tol, axis=1)
    return 2.0 ** -k


def stiffness_field(prepared, points: np.ndarray, progress=None) -> np.ndarray:
    """FE stiffness (normalised by E) of the as-built local cell at points (S, 3) -> (S, 6, 6).

    Points whose local cells share one graph are homogenized in one batch. Points where
    the lattice has no printable strut get the zero matrix.
    """
    from ..fem import homogenize
    from ..grading.local import local_cell

    nu = prepared.spec.material.nu
    groups: dict = {}
    void = []
    for k, x in enumerate(points):
        try:
            g, basis, d = local_cell(prepared, x)
        except RuntimeError:  # no printable strut here
            void.append(k)
            continue
        key = (g.bonds.tobytes(), g.offsets.tobytes(), g.nodes.tobytes())
        groups.setdefault(key, (g, [], [], []))
        groups[key][1].append(k)
        groups[key][2].append(basis)
        groups[key][3].append(d)
    out = np.zeros((len(points), 6, 6))
    for i, (g, idx, bases, ds) in enumerate(groups.values()):
        out[idx] = homogenize(g, np.stack(bases), np.stack(ds), E=1.0, nu=nu)
        if progress:
            progress(i + 1, len(groups), "as-built stiffness field")
    return out


def _grid_size(lo, hi, cell_edge: float, h: float | None) -> float:
    ext = hi - lo
    if h is None:
        h = min(MESH_CELLS * cell_edge, float(ext.min()) / MIN_BOXES_ACROSS)
    n_boxes = float(np.prod(np.ceil(ext / h)))
    if 6 * n_boxes > MAX_TETS:
        h *= (6 * n_boxes / MAX_TETS) ** (1 / 3)
    return h


def _apparent(bc: BoundaryConditions, work: list, reactions: list) -> float | None:
    """Apparent stiffness (N/mm) from per-region works (force control) or reactions (displacement)."""
    if all(f is not None for f in bc.forces):
        num = sum(float(f @ f) for f in bc.forces)
        den = sum(work)
        return num / den if den > 0 else None
    if all(g is not None for g in bc.displacements):
        gs = [np.nan_to_num(g) for g in bc.displacements]
        return sum(float(R @ g) for R, g in zip(reactions, gs)) / sum(float(g @ g) for g in gs)
    return None


def _case_axis(case: LoadCase, body) -> tuple | None:
    """(axis, length, area) when a case loads one box face against the opposite fixed face."""
    if body.mesh is not None or len(case.loaded) != 1 or case.loaded[0].face is None:
        return None
    face = case.loaded[0].face
    opposite = face[0] + ("-" if face[1] == "+" else "+")
    if not any(s.face == opposite for s in case.fixed):
        return None
    ax = "xyz".index(face[0])
    ext = body.hi - body.lo
    return ax, float(ext[ax]), float(np.prod(np.delete(ext, ax)))


def _lattice_case(graph, K, case, i, spec, body, edge, E, nu, sy, solver, progress):
    bc = boundary_conditions(case, i, graph.nodes, body.lo, body.hi, edge, spec=spec)
    N = graph.n_nodes
    f = np.zeros((N, 6))
    for item, idx, F in zip(case.loaded, bc.loaded_points, bc.forces):
        if F is not None:
            w = tributary_weights(item, graph.nodes[idx], body.lo, body.hi, edge)
            np.add.at(f[:, :3], idx, w[:, None] * F[None, :])
    res = solve_frame(graph.nodes, graph.struts, graph.diameters, E=E, nu=nu,
                      prescribed=6 * bc.fixed_points + bc.fixed_components, values=bc.fixed_values,
                      forces=f, solver=solver, progress=progress, stiffness=K)
    u = res.displacement[:, :3]
    ends = strut_end_forces(graph.nodes, graph.struts, graph.diameters, res.displacement, E, nu)
    st = strut_stresses(graph.nodes, graph.struts, graph.diameters, ends)
    with np.errstate(divide="ignore"):
        st["safety_factor"] = np.where(st["von_mises"] > 0, sy / np.maximum(st["von_mises"], 1e-300), np.inf)
    work = [float(np.sum(f[idx, :3] * u[idx])) for idx in bc.loaded_points]
    reac = [res.reaction[idx, :3].sum(axis=0) for idx in bc.loaded_points]
    K = _apparent(bc, work, reac)
    # loaded nodes that hold two struts or fewer: fragments of cells cut by the body, which a
    # force bends rather than passes on (their share of the work is local compliance)
    degree = np.bincount(graph.struts.reshape(-1), minlength=N)
    frag = [idx[degree[idx] <= FRAGMENT_DEGREE] for idx in bc.loaded_points]
    frag_work = sum(float(np.sum(f[i, :3] * u[i])) for i in frag)
    applied = f[:, :3].sum(axis=0)
    support = res.reaction[:, :3].sum(axis=0)
    scale = max(float(np.linalg.norm(applied)), float(np.abs(res.reaction[:, :3]).sum()) / 2, 1e-300)
    worst = int(np.argmax(st["von_mises"]))
    summary = {
        "region_tolerance_mm": {"fixed": [r.tolerance for r in case.fixed],
                                "loaded": [r.tolerance for r in case.loaded]},
        "solver": res.solver, "iterations": res.iterations, "residual": res.residual,
        "seconds": {k: round(v, 3) for k, v in res.timings.items()},
        "apparent_stiffness_N_per_mm": K,
        "applied_force_N": applied.tolist(),
        "reaction_force_N": support.tolist(),
        "force_balance": float(np.linalg.norm(applied + support) / scale),
        "max_displacement_mm": float(np.linalg.norm(u, axis=1).max()),
        "max_von_mises_MPa": float(st["von_mises"][worst]),
        "min_safety_factor": float(st["safety_factor"][worst]),
        "worst_strut": worst,
        "struts_yielding": int(np.sum(st["safety_factor"] < 1.0)),
        "max_axial_force_N": float(np.abs(st["axial_force"]).max()),
        "max_bending_moment_Nmm": float(st["bending_moment"].max()),
        "loaded_fragment_nodes": int(sum(len(i) for i in frag)),
        "fragment_work_share": frag_work / sum(work) if sum(work) > 0 else 0.0,
    }
    return bc, summary, u, st


def _continuum_case(model, Cel, Kc, case, i, spec, body, edge, sy, solver):
    P = model.points
    bc = boundary_conditions(case, i, P, body.lo, body.hi, edge, spec=spec, what="continuum mesh node")
    prescribed = model.dofs[bc.fixed_points, bc.fixed_components]
    load = np.zeros(model.n_dofs)
    mesh = model.grid.mesh
    bfac = mesh.boundary_facets()
    mids = mesh.p[:, mesh.facets[:, bfac]].mean(axis=1).T
    for k, (item, F) in enumerate(zip(case.loaded, bc.forces)):
        if F is None:
            continue
        tol = region_tolerance(item, edge)
        fac = bfac[region_mask(item, mids, body.lo, body.hi, tol)]
        if len(fac) == 0:
            raise spec.error(("loads", "cases", i, "loaded", k), "the region catches no boundary face of the "
                             "continuum mesh, so its force has no surface to act on",
                             "put force regions on the surface of the part")
        p = mesh.p[:, mesh.facets[:, fac]]  # (3, 3 corners, F)
        area = 0.5 * np.linalg.norm(np.cross((p[:, 1] - p[:, 0]).T, (p[:, 2] - p[:, 0]).T), axis=1).sum()
        load += traction_load(model, fac, F / area)
    res = solve_continuum(model, Cel, prescribed=prescribed, values=bc.fixed_values, load=load, solver=solver,
                          stiffness=Kc)
    u = res.displacement
    fn = load[model.dofs]
    work = [float(np.sum(fn[idx] * u[idx])) for idx in bc.loaded_points]
    reac = [res.reaction[idx].sum(axis=0) for idx in bc.loaded_points]
    K = _apparent(bc, work, reac)
    applied = fn.sum(axis=0)
    support = res.reaction.sum(axis=0)
    scale = max(float(np.linalg.norm(applied)), float(np.abs(res.reaction).sum()) / 2, 1e-300)
    summary = {
        "solver": res.solver, "iterations": res.iterations,
        "seconds": {k: round(v, 3) for k, v in res.timings.items()},
        "dofs": model.n_dofs, "tetrahedra": int(mesh.t.shape[1]),
        "apparent_stiffness_N_per_mm": K,
        "applied_force_N": applied.tolist(),
        "reaction_force_N": support.tolist(),
        "force_balance": float(np.linalg.norm(applied + support) / scale),
        "max_displacement_mm": float(np.linalg.norm(u, axis=1).max()),
        "max_von_mises_MPa": float(res.von_mises.max()),
    }
    return summary, res


def simulate(
    spec_or_path,
    progress=None,
    *,
    built=None,
    continuum: bool = True,
    mesh_size: float | None = None,
    order: int = 2,
    solver: str = "auto",
) -> Simulation:
    """Run every load case of a spec on the built lattice and on the homogenized continuum.

    Parameters
    ----------
    spec_or_path : Spec, dict or path of a spec.yaml
        Must have a ``loads`` section.
    progress : callable, optional
        ``progress(done, total, message)``.
    built : graded.build.BuildResult, optional
        The built part of this spec (default: build it); its graph, body and grading are used
        as they are, nothing is built twice.
    continuum : bool
        Also solve the homogenized continuum model.
    mesh_size : float, optional
        Continuum grid box edge (mm); default one built cell edge (at least
        :data:`MIN_BOXES_ACROSS` boxes across the thinnest extent, at most :data:`MAX_TETS`).
    order : {1, 2}
        Continuum displacement interpolation.
    solver : {"auto", "direct", "amg"}

    Returns
    -------
    Simulation

    Raises
    ------
    ValidationError
        No ``loads`` section, regions that catch no node, unit mistakes, load cases that
        leave a rigid-body mode free.
    """
    if isinstance(spec_or_path, dict):
        spec = parse_spec(spec_or_path)
    elif isinstance(spec_or_path, Spec):
        spec = spec_or_path
    else:
        spec = load_spec(spec_or_path)
    if spec.loads is None:
        raise ValidationError("loads", "is missing: there is nothing to simulate",
                              "add a loads: section with yield_strength and at least one case")
    if mesh_size is not None and not mesh_size > 0:
        raise ValidationError("mesh_size", f"{mesh_size!r} must be > 0 mm", "give a positive mesh size in mm")
    t0 = time.perf_counter()
    stage = StageProgress(progress, SIMULATE_STAGES if continuum else {"build": 70, "cases": 30})
    if built is None:
        tell = stage("build")
        built = built_lattice(spec, None if tell is None else
                              (lambda d, t, m="": tell(d, t, "part built" if m == "done" else m)))
    graph, body = built.graph, built.body
    edge = spec.cell_size / spec.mu
    E = spec.material.E * 1000.0  # GPa -> MPa (N/mm^2)
    nu = spec.material.nu
    sy = spec.loads.yield_strength
    if sy >= E:
        raise spec.error(("loads", "yield_strength"), f"{sy:g} MPa is not below E = {E:g} MPa",
                         "give the yield strength in MPa (and material.E in GPa)")
    info: dict = {"struts": graph.n_struts, "nodes": graph.n_nodes, "units": {"length": "mm", "force": "N",
                                                                                  "stress": "MPa"},
                  "yield_strength_MPa": sy, "cells_across": cells_across(built.grading, body)}
    model = Cel = Kc = None
    if continuum:
        tell = stage("continuum") or (lambda d, t, m="": None)
        t1 = time.perf_counter()
        h = _grid_size(body.lo, body.hi, edge, mesh_size)
        keep = None if body.mesh is None else body.contains
        tell(0, 4, "continuum: meshing the body")
        grid = grid_mesh(body.lo, body.hi, h, keep=keep)
        tell(1, 4, f"continuum: {grid.mesh.t.shape[1]:,} tetrahedra of order {order}")
        model = continuum_model(grid, order)
        Cel = E * _element_stiffness(built.grading, grid, edge, within(tell, 1, 4) if progress else None)
        t2 = time.perf_counter()
        tell(3, 4, "continuum: assembling")
        Kc = stiffness_matrix(model, Cel)  # one assembly for every case
        info["continuum"] = {"mesh_size_mm": float(h), "order": order, "tetrahedra": int(grid.mesh.t.shape[1]),
                             "dofs": model.n_dofs, "setup_s": round(t2 - t1, 3),
                             "assemble_s": round(time.perf_counter() - t2, 3)}
    cases = []
    n_cases = len(spec.loads.cases)
    t3 = time.perf_counter()
    K = assemble_frame(graph.nodes, graph.struts, graph.diameters, E, nu)  # one assembly for every case
    info["lattice_assemble_s"] = round(time.perf_counter() - t3, 3)
    cases_stage = stage("cases")
    for i, case in enumerate(spec.loads.cases):
        tell = None if cases_stage is None else within(cases_stage, i, n_cases)
        if tell:
            tell(0, 2, f"case {case.name}: lattice")
        case = resolve_tolerances(case, graph.nodes, body.lo, body.hi, edge)
        try:
            bc, lat, u, st = _lattice_case(graph, K, case, i, spec, body, edge, E, nu, sy, solver,
                                           None if tell is None else _labelled(within(tell, 0, 2), case.name))
        except ValueError as exc:
            if isinstance(exc, ValidationError) or not str(exc).startswith("supports:"):
                raise
            raise spec.error(("loads", "cases", i, "fixed"), f"case {case.name!r} is under-constrained: "
                             + str(exc).removeprefix("supports: "),
                             "fix more components (x, y, z) or more regions so the part cannot move or turn") from None
        axis = _case_axis(case, body)
        if axis is not None and lat["apparent_stiffness_N_per_mm"] is not None:
            lat["apparent_modulus_MPa"] = lat["apparent_stiffness_N_per_mm"] * axis[1] / axis[2]
        cont = comp = None
        cu = cs = cvm = None
        if continuum:
            if tell:
                tell(1, 2, f"case {case.name}: continuum")
            cont, cres = _continuum_case(model, Cel, Kc, case, i, spec, body, edge, sy, solver)
            if axis is not None and cont["apparent_stiffness_N_per_mm"] is not None:
                cont["apparent_modulus_MPa"] = cont["apparent_stiffness_N_per_mm"] * axis[1] / axis[2]
            cu, cs, cvm = cres.displacement, cres.stress, cres.von_mises
            comp = _compare(lat, cont, model, cres.u, graph.nodes, u)
        cases.append(CaseResult(case.name, lat, cont, comp, u, st, cu, cs, cvm))
    info["seconds"] = round(time.perf_counter() - t0, 3)
    stage.finish()
    return Simulation(graph, cases, model, Cel, info)


def cells_across(prepared, body) -> float:
    """How many cells the body's thinnest extent holds: the scale separation of a part.

    The cell size is that of the largest built cell of the control points, as the edge of the
    cube of its volume (``|det(edge * basis)|^(1/3)``, mm): the designs stretch the reference
    cube, so ``cell_size`` alone overstates the count (the main job's 3 mm cubes are built as
    6-7.6 mm cells).
    """
    size = max(abs(float(np.linalg.det(prepared.cell_edge * np.asarray(c.basis)))) ** (1.0 / 3.0)
               for c in prepared.cells)
    return float(np.min(body.hi - body.lo) / size)


def _labelled(progress, name: str):
    """``progress`` with the case's name before each message (the solver's CG iterations)."""
    return lambda d, t, m="": progress(d, t, f"case {name}: {m}" if m else "")


def _compare(lat: dict, cont: dict, model, ucoef, nodes, u_lat) -> dict:
    Kl, Kc = lat["apparent_stiffness_N_per_mm"], cont["apparent_stiffness_N_per_mm"]
    uc, found = probe(model, ucoef, nodes)
    diff = u_lat[found] - uc[found]
    ref = np.linalg.norm(uc[found])
    return {
        "stiffness_ratio_continuum_to_lattice": (Kc / Kl) if (Kl and Kc) else None,
        "stiffness_difference": (abs(Kc - Kl) / abs(Kl)) if (Kl and Kc) else None,
        "displacement_difference": float(np.linalg.norm(diff) / ref) if ref > 0 else None,
        "nodes_compared": int(found.sum()),
    }


def _element_stiffness(prep, grid, edge: float, progress) -> np.ndarray:
    """Normalised stiffness of every tetrahedron: the as-built field sampled on a grid, trilinear."""
    from scipy.interpolate import RegularGridInterpolator

    lo, hi = grid.lo, grid.lo + grid.h * np.array(grid.shape)
    n = np.maximum(2, np.ceil((hi - lo) / (FIELD_SPACING * edge)).astype(int) + 1)
    if np.prod(n) > FIELD_SAMPLES:
        n = np.maximum(2, (n * (FIELD_SAMPLES / np.prod(n)) ** (1 / 3)).astype(int))
    axes = [np.linspace(lo[k], hi[k], n[k]) for k in range(3)]
    X = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    C = stiffness_field(prep, X, progress).reshape(*n, 36)
    centroids = grid.mesh.p[:, grid.mesh.t].mean(axis=1).T
    interp = RegularGridInterpolator(axes, C, method="linear", bounds_error=False, fill_value=None)
    Ce = interp(centroids).reshape(-1, 6, 6)
    Ce = 0.5 * (Ce + np.swapaxes(Ce, 1, 2))
    diag = np.diagonal(Ce, axis1=1, axis2=2)
    floor = VOID_STIFFNESS * float(np.mean(np.abs(diag)))
    void = diag.min(axis=1) < floor  # no lattice there: a token stiffness keeps K regular
    Ce[void] += floor * np.eye(6)
    return Ce
