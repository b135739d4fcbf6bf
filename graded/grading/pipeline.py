"""``build_graph(spec)``: the data flow of DESIGN §3 from a spec to a graded strut graph.

spec -> body, one unit cell per control point (explicit, or by inverse design for a
target) -> blended basis A(x) (SI Eq. 15) -> phase fields (SI Eq. 13) -> cells at the
minima of tau' -> nodes through the inverse phase map -> blended diameters (SI Eq. 16)
-> merge, drop, prune, clip -> :class:`graded.graph.LatticeGraph`.

The lattice is anchored with a cell corner at the lower corner of the body's bounding
box (``phi(lo) = 0``), so a box whose edges are multiples of the cell edge is filled with
whole cells. The built cell edge is ``cell_size / mu``; cell diameters are computed for
it, so each control point's relative density is kept.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..fem.phase import PhaseField
from ..graph import LatticeGraph
from ..spec import ControlPoint, Spec, format_path, load_spec, parse_spec
from ..topology import reference_graph
from ..unitcell import UnitCell
from ..validation import ValidationError
from .assemble import AssemblyStats, assemble_graph, strut_membership
from .body import Body, box_body, mesh_body
from .compatible import solve_compatible_phase
from .field import GradingField
from .placement import locate_cells

__all__ = ["build_graph", "resolve_cell", "make_body", "prepare", "prepare_cells", "grading_field", "Prepared",
           "MAX_PHASE_BOXES"]

#: Upper bound on the number of small boxes of the phase mesh (six tetrahedra each;
#: ~8 P2 dofs per box). 6,000 boxes factorise in a few seconds on one core; a finer
#: requested spacing is coarsened to stay under it.
MAX_PHASE_BOXES = 6000
#: Built cell volumes more than this factor off the blended basis' volume (either way)
#: mean the phase map cannot follow the blend (see ``_check_phase_map``).
FOLD_RATIO = 5.0
#: FE stiffness entries below this fraction of the largest count as exact zeros: they are
#: round-off (1e-16) or symmetry zeros blurred by rotations (1e-8), and would dominate an
#: NMSE (main Eq. 8), which divides by the reference entries.
ROUNDOFF_ZERO = 1e-6


def _rebase(exc: ValidationError, spec: Spec, path: tuple) -> ValidationError:
    """Prefix a ValidationError raised for a sub-object with its spec path and line."""
    sub = exc.field
    if sub in ("spec", path[-1]):  # already names the sub-object itself
        sub = ""
    full = format_path(path) + ("." + sub if sub else "")
    line = spec.line_of(path + tuple(sub.split(".")) if sub else path)
    where = f" (line {line})" if line else ""
    return ValidationError(full, exc.problem + where, exc.hint)


def resolve_cell(control_point: ControlPoint, spec: Spec, index: int = 0) -> UnitCell:
    """The unit cell of a control point: the explicit ``cell``, or inverse design of ``target``.

    For a target, :func:`graded.inverse.design` is imported lazily (it pulls in torch) and
    its best FE-verified design is used.

    Raises
    ------
    ValidationError
        Bad cell parameters or target, with the spec path of the control point.
    RuntimeError
        Inverse design is not available in this installation.
    """
    path = ("control_points", index)
    if control_point.cell is not None:
        c = control_point.cell
        try:
            return UnitCell.from_dict(
                {"topology": c.topology, "rho": c.rho, "U": c.U, "V": c.V, "R1": c.R1, "R2": c.R2}
            )
        except ValidationError as exc:
            raise _rebase(exc, spec, path + ("cell",)) from None
    t = control_point.target
    try:
        from ..inverse.design import design as run_design  # lazy: pulls in torch
    except ImportError as exc:
        raise RuntimeError(
            f"{format_path(path)}.target: inverse design is not available ({exc}); "
            "give an explicit cell for this control point instead"
        ) from None
    try:
        results = run_design(
            t.stiffness,
            E=spec.material.E,
            units=t.units,
            cell_size=spec.cell_size / spec.mu,
            seed=spec.seed,
            verify=True,
            # Model draws only, unrefined: library neighbours and polished designs come in
            # arbitrary orientations, and blending cells rotated far apart degenerates the
            # lattice basis (SI Eq. 15 blends bases in real space) -- measured on the bone
            # example. Needs a rotation-aware blend first.
            refine=False,
            n_library=0,
        )
    except ValidationError as exc:
        if exc.field.split(".")[0] in ("target", "stiffness", "units", "E"):
            raise _rebase(exc, spec, path + ("target",)) from None
        # anything else (e.g. no trained weights installed) is not the spec's fault
        raise RuntimeError(f"{format_path(path)}.target: inverse design is not available ({exc}); "
                           "give an explicit cell for this control point instead") from None
    if not results:
        raise RuntimeError(f"{format_path(path)}.target: inverse design returned no cell")
    best = min(results, key=lambda r: r.nmse)
    return best.cell


def make_body(spec: Spec) -> Body:
    """The spec's body: a box, or a closed STL/3MF relative to the spec."""
    if spec.body.box is not None:
        return box_body(spec.body.box.size, spec.body.box.origin)
    try:
        return mesh_body(spec.resolve(spec.body.file), field="body.file")
    except ValidationError as exc:
        line = spec.line_of(("body", "file"))
        where = f" (line {line})" if line else ""
        raise ValidationError(exc.field, exc.problem + where, exc.hint) from None


@dataclass
class Prepared:
    """Everything up to the phase fields (useful for inspection and tests)."""

    spec: Spec
    body: Body
    cells: list[UnitCell]
    field: GradingField
    phase: PhaseField
    cell_edge: float
    timings: dict


def prepare(spec: Spec, progress=None) -> Prepared:
    """Validate against the body, resolve cells, blend the basis, solve the phase fields."""
    t0 = time.perf_counter()
    timings: dict = {}
    body = make_body(spec)
    points = np.array([cp.position for cp in spec.control_points], dtype=np.float64)
    inside = body.contains(points)
    for i in np.flatnonzero(~inside):
        p = ", ".join(f"{v:g}" for v in points[i])
        lo = ", ".join(f"{v:.4g}" for v in body.lo)
        hi = ", ".join(f"{v:.4g}" for v in body.hi)
        raise spec.error(("control_points", int(i), "position"), f"({p}) mm is outside the body",
                         f"move it inside the body (bounds [{lo}] to [{hi}] mm)")
    cells = []
    for i, cp in enumerate(spec.control_points):
        if progress:
            progress(0, 6, f"cell of control point {i}")
        cells.append(resolve_cell(cp, spec, i))
    timings["cells_s"] = time.perf_counter() - t0
    return prepare_cells(spec, body, cells, timings=timings, progress=progress)


def grading_field(spec: Spec, cells: list[UnitCell]) -> GradingField:
    """The spec's blend (``blend.kind``, ``blend.width``, ``blend.basis``, ``zeta``) of the cells' bases."""
    points = np.array([cp.position for cp in spec.control_points], dtype=np.float64)
    L = spec.cell_size
    bases = np.stack([L * c.basis for c in cells])
    return GradingField(points, bases, spec.zeta, length_scale=L, kind=spec.blend.kind, width=spec.blend.width,
                        basis_blend=spec.blend.basis)


def prepare_cells(spec: Spec, body: Body, cells: list[UnitCell], *, timings: dict | None = None,
                  progress=None) -> Prepared:
    """Blend the given cells' bases and solve the phase fields (the part of :func:`prepare` after the cells).

    With interpolating weights the phase fit is weighted towards and constrained at the
    control points (:func:`graded.grading.compatible.solve_compatible_phase`); with the
    SI's Gaussian weights it is the plain least-squares fit of SI Eq. 13.
    """
    timings = {} if timings is None else timings
    edge = spec.cell_size / spec.mu
    grading = grading_field(spec, cells)
    bases = grading.bases

    # phase domain: the body's bounds padded by one (largest) cell so cells straddling
    # the surface see the solved field rather than an extrapolation
    pad = max(float(np.linalg.norm(b, 2)) for b in bases) / spec.mu
    lo, hi = body.lo - pad, body.hi + pad
    h = spec.phase.spacing * edge
    n_boxes = np.prod(np.ceil((hi - lo) / h))
    if n_boxes > MAX_PHASE_BOXES:
        h *= (n_boxes / MAX_PHASE_BOXES) ** (1 / 3)
    # check the blend before solving: where A(x) collapses nothing downstream makes sense
    samples = _check_grid(lo, hi, min(h, edge))
    try:
        grading.check_nondegenerate(samples)
    except ValidationError as exc:
        line = spec.line_of(("control_points",))
        raise ValidationError(exc.field, exc.problem + (f" (line {line})" if line else ""), exc.hint) from None
    if progress:
        progress(1, 6, "phase fields")
    t1 = time.perf_counter()
    phase = solve_compatible_phase(grading, lo, hi, h, order=spec.phase.order, anchor=body.lo, cell_edge=edge,
                                   exact=spec.blend.kind == "interpolating")
    timings["phase_s"] = time.perf_counter() - t1
    _check_phase_map(spec, body, grading, phase, samples)
    timings["phase_dofs"] = int(phase.coeffs.shape[0])
    timings["phase_spacing_mm"] = float(h)
    return Prepared(spec=spec, body=body, cells=list(cells), field=grading, phase=phase, cell_edge=edge,
                    timings=timings)


def _check_phase_map(spec: Spec, body: Body, grading: GradingField, phase: PhaseField, samples: np.ndarray) -> None:
    """Refuse phase fields that fold, squash or swell cells inside the body.

    The built cell volume is ``1 / det(mu grad phi)``, the wanted one ``det A(x) / mu^3``.
    Where the built one is more than :data:`FOLD_RATIO` times off either way, or the map
    folds over (negative volume), the blend asks for a lattice that no phase map can
    follow (strongly non-gradient K(x)): cells would overlap or degenerate.
    """
    x = samples[body.contains(samples)]
    if len(x) == 0:
        return
    # wanted / built volume; 1 where the phase fields follow the blend exactly
    ratio = np.linalg.det(phase.gradient(x)) * np.linalg.det(grading.basis(x))
    score = np.where(ratio <= 0, np.inf, np.maximum(ratio, 1.0 / np.maximum(ratio, 1e-300)))
    k = int(np.argmax(score))
    if score[k] > FOLD_RATIO:
        where = ", ".join(f"{v:.4g}" for v in x[k])
        what = ("the phase map folds over" if ratio[k] <= 0
                else f"built cells have {1.0 / ratio[k]:.3g} x the volume of the blended basis")
        raise spec.error(("control_points",),
                         f"the phase fields cannot follow the blended lattice at x = ({where}) mm ({what})",
                         "blend cells that differ less in orientation, or add intermediate control points")


def _check_grid(lo, hi, spacing):
    n = np.clip(np.ceil((hi - lo) / spacing).astype(np.int64) + 1, 2, 60)
    axes = [np.linspace(lo[a], hi[a], n[a]) for a in range(3)]
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)


def build_graph(spec, progress=None) -> LatticeGraph:
    """Build the graded strut graph of a spec.

    Parameters
    ----------
    spec : Spec, dict, or path to spec.yaml
    progress : callable, optional
        ``progress(done, total, message)``.

    Returns
    -------
    LatticeGraph
        Nodes and struts in mm; ``meta`` holds the cells, counts of every clean-up step
        and timings.
    """
    if isinstance(spec, (str, Path)):
        spec = load_spec(spec)
    elif isinstance(spec, dict):
        spec = parse_spec(spec)
    t0 = time.perf_counter()
    prep = prepare(spec, progress)
    designed = list(prep.cells)
    prep, loop = _closed_loop(prep, progress)
    t1 = time.perf_counter()
    cells = locate_cells(prep.phase, spec.mu, prep.body.lo, prep.body.hi)
    if len(cells.index) == 0:
        raise RuntimeError("no lattice cell could be placed in the body; check cell_size against the body size")
    parts = tuple(dict.fromkeys(p for c in prep.cells for p in c.topology))
    ref = reference_graph(parts)
    member = strut_membership(ref.membership, ref.parts, [c.topology for c in prep.cells])
    diam = np.array([c.diameter(cell_size=prep.cell_edge) for c in prep.cells])
    graph, stats = assemble_graph(
        prep.phase, spec.mu, cells, ref.nodes, ref.struts, member, prep.field.weights, diam,
        prep.body.contains, cell_edge=prep.cell_edge, min_diameter=spec.min_strut_diameter, progress=progress,
    )
    if stats.struts_in_body == 0:
        raise spec.error(("cell_size",), f"{spec.cell_size:g} mm: no strut fits inside the body",
                         "use a smaller cell_size (or a larger mu) for this body")
    if graph.n_struts == 0:
        raise spec.error(("min_strut_diameter",),
                         f"{spec.min_strut_diameter:g} mm drops every strut (the cells' diameters are "
                         + ", ".join(f"{d:.3g}" for d in diam) + " mm)",
                         "lower min_strut_diameter, raise rho or use a larger cell_size")
    prep.timings["graph_s"] = time.perf_counter() - t1
    t2 = time.perf_counter()
    as_built = [_as_built(prep, i, designed[i]) for i in range(len(prep.cells))]
    prep.timings["as_built_s"] = time.perf_counter() - t2
    t3 = time.perf_counter()
    windows = _window_checks(prep, graph, designed)
    prep.timings["window_check_s"] = time.perf_counter() - t3
    prep.timings["total_s"] = time.perf_counter() - t0
    graph.meta = {
        "spec": spec.source,
        "cell_size_mm": spec.cell_size,
        "built_cell_edge_mm": prep.cell_edge,
        "zeta": spec.zeta,
        "mu": spec.mu,
        "min_strut_diameter_mm": spec.min_strut_diameter,
        "control_points": [
            {"position": cp.position, "cell": c.to_dict(), "diameter_mm": float(d), **ab}
            for cp, c, d, ab in zip(spec.control_points, prep.cells, diam, as_built)
        ],
        "stats": _stats_dict(stats),
        "timings": prep.timings,
        **_grading_meta(prep, loop, windows),
    }
    return graph


def _closed_loop(prep: Prepared, progress=None):
    """The spec's closed-loop correction (:mod:`graded.grading.correction`); the loop's time in the timings."""
    from .correction import correct_cells

    opts = prep.spec.closed_loop
    prep, loop = correct_cells(prep, iterations=opts.iterations, tolerance=opts.tolerance, progress=progress)
    prep.timings["closed_loop_s"] = loop.time_s
    return prep, loop


def _window_checks(prep: Prepared, graph: LatticeGraph, designed: list[UnitCell]) -> list:
    """The independent as-built check (:mod:`graded.grading.window`) at every control point."""
    from .correction import reference_stiffness
    from .window import check_point

    out = []
    for i in range(len(prep.cells)):
        ref = reference_stiffness(prep.spec, i, designed[i])[0]
        try:
            out.append(check_point(prep, graph, i, reference=ref))
        except RuntimeError as exc:
            warnings.warn(f"control point {i}: window check not available: {exc}", stacklevel=3)
            out.append(None)
    return out


def _grading_meta(prep: Prepared, loop, windows: list) -> dict:
    """Blend, phase-fit, closed-loop and window-check figures for ``graph.meta`` (JSON-ready)."""
    spec = prep.spec
    return {
        "blend": {"kind": spec.blend.kind, "width_cells": spec.blend.width, "basis": spec.blend.basis},
        "phase_fit": prep.phase.fit.to_dict() if prep.phase.fit is not None else None,
        "closed_loop": loop.to_dict(),
        "window_check": [w.to_dict() if w is not None else None for w in windows],
    }


def _as_built(prep: Prepared, i: int, designed: UnitCell | None = None) -> dict:
    """FE stiffness of the as-built local cell at control point i against its designed cell and target.

    ``designed`` is the cell before the closed-loop correction (default: the current one).
    """
    from ..elastic import from_21, nmse, to_21
    from .local import local_stiffness

    cp = prep.spec.control_points[i]
    nu = prep.spec.material.nu
    try:
        local = local_stiffness(prep, cp.position, nu=nu)
    except RuntimeError as exc:  # nothing printable, or a mechanism, left at this point
        warnings.warn(f"control point {i}: as-built stiffness not available: {exc}", stacklevel=3)
        return {"C_as_built_21": None, "as_built_note": str(exc)}
    own = (prep.cells[i] if designed is None else designed).stiffness(nu=nu)
    own[np.abs(own) < ROUNDOFF_ZERO * np.abs(own).max()] = 0.0
    out = {
        "C_as_built_21": to_21(local).tolist(),
        "nmse_as_built_vs_cell": float(nmse(own, local)),
        # robust companion of the NMSE, which divides by entries that may be ~0
        "frobenius_error_vs_cell": float(np.linalg.norm(local - own) / np.linalg.norm(own)),
    }
    if cp.target is not None:
        C = np.array(cp.target.stiffness, dtype=np.float64)
        C = C if C.shape == (6, 6) else from_21(C)
        if cp.target.units == "GPa":
            C = C / prep.spec.material.E
        out["nmse_as_built_vs_target"] = float(nmse(C, local))
        out["frobenius_error_vs_target"] = float(np.linalg.norm(local - C) / np.linalg.norm(C))
    return out


def _stats_dict(stats: AssemblyStats) -> dict:
    out = {k: v for k, v in vars(stats).items() if k != "extra"}
    out.update(stats.extra)
    return out
