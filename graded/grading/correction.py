"""Closed-loop correction of the control points' cells against their as-built stiffness.

After the cells are blended and the phase fields solved, the lattice at control point
``i`` is the as-built local cell of :mod:`graded.grading.local` (phase-field basis,
superposed topology, blended diameters), not necessarily cell ``i`` itself: the blend may
leave weight on the other points (Gaussian weights), and the phase fields may miss the
point's basis (a plain least-squares fit of an incompatible field). The loop

1. measures every point's as-built stiffness ``C_ab,i`` and its relative Frobenius error
   against what was asked: the target (then the allowance is the cell's own design error
   against it, plus ``tolerance``) or, for an explicit cell, that cell's stiffness
   (allowance ``tolerance``);
2. for every point over its allowance, re-optimises the cell's continuous parameters
   (``rho``, ``U``, ``V``, ``R_I``, ``R_II``; topology fixed) with the Levenberg-Marquardt FE
   polish of design (:func:`graded.inverse.polish.polish_designs`), whose FE is here the
   as-built local cell of the trial cell: the blend at the point is recomputed with the
   trial cell and the phase fields' departure from the blend, ``D = A_phase A_blend^-1``,
   is held at its last solved value;
3. re-solves the phase fields with the corrected cells and goes back to 1, at most
   ``iterations`` times. The best state seen (smallest worst excess over the allowances)
   is kept.

With the interpolating blend and its constrained phase fields the as-built local cell is
the point's own cell to round-off, so the loop measures and stops; it corrects the
Gaussian blend of the SI, or any state in which the model and the point disagree.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np

from ..cells import CellDesign
from ..elastic import from_21, rotate_voigt
from ..fem import homogenize
from ..unitcell import UnitCell
from .local import local_stiffness, superposed_local_cell
from .pipeline import Prepared, grading_field, point_references, prepare_cells

__all__ = ["PointCorrection", "ClosedLoopReport", "correct", "correct_cells", "reference_stiffness",
           "relative_frobenius", "POLISH_ITERATIONS"]

#: Levenberg-Marquardt iterations of one re-optimisation (each 11 local-cell FE solves
#: plus trial steps); the polish of design converges in a handful from a good start.
POLISH_ITERATIONS = 8


def relative_frobenius(C: np.ndarray, ref: np.ndarray) -> float:
    """``|C - ref|_F / |ref|_F`` (the as-built error of the report)."""
    return float(np.linalg.norm(np.asarray(C) - ref) / np.linalg.norm(ref))


def reference_stiffness(spec, index: int, cell: UnitCell) -> tuple[np.ndarray, str, float]:
    """What control point ``index`` asked for: ``(C_ref (6, 6) normalised, kind, design_error)``.

    ``kind`` is ``"target"`` (``design_error``: the cell's FE stiffness against the target)
    or ``"cell"`` (the explicit cell's own stiffness, ``design_error`` 0).
    """
    cp = spec.control_points[index]
    nu = spec.material.nu
    own = cell.stiffness(nu=nu)
    if cp.target is None:
        return own, "cell", 0.0
    C = np.array(cp.target.stiffness, dtype=np.float64)
    C = C if C.shape == (6, 6) else from_21(C)
    if cp.target.units == "GPa":
        C = C / spec.material.E
    return C, "target", relative_frobenius(own, C)


@dataclass
class PointCorrection:
    """Before and after at one control point (JSON-ready by :meth:`to_dict`).

    Attributes
    ----------
    index : int
    reference : str
        ``"target"`` or ``"cell"``.
    design_error : float
        The designed cell against the target (0 for an explicit cell).
    allowance : float
        ``design_error + tolerance``.
    error_before, error_after : float or None
        As-built relative Frobenius error against the reference, before the loop and
        in the kept state (None where no local cell exists, e.g. nothing printable).
    within : bool
        ``error_after <= allowance``.
    corrections : int
        How many times this point's cell was re-optimised.
    cell_before, cell_after : dict
        The cell's parameters (:meth:`graded.unitcell.UnitCell.to_dict`).
    """

    index: int
    reference: str
    design_error: float
    allowance: float
    error_before: float | None
    error_after: float | None = None
    within: bool = False
    corrections: int = 0
    cell_before: dict = field(default_factory=dict)
    cell_after: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return dict(vars(self))


@dataclass
class ClosedLoopReport:
    """The whole loop (JSON-ready by :meth:`to_dict`).

    Attributes
    ----------
    rebuilds : int
        Phase-field solves with corrected cells.
    tolerance : float
    points : list of PointCorrection
    history : list of list
        Per measurement, every point's as-built error (None where unavailable).
    time_s : float
        Wall time of the loop (measurements, polishes, rebuilds).
    as_built : list of ndarray (6, 6) or None
        The as-built stiffness of every point in the kept state (not in :meth:`to_dict`).
    """

    rebuilds: int
    tolerance: float
    points: list
    history: list
    time_s: float
    as_built: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"rebuilds": self.rebuilds, "tolerance": self.tolerance, "time_s": self.time_s,
                "history": self.history, "points": [p.to_dict() for p in self.points]}


def _measure(prep, refs) -> tuple[list, list]:
    """As-built error against the reference and the as-built stiffness (None where none) of every point."""
    errs, Cs = [], []
    for i, cp in enumerate(prep.spec.control_points):
        try:
            C = local_stiffness(prep, cp.position)
        except RuntimeError:  # nothing printable, or a mechanism, at this point
            errs.append(None)
            Cs.append(None)
            continue
        errs.append(relative_frobenius(C, refs[i]))
        Cs.append(C)
    return errs, Cs


def _polish_point(prep, i: int, C_ref: np.ndarray, iterations: int) -> UnitCell:
    """Re-optimise cell ``i`` against the as-built local-cell model at its point (module docstring)."""
    from ..inverse.polish import polish_designs  # lazy: the design package pulls in torch

    spec = prep.spec
    x = np.asarray(spec.control_points[i].position, dtype=np.float64).reshape(1, 3)
    nu = spec.material.nu
    w = prep.field.weights(x)[0]
    A_blend = prep.field.basis(x)[0]
    A_phase = np.linalg.inv(prep.phase.gradient(x)[0])
    D = A_phase @ np.linalg.inv(A_blend)  # the phase fields' departure from the blend, held fixed
    cell = prep.cells[i]
    R2 = cell.R2

    def fe(topology, rho, U, V, R1, _R2_identity):
        out = np.empty((len(rho), 6, 6))
        for n in range(len(rho)):
            trial = UnitCell(cell.topology, float(rho[n]), U[n], V[n], R1[n], R2, strict=False)
            cells = list(prep.cells)
            cells[i] = trial
            basis = D @ grading_field(spec, cells).basis(x)[0] / spec.mu
            graph, b, d = superposed_local_cell(cells, w, basis, prep.cell_edge, spec.min_strut_diameter)
            C = homogenize(graph, b, d[None, :], E=1.0, nu=nu)
            out[n] = rotate_voigt(C, R2.T)  # the polish rotates by R_II itself
        return out

    cand = {"topology": np.array(cell.topology)[None], "rho": np.array([cell.rho]), "U": cell.U[None],
            "V": cell.V[None], "R1": cell.R1[None], "R2": R2[None]}
    res = polish_designs(C_ref, cand, iterations=iterations, fe=fe)
    return UnitCell(cell.topology, float(res["rho"][0]), res["U"][0], res["V"][0], res["R1"][0], res["R2"][0],
                    strict=False)


def correct_cells(prep, *, iterations: int, tolerance: float, polish_iterations: int = POLISH_ITERATIONS,
                  references: list | None = None, progress=None):
    """Run the closed loop (module docstring) on a prepared build.

    Parameters
    ----------
    prep : graded.grading.pipeline.Prepared
    iterations : int
        Rebuilds at most (0: measure only).
    tolerance : float
        Allowed as-built error above the design error (relative Frobenius).
    polish_iterations : int
        Levenberg-Marquardt iterations per re-optimisation.
    references : list of (C_ref, kind, design_error), optional
        What each point asked for (default: :func:`reference_stiffness`, which homogenizes
        the cell; a build passes the FE it already has).
    progress : callable, optional
        ``progress(done, total, message)`` once per rebuild.

    Returns
    -------
    prep : Prepared
        The best state (the input if nothing improved).
    report : ClosedLoopReport
    """
    t0 = time.perf_counter()
    spec = prep.spec
    refs, points = [], []
    for i, cell in enumerate(prep.cells):
        C, kind, err = reference_stiffness(spec, i, cell) if references is None else references[i]
        refs.append(C)
        points.append(PointCorrection(index=i, reference=kind, design_error=err, allowance=err + tolerance,
                                      error_before=None, cell_before=cell.to_dict()))
    allow = np.array([p.allowance for p in points])

    def excess(errs) -> float:
        e = [v - a for v, a in zip(errs, allow) if v is not None]
        return max(e) if e else -np.inf

    errs, Cs = _measure(prep, refs)
    history = [errs]
    for p, e in zip(points, errs):
        p.error_before = e
    best, best_errs, best_Cs = prep, errs, Cs
    rebuilds = 0
    for it in range(int(iterations)):
        failing = [i for i, e in enumerate(errs) if e is not None and e > allow[i]]
        if not failing:
            break
        cells = list(prep.cells)
        for i in failing:
            cells[i] = _polish_point(prep, i, refs[i], polish_iterations)
            points[i].corrections += 1
        again = prepare_cells(spec, prep.body, cells, timings=dict(prep.timings))
        if prep.realignment is not None:  # the cells were re-expressed before: keep the record, relative to the design
            again = replace(again, realignment=prep.realignment.then(again.realignment))
        prep = again
        rebuilds += 1
        errs, Cs = _measure(prep, refs)
        history.append(errs)
        if excess(errs) < excess(best_errs):
            best, best_errs, best_Cs = prep, errs, Cs
        if progress:
            progress(it + 1, int(iterations), f"closed loop {it + 1}: worst excess {excess(errs):+.2%}")
    for p, e, cell in zip(points, best_errs, best.cells):
        p.error_after = e
        p.within = e is not None and e <= p.allowance
        p.cell_after = cell.to_dict()
    report = ClosedLoopReport(rebuilds=rebuilds, tolerance=float(tolerance), points=points, history=history,
                              time_s=time.perf_counter() - t0, as_built=best_Cs)
    return best, report


def correct(prep: Prepared, designs: list[CellDesign], progress=None):
    """The closed-loop stage (:func:`correct_cells`) with the spec's settings.

    Returns
    -------
    prep : Prepared
        The corrected state (the input where nothing needed correcting).
    report : graded.grading.correction.ClosedLoopReport
    """
    opts = prep.spec.closed_loop
    return correct_cells(prep, iterations=opts.iterations, tolerance=opts.tolerance,
                         references=point_references(designs), progress=progress)
