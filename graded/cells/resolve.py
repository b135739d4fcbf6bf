"""Resolve the cell of every control point: the explicit ``cell``, or inverse design of ``target``."""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..elastic import from_21
from ..elastic.metrics import relative_frobenius
from ..spec import ControlPoint, DesignOptions, Spec, format_path
from ..unitcell import UnitCell
from ..validation import ValidationError

__all__ = ["CellDesign", "DesignSettings", "resolve_cells"]

_log = logging.getLogger("graded.cells")

Progress = Callable[[int, int, str], None]

#: Progress steps per control point (inverse design reports its own steps inside them).
_STEPS = 1000


@dataclass(frozen=True)
class DesignSettings:
    """How the build designs the cell of a control point with a target.

    The defaults are those of :func:`graded.inverse.design` (and so of ``graded design``):
    a build gets the same cell for a target as ``graded design`` gives.
    """

    n_draws: int = 10000
    tau: float = 1.0
    top_k: int = 10
    refine: bool = True
    n_library: int = 5

    @classmethod
    def from_options(cls, options: DesignOptions) -> DesignSettings:
        """The settings of a spec's ``design`` section."""
        return cls(n_draws=options.n_draws, tau=options.tau, top_k=options.top_k, refine=options.refine,
                   n_library=options.library)


@dataclass
class CellDesign:
    """The cell of one control point, with its provenance and FE figures.

    Attributes
    ----------
    index : int
        Position in ``spec.control_points``.
    name : str
        ``"point <index>"`` unless the spec names it.
    position : ndarray, shape (3,), float64
        mm.
    cell : UnitCell
    source : {"explicit", "design", "library"}
        Given in the spec, drawn from the inverse model, or a design-library neighbour.
    C_cell : ndarray, shape (6, 6), float64
        FE stiffness of the cell, normalised by E_s (computed once, with the spec's nu).
    C_target : ndarray, shape (6, 6), float64, or None
        The target, normalised by E_s (None for an explicit cell).
    units : {"GPa", "normalized"}
        The units the spec wrote this point's target in (``"normalized"`` for an explicit cell
        unless the spec's other targets are in GPa).
    design_error : float or None
        Relative Frobenius error ``||C_cell - C_target||_F / ||C_target||_F`` of the designed cell.
    design : dict
        What inverse design reported (rank, refined, seconds, candidates), empty for explicit cells.
    """

    index: int
    name: str
    position: np.ndarray
    cell: UnitCell
    source: str
    C_cell: np.ndarray
    C_target: np.ndarray | None = None
    units: str = "normalized"
    design_error: float | None = None
    design: dict = field(default_factory=dict)

    def diameter(self, cell_edge: float) -> float:
        """Strut diameter (mm) of the cell at a built cell edge of ``cell_edge`` mm."""
        return self.cell.diameter(cell_size=cell_edge)


def _rebase(exc: ValidationError, spec: Spec, path: tuple) -> ValidationError:
    """Prefix a ValidationError raised for a sub-object with its spec path and line."""
    sub = exc.field
    if sub in ("spec", path[-1]):  # already names the sub-object itself
        sub = ""
    full = format_path(path) + ("." + sub if sub else "")
    line = spec.line_of(path + tuple(sub.split(".")) if sub else path)
    where = f" (line {line})" if line else ""
    hint = exc.hint
    if hint and "strict=False" in hint:  # a spec has no opt-out of the design space
        hint = "give a value inside it (SI Table S1)"
    return ValidationError(full, exc.problem + where, hint)


def _target(cp: ControlPoint, spec: Spec) -> np.ndarray | None:
    if cp.target is None:
        return None
    C = np.asarray(cp.target.stiffness, dtype=np.float64)
    C = C if C.shape == (6, 6) else from_21(C)
    return C / spec.material.E if cp.target.units == "GPa" else C


def _explicit(cp: ControlPoint, spec: Spec, i: int) -> UnitCell:
    c = cp.cell
    try:
        return UnitCell.from_dict({"topology": c.topology, "rho": c.rho, "U": c.U, "V": c.V, "R1": c.R1, "R2": c.R2})
    except ValidationError as exc:
        raise _rebase(exc, spec, ("control_points", i, "cell")) from None


def _designed(cp: ControlPoint, spec: Spec, i: int, settings: DesignSettings, cell_edge: float,
              progress: Progress | None):
    """Run inverse design for a control point's target; the best printable result (:func:`_printable`)."""
    path = ("control_points", i)
    try:
        from ..inverse.design import PoorMatchWarning, TargetOutOfReachWarning
        from ..inverse.design import design as run_design  # lazy: pulls in torch
    except ImportError as exc:
        raise RuntimeError(f"{format_path(path)}.target: inverse design is not available ({exc}); "
                           "give an explicit cell for this control point instead") from None
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            results = run_design(
                cp.target.stiffness, E=spec.material.E, units=cp.target.units, cell_size=cell_edge, seed=spec.seed,
                verify=True, n_draws=settings.n_draws, tau=settings.tau, top_k=settings.top_k,
                refine=settings.refine, n_library=settings.n_library, progress=progress,
            )
    except ValidationError as exc:
        if exc.field.split(".")[0] in ("target", "stiffness", "units", "E"):
            raise _rebase(exc, spec, path + ("target",)) from None
        raise RuntimeError(f"{format_path(path)}.target: inverse design is not available ({exc}); "
                           "give an explicit cell for this control point instead") from None
    notes = []
    for w in caught:
        if isinstance(w.message, TargetOutOfReachWarning):
            # a part built for a target no cell reaches would be silently wrong everywhere
            raise spec.error(path + ("target",), str(w.message).split("; the designs returned")[0],
                             "give a target inside that range (check units and E), or a softer/stiffer material")
        if isinstance(w.message, PoorMatchWarning):
            notes.append(str(w.message))
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if not results:
        raise RuntimeError(f"{format_path(path)}.target: inverse design returned no cell")
    return _printable(results, spec, path, cell_edge), len(results), notes


def _printable(results: list, spec: Spec, path: tuple, cell_edge: float):
    """The best-ranked design whose struts the printer makes at ``cell_edge`` (mm).

    Designs come ranked by their FE error; one whose struts are thinner than
    ``min_strut_diameter`` would be refused at its control point (or, if built, print as a
    different cell), so the first printable one is taken. When none is printable, the
    refusal gives the best design's error and the cell size that prints it.
    """
    mind = spec.min_strut_diameter
    if mind <= 0:
        return results[0]
    for r in results:
        if r.cell.diameter(cell_edge) >= mind:
            return r
    best = results[0]
    err = best.error_fe if best.error_fe is not None else best.error_pred
    need = spec.cell_size * mind / best.cell.diameter(cell_edge)
    raise spec.error(path + ("target",),
                     f"none of the {len(results)} designs for it prints: their struts are thinner than "
                     f"min_strut_diameter = {mind:g} mm at cell_size {spec.cell_size:g} mm (the best, "
                     f"{best.topology} at rho = {best.rho:.3g}, is {100 * err:.1f} % from the target with "
                     f"{best.cell.diameter(cell_edge):.3g} mm struts)",
                     f"use cell_size >= {need:.3g} mm or a finer printer")


def resolve_cells(spec: Spec, *, cell_edge: float | None = None, settings: DesignSettings | None = None,
                  progress: Progress | None = None) -> list[CellDesign]:
    """The cell of every control point, with its FE stiffness and design error.

    Parameters
    ----------
    spec : Spec
    cell_edge : float, optional
        Built cell edge in mm (default ``spec.cell_size / spec.mu``); inverse design reports
        strut diameters for it.
    settings : DesignSettings, optional
        Inverse-design settings (default: the spec's ``design`` section).
    progress : callable(done, total, message), optional
        Called per control point and, inside inverse design, per design step.

    Returns
    -------
    list of CellDesign
        In the order of ``spec.control_points``.

    Raises
    ------
    ValidationError
        Bad cell parameters or target, with the spec path and line of the control point.
    RuntimeError
        Inverse design is not available, or returned nothing.
    """
    settings = settings or DesignSettings.from_options(spec.design)
    edge = spec.cell_size / spec.mu if cell_edge is None else float(cell_edge)
    nu = spec.material.nu
    n = len(spec.control_points)
    gpa = any(cp.target is not None and cp.target.units == "GPa" for cp in spec.control_points)
    out = []
    for i, cp in enumerate(spec.control_points):
        name = cp.name or f"point {i}"
        t0 = time.perf_counter()
        C_target = _target(cp, spec)
        if cp.cell is not None:
            if progress:
                progress(_STEPS * i, _STEPS * n, f"{name}: explicit cell")
            cell = _explicit(cp, spec, i)
            C_cell = cell.stiffness(nu=nu)
            rec = CellDesign(i, name, np.asarray(cp.position, dtype=np.float64), cell, "explicit", C_cell,
                             units="GPa" if gpa else "normalized")
        else:
            if progress:
                progress(_STEPS * i, _STEPS * n, f"{name}: inverse design")
            sub = None
            if progress:
                def sub(done, total, message, _i=i, _name=name):
                    frac = min(max(done / total, 0.0), 1.0) if total else 0.0
                    progress(int(_STEPS * (_i + frac)), _STEPS * n, f"{_name}: {message}")
            best, n_results, notes = _designed(cp, spec, i, settings, edge, sub)
            cell = best.cell
            # the design's FE verification used nu = 0.3; reuse it when the spec's nu is the same
            if best.C_fe is not None and abs(nu - 0.3) < 1e-12:
                C_cell = np.asarray(best.C_fe, dtype=np.float64)
            else:
                C_cell = cell.stiffness(nu=nu)
            rec = CellDesign(
                i, name, np.asarray(cp.position, dtype=np.float64), cell,
                "library" if getattr(best, "source", "model") == "library" else "design", C_cell,
                C_target=C_target, units=cp.target.units,
                design_error=float(relative_frobenius(C_target, C_cell)),
                design={"rank": int(best.rank), "refined": bool(best.refined), "candidates": int(n_results),
                        "settings": vars(settings).copy()},
            )
            if notes:
                rec.design["warnings"] = notes
                for note in notes:
                    _log.warning("%s: %s", name, note)
        rec.design["seconds"] = time.perf_counter() - t0
        if rec.design_error is not None:
            _log.info("%s: %s cell %s, design error %.2f %%", name, rec.source, cell.topology_string,
                      100 * rec.design_error)
        out.append(rec)
    if progress:
        progress(n, n, "cells resolved")
    return out
