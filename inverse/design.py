"""Inverse design of truss unit cells for a target stiffness, verified by FE.

:func:`design` draws many candidates from the inverse model (Gumbel-softmax sampling,
main text Eqs. 5-7, :mod:`~graded.inverse.draw`), ranks them by the relative Mandel-norm
error predicted by the forward model (:mod:`~graded.inverse.select`), adds the design
library's nearest neighbours (:mod:`~graded.inverse.library`), homogenizes them by FE
(:mod:`~graded.inverse.oracle`), refines and polishes them (:mod:`~graded.inverse.refine`)
and returns ranked :class:`DesignResult` objects -- the best design of every distinct cell
first. :func:`candidate_designs` and :func:`rank_results` are the steps of its own.

Honest limits
-------------
* an inadmissible target (not symmetric, not positive definite), a wrong number of
  constants, or a unit mix-up (``units="GPa"`` with no ``E``; "normalised" values above 1,
  which no lattice of the base material can reach) raise ``ValidationError``;
* a target whose magnitude lies outside what the design space reaches (rho in
  [0.002, 0.1]) gives a :class:`TargetOutOfReachWarning` stating the achievable range;
* a best design whose verified relative error stays large gives a
  :class:`PoorMatchWarning`.
"""

from __future__ import annotations

import functools
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from graded.elastic import NAMES_21, from_21, matrix_to_axis_angle, nmse, to_21
from graded.elastic.metrics import check_admissible, relative_error
from graded.validation import check_choice, check_count, check_finite, check_positive, fail

from .draw import draw_designs
from .forward import ForwardModel
from .library import shipped_library
from .oracle import fe_stiffness
from .refine import DESIGN_KEYS, POLISH_ITERATIONS, final_polish, improve_designs
from .sampling import design_basis
from .scaling import RHO_RANGE, stiffness_scale
from .screen import best_per_cell, lattice_starts
from .select import cell_key, ranking_error, select_designs

__all__ = [
    "TargetOutOfReachWarning",
    "PoorMatchWarning",
    "DesignResult",
    "parse_target",
    "candidate_designs",
    "rank_results",
    "design_results",
    "design",
    "default_models",
    "REACH",
    "POOR_MATCH",
    "TARGET_SYMMETRY_TOL",
    "SAME_CELL_TOL",
    "SCREEN",
    "FINAL",
]

Progress = Callable[[int, int, str], None]

#: Range of the rotation-invariant magnitude ``s`` (Mandel trace, normalised by E_s) that
#: lattices of the design space reach, used when the inverse weights carry no measured
#: range: rho = 0.002 ... 0.1 with s / rho between ~0.4 and ~1 (measured on FE data).
REACH = (0.002 * 0.4, 0.1 * 1.02)
#: Relative Mandel-norm error ``||C_design - C_target|| / ||C_target||`` of the best
#: design above which a :class:`PoorMatchWarning` is given.
POOR_MATCH = 0.25
#: Symmetry defect tolerated in a target (values printed with ~6 digits).
TARGET_SYMMETRY_TOL = 1e-6
#: Two designs of one lattice whose stiffnesses differ by less than this relative Mandel
#: norm are the same cell (e.g. two starts polished into one optimum: the polish stops at
#: 1e-4 relative progress); 1e-3 is far below any difference a design could be chosen by.
SAME_CELL_TOL = 1e-3
#: Lattices of the FE screen added to the candidates of :func:`design` (``screen``).
SCREEN = 5
#: Best designs of distinct cells polished further by :func:`design` (``final``).
FINAL = 3
#: Library neighbours per lattice in the screen of :func:`design` (at most).
SCREEN_LIBRARY = 3


class TargetOutOfReachWarning(UserWarning):
    """The target is stiffer or softer than any lattice of the design space."""


class PoorMatchWarning(UserWarning):
    """Even the best design found stays far from the target."""


@dataclass
class DesignResult:
    """One proposed unit cell.

    Attributes
    ----------
    rank : int
        0 = best. The best designs of distinct cells come first, each group by the
        ranking error (:func:`rank_results`).
    topology : str
        E.g. ``"1x2+2x3+2x5"`` (tessellation x elementary id, SI Table S1).
    rho : float
        Relative density.
    U, V : (3,) float
        Principal stretches.
    R1, R2 : (3, 3) float
        Rotations R_I, R_II; ``R1_axis_angle``/``R2_axis_angle`` give ``(theta, e1, e2)``.
    diameter : float or None
        Strut diameter for ``cell_size`` (same unit), None if no cell size was given.
    C_pred : (6, 6) float
        Stiffness predicted by the forward model (normalised by E_s).
    C_fe : (6, 6) float or None
        Stiffness by FE homogenization (None if not verified).
    nmse_pred, nmse_fe : float
        NMSE (main Eq. 8) of C_pred / C_fe against the target.
    error_pred, error_fe : float
        Relative Mandel-norm error ``||M(C - C_target)|| / ||M(C_target)||``
        (:func:`~graded.elastic.metrics.relative_error`) of C_pred / C_fe.
    distinct : bool
        True for the best design of its cell (its lattice,
        :func:`~graded.inverse.select.cell_key`; different part lists can make one lattice).
    refined : bool
        Continuous parameters were refined by gradient descent.
    E : float or None
        Base-material Young's modulus (GPa) for the GPa views, if given.
    source : {"model", "library"}
        Drawn from the inverse model, or a nearest neighbour from the design library
        (:mod:`graded.inverse.library`).
    """

    rank: int
    topology: str
    rho: float
    U: np.ndarray
    V: np.ndarray
    R1: np.ndarray
    R2: np.ndarray
    C_pred: np.ndarray
    nmse_pred: float
    C_fe: np.ndarray | None = None
    nmse_fe: float | None = None
    diameter: float | None = None
    cell_size: float | None = None
    distinct: bool = True
    refined: bool = False
    E: float | None = None
    source: str = "model"
    error_pred: float | None = None
    error_fe: float | None = None

    @property
    def R1_axis_angle(self) -> np.ndarray:
        return matrix_to_axis_angle(self.R1)

    @property
    def R2_axis_angle(self) -> np.ndarray:
        return matrix_to_axis_angle(self.R2)

    @property
    def nmse(self) -> float:
        """The FE-verified NMSE if available, else the predicted one."""
        return self.nmse_fe if self.nmse_fe is not None else self.nmse_pred

    @property
    def error(self) -> float | None:
        """The FE-verified relative Mandel-norm error if available, else the predicted one."""
        return self.error_fe if self.error_fe is not None else self.error_pred

    @property
    def cell(self):
        """The design as a :class:`graded.unitcell.UnitCell`."""
        from graded.unitcell import UnitCell

        return UnitCell(self.topology, self.rho, self.U, self.V, self.R1, self.R2, strict=False)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "rank": self.rank,
            "topology": self.topology,
            "distinct": self.distinct,
            "rho": self.rho,
            "U": self.U.tolist(),
            "V": self.V.tolist(),
            "R1_axis_angle": self.R1_axis_angle.tolist(),
            "R2_axis_angle": self.R2_axis_angle.tolist(),
            "refined": self.refined,
            "source": self.source,
            "nmse_pred": self.nmse_pred,
            "nmse_fe": self.nmse_fe,
            "error_pred": self.error_pred,
            "error_fe": self.error_fe,
            "C_pred": dict(zip(NAMES_21, to_21(self.C_pred).tolist())),
            "C_fe": None if self.C_fe is None else dict(zip(NAMES_21, to_21(self.C_fe).tolist())),
        }
        if self.cell_size is not None:
            d["cell_size"] = self.cell_size
            d["diameter"] = self.diameter
        if self.E is not None:
            d["E_GPa"] = self.E
            d["C_pred_GPa"] = dict(zip(NAMES_21, (self.E * to_21(self.C_pred)).tolist()))
            if self.C_fe is not None:
                d["C_fe_GPa"] = dict(zip(NAMES_21, (self.E * to_21(self.C_fe)).tolist()))
        return d


# ---------------------------------------------------------------------------
# input
# ---------------------------------------------------------------------------


def parse_target(target, *, E: float | None = None, units: str = "normalized") -> np.ndarray:
    """Check a target stiffness and return it normalised by E_s as a (6, 6) float64 array.

    Parameters
    ----------
    target : array_like
        21 constants (order C11, C12, ..., C66; upper triangle row by row) or a 6x6 matrix.
    E : float, optional
        Base material's Young's modulus in GPa; required for ``units="GPa"``.
    units : {"normalized", "GPa"}
        ``"normalized"``: values are C / E_s (all below 1); ``"GPa"``: values in GPa.

    Raises
    ------
    ValidationError
        Wrong number of constants, unit mix-up, not symmetric or not positive definite.
    """
    check_choice("units", units, ("normalized", "GPa"))
    arr = check_finite("target", target)
    if arr.size == 21 and arr.ndim <= 2 and arr.shape != (6, 6):
        C = from_21(arr.reshape(21))
    elif arr.shape == (6, 6):
        C = arr.copy()
    else:
        fail("target", f"has {arr.size} values (shape {arr.shape})",
             "give the 21 independent constants C11, C12, ..., C66 or a 6x6 Voigt matrix")
    if units == "GPa":
        if E is None:
            fail("E", "is required when the target is in GPa",
                 "give the base material's Young's modulus (e.g. E=114 for Ti-6Al-4V)")
        E = float(check_positive("E", E, hint="Young's modulus in GPa, e.g. 114"))
        C = C / E
    else:
        big = float(np.abs(C).max())
        if big > 1.0:
            hint = ("these look like GPa values; pass units='GPa' and the base material's E"
                    if E is None else "pass units='GPa' to divide by E")
            fail("target", f"normalised values must be below 1 (stiffness / E_s), got up to {big:.4g}", hint)
    C = check_admissible(C, "target", symmetry_tol=TARGET_SYMMETRY_TOL)
    return 0.5 * (C + C.T)


# ---------------------------------------------------------------------------
# the pieces
# ---------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _shipped_models():
    from .weights import load_forward, load_inverse

    return load_inverse(), load_forward()


def default_models():
    """The shipped (inverse, forward) models, loaded once per process."""
    return _shipped_models()


def candidate_designs(
    inverse,
    forward: ForwardModel,
    target: np.ndarray,
    *,
    n_draws: int,
    top_k: int,
    n_library: int = 0,
    library=None,
    tau: float = 1.0,
    generator: torch.Generator | None = None,
    rank_by: str = "mandel",
    progress: Progress | None = None,
) -> dict[str, np.ndarray]:
    """The candidates :func:`design` verifies: the best draws of the inverse model and the
    design library's nearest neighbours of one target.

    Parameters
    ----------
    inverse, forward : InverseModel, ForwardModel
    target : ndarray, shape (6, 6)
        Normalised target (:func:`parse_target`).
    n_draws, top_k, n_library, library, tau, rank_by
        As in :func:`design`; ``top_k - min(n_library, top_k // 2)`` draws are chosen by
        their predicted ``rank_by`` error (:func:`~graded.inverse.select.select_designs`).
    generator : torch.Generator, optional
        Gumbel noise of the draws.
    progress : callable, optional
        ``progress(done, n_draws, message)`` during the draws
        (:func:`~graded.inverse.draw.draw_designs`).

    Returns
    -------
    dict
        Arrays of k <= ``top_k`` designs: :data:`~graded.inverse.refine.DESIGN_KEYS`,
        ``C_pred`` (k, 6, 6), ``nmse`` (k,) predicted, ``source`` (k,) ``"model"`` or
        ``"library"``.
    """
    cand = draw_designs(inverse, forward, target[None], int(n_draws), tau=float(tau), generator=generator,
                        progress=progress)
    cand = {k: v[0] for k, v in cand.items()}
    n_lib = min(int(n_library), int(top_k) // 2)
    chosen, _ = select_designs(ranking_error(rank_by, target, cand["C_pred"]), cand["topology"], int(top_k) - n_lib,
                               rho=cand["rho"])
    pick = {k: v[chosen] for k, v in cand.items()}
    pick["source"] = np.array(["model"] * len(chosen), dtype=object)
    if n_lib > 0:
        lib = library if library is not None else shipped_library()
        nb = {k: v[0] for k, v in lib.nearest(target[None], n_lib).items()}
        nb["C_pred"] = forward.predict(*(nb[k] for k in DESIGN_KEYS))
        nb["nmse"] = nmse(target[None], nb["C_pred"])
        nb["source"] = np.array(["library"] * n_lib, dtype=object)
        pick = {k: np.concatenate([pick[k], nb[k]]) for k in pick}
    return pick


def design_results(pick: dict[str, np.ndarray], refined: np.ndarray, target: np.ndarray, *, E: float | None,
                   cell_size: float | None) -> list[DesignResult]:
    """One :class:`DesignResult` per design of ``pick`` (unranked).

    ``pick`` holds :data:`~graded.inverse.refine.DESIGN_KEYS` arrays of k designs,
    ``C_pred`` (k, 6, 6), ``nmse`` (k,), ``source`` (k,) and, if verified, ``C_fe`` and
    ``nmse_fe``; ``refined`` (k,) bool.
    """
    from graded.topology import parse_topology
    from graded.unitcell import diameter_from_density

    verified = "C_fe" in pick
    err_pred = relative_error(target, pick["C_pred"])
    err_fe = relative_error(target, pick["C_fe"]) if verified else None
    results = []
    for j in range(len(pick["rho"])):
        topo = _format(pick["topology"][j])
        diameter = None
        if cell_size is not None:
            basis = design_basis(pick["U"][j], pick["V"][j], pick["R1"][j], pick["R2"][j])
            diameter = float(diameter_from_density(parse_topology(topo), pick["rho"][j], cell_size * basis))
        results.append(DesignResult(
            rank=0,
            topology=topo,
            rho=float(pick["rho"][j]),
            U=pick["U"][j].copy(),
            V=pick["V"][j].copy(),
            R1=pick["R1"][j].copy(),
            R2=pick["R2"][j].copy(),
            C_pred=pick["C_pred"][j].copy(),
            nmse_pred=float(pick["nmse"][j]),
            C_fe=pick["C_fe"][j].copy() if verified else None,
            nmse_fe=float(pick["nmse_fe"][j]) if verified else None,
            diameter=diameter,
            cell_size=cell_size,
            refined=bool(refined[j]),
            E=E,
            source=str(pick["source"][j]),
            error_pred=float(err_pred[j]),
            error_fe=float(err_fe[j]) if verified else None,
        ))
    return results


def rank_results(results: list[DesignResult], target: np.ndarray, rank_by: str = "mandel") -> list[DesignResult]:
    """Rank designs: the best design of each distinct cell first, each group by its
    ``rank_by`` error (FE-verified where available); repeats of a cell dropped.

    Two designs are the same cell when their topologies superpose to the same lattice
    (:func:`~graded.inverse.select.cell_key`) and their stiffnesses agree within
    :data:`SAME_CELL_TOL`; of such a pair only the better one is kept.

    Parameters
    ----------
    results : list of DesignResult
    target : ndarray, shape (6, 6)
        Normalised target.
    rank_by : {"mandel", "nmse"}

    Returns
    -------
    list of DesignResult
        A new list, sorted, with ``rank`` and ``distinct`` set.
    """
    check_choice("rank_by", rank_by, ("mandel", "nmse"))

    def C(r):
        return r.C_fe if r.C_fe is not None else r.C_pred

    err = {id(r): float(ranking_error(rank_by, target, C(r))) for r in results}
    kept: list[DesignResult] = []
    by_cell: dict[frozenset, list[DesignResult]] = {}
    for r in sorted(results, key=lambda r: err[id(r)]):
        same = by_cell.setdefault(cell_key(r.topology), [])
        if any(float(relative_error(C(o), C(r))) < SAME_CELL_TOL for o in same):
            continue
        r.distinct = not same
        same.append(r)
        kept.append(r)
    kept.sort(key=lambda r: (not r.distinct, err[id(r)]))
    for i, r in enumerate(kept):
        r.rank = i
    return kept


# ---------------------------------------------------------------------------
# the design function
# ---------------------------------------------------------------------------


def design(
    target,
    *,
    E: float | None = None,
    units: str = "normalized",
    n_draws: int = 10000,
    tau: float = 1.0,
    top_k: int = 10,
    verify: bool = True,
    refine: bool = True,
    n_library: int = 5,
    library=None,
    cell_size: float | None = None,
    seed: int = 0,
    models: tuple | None = None,
    rank_by: str = "mandel",
    screen: int = SCREEN,
    final: int = FINAL,
    progress: Progress | None = None,
) -> list[DesignResult]:
    """Propose unit cells whose stiffness matches ``target``.

    Parameters
    ----------
    target : array_like
        21 constants or a 6x6 Voigt matrix (see :func:`parse_target`).
    E : float, optional
        Base material's Young's modulus in GPa (required for ``units="GPa"``; with
        normalised targets it only adds GPa views to the results).
    units : {"normalized", "GPa"}
    n_draws : int
        Candidates drawn from the inverse model and ranked by their predicted ``rank_by``
        error (each draw's geometry is the head of G2 that the forward model puts nearest
        the target, :func:`~graded.inverse.draw.draw_designs`).
    tau : float
        Gumbel-softmax temperature (larger: more varied topologies).
    top_k : int
        Designs returned (and verified by FE if ``verify``).
    verify : bool
        Homogenize the returned designs by FE (``C_fe``, ``nmse_fe``).
    refine : bool
        Refine rho, U, V, R_I, R_II of the returned designs on the relative Mandel-norm
        error (rotation invariant, the error of the elastic surface; Eq. 8 as an objective
        over-weights near-zero entries and was measured to trade the main stiffnesses for
        them): first by gradient descent through the forward model, then -- with
        ``verify`` -- by Levenberg-Marquardt on the FE solver itself
        (:func:`~graded.inverse.polish.polish_designs`), so the final designs are
        optimal for the true stiffness, not only for the surrogate. A refined design
        replaces its original only if its relative error is lower (by FE when ``verify``).
    n_library : int
        Of the ``top_k`` designs, up to this many (at most half) are the nearest
        neighbours of the target in the design library instead of model draws: FE-verified
        cells whose stiffness has the target's shape, turned into its frame and scaled to
        its size. With ``refine`` they are the best starting points for the FE polish
        (measured on 100 held-out targets: 1.1 % median error after polishing 5 neighbours
        against 5.3 % for the best 3 model draws). 0 uses the inverse model alone.
    library : DesignLibrary, optional
        Default: the shipped library (:func:`~graded.inverse.library.shipped_library`).
    cell_size : float, optional
        Edge of the reference cube (any length unit); gives each design's strut diameter.
    seed : int
        Seed of the Gumbel noise: a fixed seed gives identical designs.
    models : (InverseModel, ForwardModel), optional
        Default: the shipped weights.
    rank_by : {"mandel", "nmse"}
        Error the candidates and the returned designs are ranked by
        (:data:`~graded.inverse.select.CRITERIA`): the relative Mandel (Frobenius) norm
        error, rotation invariant, the error of the elastic surface (default); or the NMSE
        of main Eq. 8, dominated by the near-zero entries of the target.
    screen : int
        With ``verify``, also homogenize starts for every distinct lattice of the design
        space -- each geometry head of G2 for that topology and the library's nearest
        cells of that lattice (:func:`~graded.inverse.screen.lattice_starts`, about 1,700
        FE solves) -- and add the best start of the best ``screen`` lattices not yet among
        the candidates (``source = "screen"``; refined and polished like the others). It
        finds lattices that G1 does not propose for targets unlike its training data
        (bone-like ones). 0: off.
    final : int
        With ``refine`` and ``verify``, polish the best ``final`` designs of distinct
        cells further (:data:`~graded.inverse.refine.FINAL_ITERATIONS` more
        Levenberg-Marquardt iterations; never worse). 0: off.
    progress : callable, optional
        ``progress(done, total, message)`` after each stage (drawing, ranking, FE
        verification, lattice screen, refinement and polish), and with the polish's
        messages in between.

    Returns
    -------
    list of DesignResult
        The best design of each distinct cell first, each group sorted by its ``rank_by``
        error (FE-verified if ``verify``; :func:`rank_results`). Up to ``top_k``: a draw
        repeating an earlier one exactly (same cell, same geometry head) is not returned
        twice, nor is a design that ends up as the same cell with the same stiffness as a
        better one, so a narrow posterior (small ``tau``, few draws) can give fewer.

    Warns
    -----
    TargetOutOfReachWarning
        The target's magnitude is outside what rho in [0.002, 0.1] reaches.
    PoorMatchWarning
        The best design's relative error exceeds :data:`POOR_MATCH`.
    """
    C_t = parse_target(target, E=E, units=units)
    if E is not None:
        E = float(check_positive("E", E))
    for name, v, lo in (("n_draws", n_draws, 1), ("top_k", top_k, 1), ("n_library", n_library, 0),
                        ("screen", screen, 0), ("final", final, 0)):
        check_count(name, v, lo)
    if not (isinstance(tau, (int, float)) and math.isfinite(tau) and tau > 0):
        fail("tau", f"{tau!r} must be a positive number", "e.g. 1 (paper) up to 100 (more exploration)")
    check_choice("rank_by", rank_by, ("mandel", "nmse"))
    if cell_size is not None:
        cell_size = float(check_positive("cell_size", cell_size, hint="edge of the reference cube, e.g. 5 (mm)"))
    screen = int(screen) if verify else 0
    step = _Steps(progress, 2 + int(verify) + int(screen > 0) + int(refine and verify))
    if models is None and _shipped_models.cache_info().currsize == 0:
        step.note("loading the inverse and forward networks")
    inverse, forward = models if models is not None else default_models()
    _check_reach(C_t, inverse, E)
    step("drawing candidates")
    gen = torch.Generator().manual_seed(int(seed))
    drawing = None if progress is None else (lambda i, n, msg: step.note(f"drawing candidates: {msg}"))
    pick = candidate_designs(inverse, forward, C_t, n_draws=n_draws, top_k=top_k, n_library=n_library,
                             library=library, tau=tau, generator=gen, rank_by=rank_by, progress=drawing)
    n_lib = int(np.sum(pick["source"] == "library"))
    step(f"ranked {n_draws} candidates" + (f", {n_lib} from the design library" if n_lib else ""))
    if verify:
        pick["C_fe"] = fe_stiffness(*(pick[k] for k in DESIGN_KEYS))
        step(f"verified {len(pick['rho'])} designs by FE")
    if screen > 0:
        step.note("screening every lattice by FE: starts from G2 and the library")
        tell = None if progress is None else _every_second(step.note, "screening every lattice by FE")
        pick = _add_screened(pick, C_t, inverse, forward, screen, n_library, library, progress=tell)
        step(f"screened every lattice by FE, added the best {int(np.sum(pick['source'] == 'screen'))}")
    refined = np.zeros(len(pick["rho"]), dtype=bool)
    if refine:
        polish_progress = None if progress is None else (lambda i, n, msg: step.note(msg))
        refined = improve_designs(forward, C_t, pick, verify=verify, iterations=POLISH_ITERATIONS,
                                  progress=polish_progress)
        if verify and final > 0:
            err = relative_error(C_t, pick["C_fe"])
            top = select_designs(err, pick["topology"], int(final))[0][:int(final)]
            refined |= final_polish(forward, C_t, pick, top, progress=polish_progress)
        if verify:
            step("refined and polished against FE")
    if verify:
        pick["nmse_fe"] = nmse(C_t[None], pick["C_fe"])
    results = rank_results(design_results(pick, refined, C_t, E=E, cell_size=cell_size), C_t, rank_by)[:int(top_k)]
    step("done")
    best = results[0]
    C_best = best.C_fe if best.C_fe is not None else best.C_pred
    err = float(relative_error(C_t, C_best))
    if err > POOR_MATCH:
        warnings.warn(PoorMatchWarning(
            f"the best design differs from the target by {100 * err:.0f} % (relative Mandel norm"
            f"{', by FE' if best.C_fe is not None else ', predicted'}); the target is probably outside "
            "what the lattice design space offers (try a larger tau or more draws)"), stacklevel=2)
    return results


def _every_second(note, label: str):
    """A ``progress(done, total, message)`` that passes on at most one note a second."""
    last = [time.perf_counter()]

    def tell(done: int, total: int, message: str = "") -> None:
        now = time.perf_counter()
        if now - last[0] >= 1.0:
            last[0] = now
            note(f"{label}: {message}")

    return tell


def _add_screened(pick: dict, C_t: np.ndarray, inverse, forward: ForwardModel, screen: int, n_library: int,
                  library, progress=None) -> dict:
    """``pick`` plus the best start of each of the best ``screen`` lattices (:func:`lattice_starts`),
    whether or not the lattice is among the candidates already (its screened start may be the better one)."""
    scr = lattice_starts(C_t, inverse, n_library=min(int(n_library), SCREEN_LIBRARY), library=library,
                         progress=progress)
    idx = best_per_cell(scr["error"], scr["cell"], 1)[:screen]
    add = {k: scr[k][idx] for k in DESIGN_KEYS + ("C_fe",)}
    add["C_pred"] = forward.predict(*(add[k] for k in DESIGN_KEYS))
    add["nmse"] = nmse(C_t[None], add["C_pred"])
    add["source"] = np.array(["screen"] * len(idx), dtype=object)
    return {k: np.concatenate([pick[k], add[k]]) for k in pick}


def _format(topology: np.ndarray) -> str:
    from graded.topology import format_topology

    return format_topology(tuple((int(t), int(s)) for t, s in np.asarray(topology)))


def _check_reach(C: np.ndarray, inverse, E: float | None) -> None:
    lo, hi = getattr(inverse.config, "reach", None) or REACH
    s = float(stiffness_scale(to_21(C)))
    if lo <= s <= hi:
        return
    unit = (lambda v: f"{v:.3g} (= {v * E:.3g} GPa with E = {E:g} GPa)") if E else (lambda v: f"{v:.3g}")
    side = "stiffer" if s > hi else "softer"
    warnings.warn(TargetOutOfReachWarning(
        f"target is {side} than any lattice with rho in [{RHO_RANGE[0]}, {RHO_RANGE[1]}]: its magnitude "
        f"C11+C22+C33+2(C44+C55+C66) is {unit(s)}, the design space reaches {unit(lo)} to {unit(hi)}; "
        "the designs returned are the closest available, not a match"), stacklevel=3)


class _Steps:
    """``progress(done, total, message)`` of the stages of :func:`design`."""

    def __init__(self, progress: Progress | None, total: int):
        self.progress, self.total, self.done = progress, total, -1

    def __call__(self, message: str) -> None:
        self.done += 1
        self.note(message)

    def note(self, message: str) -> None:
        if self.progress is not None:
            self.progress(max(self.done, 0), self.total, message)
