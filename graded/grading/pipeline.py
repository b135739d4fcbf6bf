"""The grading stages of a build (DESIGN §3): field and phase, graph, as-built stiffness.

Each stage takes the previous stage's dataclass and returns its own:

* :func:`make_body` (spec -> :class:`Body`) and :func:`check_body` (positions, cell size);
* :func:`prepare` (spec, body, resolved cells -> :class:`Prepared`): blended basis A(x)
  (SI Eq. 15), phase fields (SI Eq. 13);
* :func:`graded.grading.correction.correct` (Prepared, cells -> Prepared, closed-loop
  report): the closed loop, which re-polishes a point's cell where the as-built local cell
  misses what was asked;
* :func:`assemble` (Prepared -> :class:`Lattice`): cells at the minima of tau', nodes
  through the inverse phase map, blended diameters (SI Eq. 16), merge, drop, prune, clip;
* :func:`measure_as_built` (Prepared, cells -> list of :class:`AsBuilt`): FE of the
  as-built local cell at every control point, and :func:`check_windows`, the independent
  check on a window of the real built graph (:mod:`graded.grading.window`).

:func:`graded.build.build` runs them in order (after :func:`graded.cells.resolve_cells`);
:func:`graded.build.build_graph` is the shortcut to the graph alone.

The lattice is anchored with a cell corner at the lower corner of the body's bounding
box (``phi(lo) = 0``), so a box whose edges are multiples of the cell edge is filled with
whole cells. The built cell edge is ``cell_size / mu``; cell diameters are computed for
it, so each control point's relative density is kept.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass

import numpy as np

from ..cells import CellDesign, resolve_cells
from ..elastic.metrics import ROUNDOFF_ZERO, relative_frobenius
from ..fem.phase import PhaseField
from ..graph import LatticeGraph
from ..spec import Spec
from ..topology import reference_graph
from ..unitcell import UnitCell
from ..validation import ValidationError
from .assemble import (
    MERGE_FRACTION,
    AssemblyStats,
    assemble_graph,
    drop_unused_nodes,
    largest_component,
    strut_membership,
)
from .body import Body, box_body, mesh_body
from .compatible import solve_compatible_phase
from .field import GradingField
from .grains import GrainedField, GrainedPhase, join_grains, nearest_group
from .placement import locate_cells
from .symmetry import Realignment, blend_misfit, equivalent_cell, realignments

__all__ = ["AsBuilt", "Lattice", "PhaseFoldError", "Prepared", "FINEST_PRINTABLE", "MAX_PHASE_BOXES", "REALIGN_TRIES",
           "assemble", "check_body",
           "check_printable", "check_windows", "graph_meta", "grading_field", "make_body", "point_references",
           "measure_as_built", "prepare", "prepare_cells", "stats_dict"]

#: Upper bound on the number of small boxes of the phase mesh (six tetrahedra each;
#: ~8 P2 dofs per box). 6,000 boxes factorise in a few seconds on one core; a finer
#: requested spacing is coarsened to stay under it.
MAX_PHASE_BOXES = 6000
#: Built cell volumes more than this factor off the blended basis' volume (either way)
#: mean the phase map cannot follow the blend (see ``_check_phase_map``).
FOLD_RATIO = 5.0
#: Combinations of equivalent cell orientations solved at most when the cells as given
#: cannot be followed (each is one more phase solve). Of the 13 fuzzed specs of
#: tests/fuzzspecs.py they rescued, 10 build with the first, one with the third, two with the fifth.
REALIGN_TRIES = 5


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


def check_body(spec: Spec, body: Body) -> None:
    """Refuse, before any design work, control points outside the body and cells larger than it."""
    points = np.array([cp.position for cp in spec.control_points], dtype=np.float64)
    inside = body.contains(points)
    for i in np.flatnonzero(~inside):
        p = ", ".join(f"{v:g}" for v in points[i])
        lo = ", ".join(f"{v:.4g}" for v in body.lo)
        hi = ", ".join(f"{v:.4g}" for v in body.hi)
        raise spec.error(("control_points", int(i), "position"), f"({p}) mm is outside the body",
                         f"move it inside the body (bounds [{lo}] to [{hi}] mm)")
    from .estimate import check_estimate, estimate_build

    check_estimate(spec, estimate_build(spec, body))
    extent = float(np.min(body.hi - body.lo))
    edge = spec.cell_size / spec.mu
    if edge >= extent:
        raise spec.error(("cell_size",), f"{spec.cell_size:g} mm (built cell edge {edge:g} mm) is not smaller "
                         f"than the body's smallest extent, {extent:.4g} mm",
                         "use a cell_size (or cell_size / mu) of at most a fraction of the body")
    if spec.skin is not None:
        t = spec.skin.thickness
        if t < spec.min_strut_diameter:
            raise spec.error(("skin", "thickness"), f"{t:g} mm is thinner than min_strut_diameter = "
                             f"{spec.min_strut_diameter:g} mm, which the printer cannot make",
                             f"give a skin of at least {spec.min_strut_diameter:g} mm")
        if 2 * t >= extent:
            raise spec.error(("skin", "thickness"), f"{t:g} mm on both sides fills the body's smallest extent, "
                             f"{extent:.4g} mm", f"give a skin thinner than {extent / 2:.4g} mm")


def check_printable(spec: Spec, designs: list[CellDesign]) -> None:
    """Refuse a control point whose own cell has struts thinner than the printer minimum.

    The lattice at a control point is that point's cell; dropping its struts would silently
    build a different (softer, or disconnected) cell there. The strut diameter of a cell grows
    in proportion to the cell edge at fixed rho, so the message gives the cell size that
    prints it.
    """
    mind = spec.min_strut_diameter
    edge = spec.cell_size / spec.mu
    if mind <= 0:
        thinnest = min(d.diameter(edge) for d in designs)
        if thinnest < FINEST_PRINTABLE:
            warnings.warn(f"the thinnest strut at a control point is {thinnest:.3g} mm, below what metal or resin "
                          f"printers make (about {FINEST_PRINTABLE:g} mm) and min_strut_diameter is not set: set it "
                          "to your printer's minimum so the build refuses or drops what cannot be printed",
                          stacklevel=3)
        return
    for d in designs:
        dia = d.diameter(edge)
        if dia < mind:
            need = spec.cell_size * mind / dia
            raise spec.error(("control_points", d.index),
                             f"the cell of {d.name} ({d.cell.topology_string}, rho = {d.cell.rho:.3g}) has struts "
                             f"{dia:.3g} mm thick at cell_size {spec.cell_size:g} mm, thinner than "
                             f"min_strut_diameter = {mind:g} mm",
                             f"use cell_size >= {need:.3g} mm (same rho), a denser cell, or a finer printer")


#: The finest strut (mm) any common additive process makes reliably (micro laser powder bed
#: and high-resolution resin printers reach about 0.1 mm); below it a spec without a printer
#: minimum is warned that its part cannot be printed.
FINEST_PRINTABLE = 0.1


@dataclass
class Prepared:
    """The grading stage: body, cells, blended field and solved phase fields.

    Attributes
    ----------
    spec : Spec
    body : Body
    cells : list of UnitCell
        One per control point, in spec order.
    field : GradingField or GrainedField
        The blended basis A(x) (mm) and the blend weights (per region for a lattice in grains).
    phase : PhaseField or GrainedPhase
        phi_1..3 solved over the padded body box (one set per region for a lattice in grains).
    cell_edge : float
        Built cell edge ``cell_size / mu`` (mm).
    diameters : ndarray, shape (n_points,)
        Strut diameter of each control point's cell at ``cell_edge`` (mm).
    timings : dict
        Seconds and sizes of the phase solve.
    realignment : Realignment or None
        Set where the cells are built in equivalent orientations because the phase fields
        could not follow them as given (:func:`prepare_cells`); ``cells`` are then the
        re-expressed ones.
    """

    spec: Spec
    body: Body
    cells: list[UnitCell]
    field: GradingField
    phase: PhaseField
    cell_edge: float
    diameters: np.ndarray
    timings: dict
    realignment: Realignment | None = None

    @property
    def grains(self) -> GrainedField | None:
        """The regions of a lattice built in grains (:mod:`graded.grading.grains`), else None."""
        return self.field if isinstance(self.field, GrainedField) else None


@dataclass
class Lattice:
    """The graph stage: the graded strut graph and what every clean-up step did."""

    graph: LatticeGraph
    stats: AssemblyStats
    seconds: float


@dataclass
class AsBuilt:
    """The as-built stiffness at a control point (FE of the local periodic cell).

    Attributes
    ----------
    C : ndarray, shape (6, 6), or None
        Normalised by E_s; None where no local cell exists (``note`` says why).
    error_vs_cell, error_vs_target : float or None
        Relative Frobenius error against the point's own cell and against its target.
    nmse_vs_cell, nmse_vs_target : float or None
        Main-text Eq. 8 against the same.
    note : str or None
    """

    C: np.ndarray | None
    error_vs_cell: float | None = None
    error_vs_target: float | None = None
    nmse_vs_cell: float | None = None
    nmse_vs_target: float | None = None
    note: str | None = None


def prepare(spec: Spec, body: Body | None = None, designs: list[CellDesign] | None = None,
            progress=None) -> Prepared:
    """Blend the cells' bases and solve the phase fields (the field-and-phase stage).

    ``body`` and ``designs`` are the results of the earlier stages; when omitted (for
    inspection and tests) they are made here.
    """
    if body is None:
        body = make_body(spec)
        check_body(spec, body)
    if designs is None:
        designs = resolve_cells(spec)
    return prepare_cells(spec, body, [d.cell for d in designs], progress=progress)


def grading_field(spec: Spec, cells: list[UnitCell], indices=None) -> GradingField:
    """The spec's blend (``blend.kind``, ``blend.width``, ``blend.basis``, ``zeta``) of the cells' bases.

    ``indices`` (optional) are the control points the ``cells`` belong to (default: all, in order).
    """
    points = np.array([cp.position for cp in spec.control_points], dtype=np.float64)
    if indices is not None:
        points = points[list(indices)]
    L = spec.cell_size
    bases = np.stack([L * c.basis for c in cells])
    return GradingField(points, bases, spec.zeta, length_scale=L, kind=spec.blend.kind, width=spec.blend.width,
                        basis_blend=spec.blend.basis)


def prepare_cells(spec: Spec, body: Body, cells: list[UnitCell], *, timings: dict | None = None,
                  progress=None) -> Prepared:
    """Blend the given cells' bases and solve the phase fields.

    With interpolating weights the phase fit is weighted towards and constrained at the
    control points (:func:`graded.grading.compatible.solve_compatible_phase`); with the
    SI's Gaussian weights it is the plain least-squares fit of SI Eq. 13.

    Where the phase map cannot follow the blend of the cells as given (it folds over, or
    squashes or swells cells more than :data:`FOLD_RATIO`), the cells are blended in
    equivalent orientations (:mod:`graded.grading.symmetry`: the same struts in space, the
    basis re-expressed by a symmetry of the topology), the combinations of least misfit first,
    at most :data:`REALIGN_TRIES` of them. The first that the phase map follows is built, with
    the control-point constraints kept exact, and recorded (``Prepared.realignment``) and
    warned about. If none does, the lattice is built in grains (:mod:`graded.grading.grains`):
    the fewest groups of control points whose blends can be followed, each over the region
    nearest its points, joined across the boundaries; that is warned about too.
    """
    timings = {} if timings is None else timings
    edge = spec.cell_size / spec.mu
    t1 = time.perf_counter()
    try:
        grading, phase, h = _solve(spec, body, cells, progress, "phase fields")
        realignment = None
    except PhaseFoldError as exc:
        try:
            grading, phase, h, cells, realignment = _realigned(spec, body, cells, exc, progress)
        except PhaseFoldError as again:
            grading, phase, h, cells, realignment = _grained(spec, body, cells, again, progress)
    timings["phase_s"] = time.perf_counter() - t1
    timings["phase_dofs"] = int(phase.coeffs.shape[0])
    timings["phase_spacing_mm"] = float(h)
    diam = np.array([c.diameter(cell_size=edge) for c in cells])
    return Prepared(spec=spec, body=body, cells=list(cells), field=grading, phase=phase, cell_edge=edge,
                    diameters=diam, timings=timings, realignment=realignment)


class PhaseFoldError(ValidationError):
    """The phase map cannot follow the blended lattice (``_check_phase_map``).

    ``finding`` is the problem without the spec line, for the fallback's messages.
    """

    def __init__(self, field: str, problem: str, hint: str | None = None, *, finding: str = ""):
        super().__init__(field, problem, hint)
        self.finding = finding or problem


def _solve(spec: Spec, body: Body, cells: list[UnitCell], progress, message: str, *, indices=None, region=None):
    """Blend ``cells``, check the blend, solve and check the phase fields: (grading, phase, h).

    ``indices``: the control points of ``cells`` (default all); ``region``: ``x (N, 3) -> (N,)
    bool``, where the blend and the phase map must hold (default: the whole body).
    """
    edge = spec.cell_size / spec.mu
    grading = grading_field(spec, cells, indices)
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
    if region is not None:
        samples = samples[region(samples)]
    try:
        grading.check_nondegenerate(samples)
    except ValidationError as exc:
        line = spec.line_of(("control_points",))
        raise ValidationError(exc.field, exc.problem + (f" (line {line})" if line else ""), exc.hint) from None
    if progress:
        progress(0, 1, message)
    phase = solve_compatible_phase(grading, lo, hi, h, order=spec.phase.order, anchor=body.lo, cell_edge=edge,
                                   exact=spec.blend.kind == "interpolating")
    _check_phase_map(spec, body, grading, phase, samples)
    return grading, phase, h


def _realigned(spec: Spec, body: Body, cells: list[UnitCell], refusal: PhaseFoldError, progress, *,
               indices=None, region=None, warn: bool = True):
    """The first fallback of :func:`prepare_cells`: equivalent cells, least misfit first.

    Raises :class:`PhaseFoldError` when no combination can be followed either.
    """
    options = realignments(cells, REALIGN_TRIES)
    for n, (misfit, symmetries) in enumerate(options):
        trial = [equivalent_cell(c, G) for c, G in zip(cells, symmetries)]
        try:
            grading, phase, h = _solve(spec, body, trial, progress,
                                       f"phase fields: equivalent cell orientations, {n + 1} of {len(options)}",
                                       indices=indices, region=region)
        except PhaseFoldError:
            continue
        except ValidationError:  # a blend that degenerates: not a candidate
            continue
        done = Realignment(symmetries=symmetries, misfit_given=blend_misfit(np.stack([c.basis for c in cells])),
                           misfit_built=misfit, tries=n + 1, reason=refusal.finding)
        if warn:
            _warn_realigned(spec, done, phase)
        return grading, phase, h, trial, done
    if not options:
        raise refusal from None
    tried = (f", also with the cells in the {len(options)} equivalent orientations (symmetries of their "
             "topologies) closest to each other")
    exc = spec.error(("control_points",), refusal.finding + tried, refusal.hint)
    raise PhaseFoldError(exc.field, exc.problem, exc.hint, finding=refusal.finding + tried) from None


def _solve_group(spec: Spec, body: Body, cells: list[UnitCell], group: tuple, group_of: np.ndarray, progress):
    """One group of a grained build (:mod:`graded.grading.grains`): its blend, solved over its region.

    Returns (grading, phase, h, cells of the group, realignment or None); raises
    :class:`PhaseFoldError` (or :class:`ValidationError`) where the group cannot be followed.
    """
    points = np.array([cp.position for cp in spec.control_points], dtype=np.float64)
    label = group_of.copy()
    label[list(group)] = -1  # the candidate group's region: nearest point one of its points

    def region(x):
        return nearest_group(x, points, label) == -1

    mine = [cells[i] for i in group]
    message = f"phase fields: grain of points {', '.join(str(i) for i in group)}"
    try:
        grading, phase, h = _solve(spec, body, mine, progress, message, indices=group, region=region)
        return grading, phase, h, mine, None
    except PhaseFoldError as exc:
        return _realigned(spec, body, mine, exc, progress, indices=group, region=region, warn=False)


def _group_labels(groups: list[tuple], k: int) -> np.ndarray:
    """(k,) int64: the index of the group that holds each of the k control points."""
    group_of = np.empty(k, dtype=np.int64)
    for n, g in enumerate(groups):
        group_of[list(g)] = n
    return group_of


def _grained(spec: Spec, body: Body, cells: list[UnitCell], refusal: PhaseFoldError, progress):
    """The last fallback of :func:`prepare_cells`: the lattice in grains (:mod:`graded.grading.grains`).

    Starting from one group per control point (a single cell is always followed), the two
    groups whose union's blend has the least misfit are merged where the union's phase map
    follows it in its region (as given or in equivalent orientations), until no merge is
    followed. The fewest groups found this way are built, each graded smoothly.
    """
    k = len(cells)
    groups = [(i,) for i in range(k)]
    solved = {}
    while len(groups) > 1:
        group_of = _group_labels(groups, k)
        options = sorted(
            ((blend_misfit(np.stack([cells[i].basis for i in groups[a] + groups[b]])), a, b)
             for a in range(len(groups)) for b in range(a + 1, len(groups))), key=lambda t: t[0])
        for _, a, b in options:
            union = tuple(sorted(groups[a] + groups[b]))
            try:
                solved[union] = _solve_group(spec, body, cells, union, group_of, progress)
            except ValidationError:
                continue
            groups = [g for n, g in enumerate(groups) if n not in (a, b)] + [union]
            break
        else:
            break
    if len(groups) == 1:  # cannot happen: the whole blend was refused before
        raise refusal from None
    groups = sorted(groups)
    group_of = _group_labels(groups, k)
    for g in groups:
        if g not in solved:
            solved[g] = _solve_group(spec, body, cells, g, group_of, progress)
    built = list(cells)
    symmetries = np.repeat(np.eye(3, dtype=np.int64)[None], k, axis=0)
    tries, realigned = 0, False
    for g in groups:
        for i, c in zip(g, solved[g][3]):
            built[i] = c
        if solved[g][4] is not None:
            realigned = True
            symmetries[list(g)] = solved[g][4].symmetries
            tries += solved[g][4].tries
    L = spec.cell_size
    points = np.array([cp.position for cp in spec.control_points], dtype=np.float64)
    field = GrainedField(points=points, bases=np.stack([L * c.basis for c in built]), group_of=group_of,
                         groups=tuple(groups), fields=tuple(solved[g][0] for g in groups))
    phase = GrainedPhase(field=field, phases=tuple(solved[g][1] for g in groups))
    realignment = None
    if realigned:
        realignment = Realignment(symmetries=symmetries, misfit_given=blend_misfit(np.stack([c.basis for c in cells])),
                                  misfit_built=blend_misfit(np.stack([c.basis for c in built])), tries=tries,
                                  reason=refusal.finding)
    names = ["+".join(spec.control_points[i].name or f"point {i}" for i in g) for g in groups]
    warnings.warn(f"control_points: {refusal.finding}; the lattice is built in {len(groups)} grains "
                  f"({'; '.join(names)}), "
                  "each graded smoothly over the region nearest its points and joined to its neighbours by struts "
                  "across the boundary, where the stiffness is no control point's: to grade between grains, add "
                  "control points between them or give cells closer in orientation", stacklevel=4)
    return field, phase, solved[groups[0]][2], built, realignment


def _warn_realigned(spec: Spec, done: Realignment, phase: PhaseField) -> None:
    names = [spec.control_points[i].name or f"point {i}" for i in done.changed]
    err = getattr(phase.fit, "point_basis_error", None)
    errors = "" if err is None else "; built basis error at the points " + ", ".join(f"{e:.2g}" for e in err)
    warnings.warn(f"control_points: with the cells as given, {done.reason}; the cell of {', '.join(names)} is "
                  "built in an equivalent orientation (the same struts in space, its basis turned by a symmetry of "
                  f"its topology), which the phase fields follow{errors}", stacklevel=4)


def point_references(designs: list[CellDesign]) -> list[tuple]:
    """What each point asked for: (C_ref, "target" or "cell", design error)."""
    return [(d.C_target, "target", float(d.design_error)) if d.C_target is not None else (d.C_cell, "cell", 0.0)
            for d in designs]


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
        finding = f"the phase fields cannot follow the blended lattice at x = ({where}) mm ({what})"
        exc = spec.error(("control_points",), finding,
                         "blend cells that differ less in orientation, or add intermediate control points")
        raise PhaseFoldError(exc.field, exc.problem, exc.hint, finding=finding)


def _check_grid(lo, hi, spacing):
    n = np.clip(np.ceil((hi - lo) / spacing).astype(np.int64) + 1, 2, 60)
    axes = [np.linspace(lo[a], hi[a], n[a]) for a in range(3)]
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)


def assemble(prep: Prepared, progress=None) -> Lattice:
    """Place the cells and assemble the graded strut graph (the graph stage).

    Raises
    ------
    ValidationError
        No strut fits inside the body, or the printer minimum drops every strut.
    RuntimeError
        No cell could be placed.
    """
    spec = prep.spec
    t1 = time.perf_counter()
    if progress:
        progress(0, 1, "placing cells")
    if prep.grains is not None:
        graph, stats = _assemble_grains(prep, progress)
    else:
        graph, stats = _assemble_region(prep, prep.phase, prep.field.weights, list(range(len(prep.cells))),
                                        prep.body.contains, prep.body.lo, prep.body.hi, progress)
    if stats.struts_in_body == 0:
        raise spec.error(("cell_size",), f"{spec.cell_size:g} mm: no strut fits inside the body",
                         "use a smaller cell_size (or a larger mu) for this body")
    if graph.n_struts == 0:
        raise spec.error(("min_strut_diameter",),
                         f"{spec.min_strut_diameter:g} mm drops every strut (the cells' diameters are "
                         + ", ".join(f"{d:.3g}" for d in prep.diameters) + " mm)",
                         "lower min_strut_diameter, raise rho or use a larger cell_size")
    return Lattice(graph=graph, stats=stats, seconds=time.perf_counter() - t1)


def measure_as_built(prep: Prepared, designs: list[CellDesign], loop=None) -> list[AsBuilt]:
    """FE stiffness of the as-built local cell at every control point, against its cell and target.

    ``loop`` (the closed-loop report of :func:`correct`) holds the FE of the kept state
    already; it is reused, not recomputed.
    """
    known = getattr(loop, "as_built", None) or [None] * len(designs)
    return [_as_built(prep, d, C) for d, C in zip(designs, known)]


def check_windows(prep: Prepared, graph: LatticeGraph, designs: list[CellDesign],
                  as_built: list[AsBuilt] | None = None) -> list:
    """The independent as-built check (:mod:`graded.grading.window`) at every control point.

    ``as_built`` (from :func:`measure_as_built`) gives the periodic local-cell figure the
    window is compared with, so it is not computed again.
    """
    from .window import check_point

    out = []
    local = [ab.C for ab in as_built] if as_built is not None else [None] * len(designs)
    for d, (ref, _, _), C in zip(designs, point_references(designs), local):
        try:
            out.append(check_point(prep, graph, d.index, reference=ref, C_local=C))
        except RuntimeError as exc:
            warnings.warn(f"{d.name}: window check not available: {exc}", stacklevel=3)
            out.append(None)
    return out


def _as_built(prep: Prepared, design: CellDesign, local: np.ndarray | None = None) -> AsBuilt:
    from ..elastic import nmse
    from .local import local_stiffness

    if local is None:
        try:
            local = local_stiffness(prep, design.position, nu=prep.spec.material.nu)
        except RuntimeError as exc:  # nothing printable, or a mechanism, left at this point
            warnings.warn(f"{design.name}: as-built stiffness not available: {exc}", stacklevel=3)
            return AsBuilt(C=None, note=str(exc))
    own = design.C_cell.copy()
    own[np.abs(own) < ROUNDOFF_ZERO * np.abs(own).max()] = 0.0
    out = AsBuilt(C=local, error_vs_cell=float(relative_frobenius(own, local)),
                  nmse_vs_cell=float(nmse(own, local)))
    if design.C_target is not None:
        out.error_vs_target = float(relative_frobenius(design.C_target, local))
        out.nmse_vs_target = float(nmse(design.C_target, local))
    return out


def _assemble_region(prep: Prepared, phase, weights, indices: list, contains, lo, hi, progress):
    """The strut graph of the cells ``indices`` with the given phase fields and blend, inside ``contains``."""
    spec = prep.spec
    cells = locate_cells(phase, spec.mu, lo, hi)
    if len(cells.index) == 0:
        raise RuntimeError("no lattice cell could be placed in the body; check cell_size against the body size")
    own = [prep.cells[i] for i in indices]
    parts = tuple(dict.fromkeys(p for c in own for p in c.topology))
    ref = reference_graph(parts)
    member = strut_membership(ref.membership, ref.parts, [c.topology for c in own])
    return assemble_graph(phase, spec.mu, cells, ref.nodes, ref.struts, member, weights, prep.diameters[indices],
                          contains, cell_edge=prep.cell_edge, min_diameter=spec.min_strut_diameter, progress=progress)


def _assemble_grains(prep: Prepared, progress):
    """A grained lattice (:mod:`graded.grading.grains`): each region's graph, joined across the boundaries."""
    field, body = prep.grains, prep.body
    pad = max(float(np.linalg.norm(b, 2)) for b in field.bases) / prep.spec.mu
    samples = _check_grid(body.lo, body.hi, prep.cell_edge / 2)
    samples = samples[body.contains(samples)]
    label = field.grain_of(samples)
    graphs, cut, total = [], [], AssemblyStats()
    for k, (idx, grading, phase) in enumerate(zip(field.groups, field.fields, prep.phase.phases)):
        mine = samples[label == k]
        if len(mine) == 0:  # a region too thin for the sample grid: no cell of its own
            graphs.append(LatticeGraph(nodes=np.zeros((0, 3)), struts=np.zeros((0, 2), dtype=np.int64),
                                       diameters=np.zeros(0)))
            cut.append(np.zeros(0, dtype=bool))
            continue
        lo, hi = np.maximum(mine.min(axis=0) - pad, body.lo), np.minimum(mine.max(axis=0) + pad, body.hi)

        def contains(x, k=k):
            return body.contains(x) & (field.grain_of(x) == k)

        n = len(field.groups)  # grain k's steps fill the k-th share of the assembly's progress
        tell = None if progress is None else (lambda d, t, m="", k=k, n=n: progress(k * t + d, n * t,
                                                                                  f"grain {k + 1} of {n}: {m}"))
        g, st = _assemble_region(prep, phase, grading.weights, list(idx), contains, lo, hi, tell)
        graphs.append(g)
        cut.append(st.cut)
        for name, value in vars(st).items():
            if isinstance(value, int) and not isinstance(value, bool):
                setattr(total, name, getattr(total, name) + value)
        total.thin_at = np.concatenate([total.thin_at, st.thin_at])
    graph, joints, merged = join_grains(graphs, cut, field, MERGE_FRACTION * prep.cell_edge)
    main = largest_component(graph.struts, graph.n_nodes)
    total.struts_islands += int((~main).sum())
    struts, d = graph.struts[main], graph.diameters[main]
    nodes, struts, _ = drop_unused_nodes(graph.nodes, struts)
    graph = LatticeGraph(nodes=nodes, struts=struts, diameters=d)
    total.extra.update({"grains": len(field.groups), "struts_joining": int(joints), "nodes_joined": int(merged)})
    kept = np.bincount(field.grain_of(graph.nodes), minlength=len(field.groups)) if graph.n_nodes else None
    for k, idx in enumerate(field.groups):
        if kept is not None and kept[k] == 0:
            warnings.warn(f"the grain of control point(s) {', '.join(str(i) for i in idx)} holds no strut joined to "
                          "the rest of the lattice: it was dropped as an island; add control points between the grains "
                          "or give cells closer in orientation", stacklevel=3)
    return graph, total


def graph_meta(spec: Spec, designs: list[CellDesign], prep: Prepared) -> dict:
    """Provenance recorded with the graph (``graph.json``): the cell of every control point."""
    return {
        "spec": spec.source,
        "cell_size_mm": spec.cell_size,
        "built_cell_edge_mm": prep.cell_edge,
        "mu": spec.mu,
        "min_strut_diameter_mm": spec.min_strut_diameter,
        "blend": {"kind": spec.blend.kind, "width_cells": spec.blend.width, "basis": spec.blend.basis},
        "grains": None if prep.grains is None else [list(g) for g in prep.grains.groups],
        "control_points": [
            {"name": d.name, "position": d.position.tolist(), "cell": c.to_dict(), "source": d.source,
             "diameter_mm": float(dia)}
            for d, c, dia in zip(designs, prep.cells, prep.diameters)
        ],
    }


def stats_dict(stats: AssemblyStats) -> dict:
    """The assembly counts as one flat mapping (see ``docs/report.md`` for each count)."""
    out = {k: v for k, v in vars(stats).items() if k not in ("extra", "thin_at", "cut")}
    out.update(stats.extra)
    return out
