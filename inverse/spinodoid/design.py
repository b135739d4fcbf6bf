"""Inverse design of spinodoid cells for a target stiffness, verified by voxel FE.

1. The target's orthotropic frame ``R`` (:func:`principal_frame`): the rotation that minimises
   the non-orthotropic part of the rotated target, from the eigenvectors of ``C_ijkk`` and a few
   other starts. What is left off-orthotropic no spinodoid has (their cells are orthotropic in
   the frame of their cones); it is reported as ``residual``.
2. ``n_draws`` designs from the inverse model for the target's nine constants in that frame, each
   refined through the forward model (gradient descent on ``rho`` and the open angles, the open
   cones fixed) to the smallest predicted Mandel error.
3. The ``top_k`` best distinct designs are FE-verified: ``realisations`` cells (wave sets) of each
   are voxelised at :data:`~graded.inverse.spinodoid.dataset.RESOLUTION`, homogenized and rotated
   by ``R``. A spinodoid design is a random field: one cell of five wavelengths scatters by 5-15 %
   from the next (more at low density and narrow cones), so the design's stiffness is the mean
   over its cells (its expected stiffness, what a part of many cells has), and designs are ranked
   by the error of that mean. The cell closest to the target is kept with its wave seed (the part
   builds that cell at the control point); its own error is reported beside the mean's.
4. FE-corrected refinement (``corrections`` rounds): the forward model's bias at the best design
   (FE mean minus prediction) is added to the model, the design refined again through the
   corrected model, and the new design verified the same way; kept when its mean is closer.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from graded.elastic import from_9, rotate_voigt, to_9
from graded.elastic.metrics import MANDEL_W66, nmse, relative_error, relative_frobenius
from graded.elastic.rotation import rotation_from_6d
from graded.spinodoid import SpinodoidDesign, generate_cell, sample_waves
from graded.spinodoid.field import WaveSet
from graded.validation import check_count, fail

from ..design import POOR_MATCH, PoorMatchWarning, TargetOutOfReachWarning, parse_target
from .dataset import RESOLUTION, SPINODOID_BOUNDS
from .model import SpinodoidForward, SpinodoidInverse

__all__ = [
    "WEIGHTS_DIR",
    "SpinodoidDesignResult",
    "principal_frame",
    "design_spinodoid",
    "default_spinodoid_models",
    "load_spinodoid_forward",
    "load_spinodoid_inverse",
    "regenerate_waves",
    "cell_stiffness",
]

Progress = Callable[[int, int, str], None]

#: The shipped spinodoid weights (package data).
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
#: Non-orthotropic entries of a Voigt stiffness (upper triangle).
_OFF = np.zeros((6, 6), dtype=bool)
for _i, _j in [(0, 3), (0, 4), (0, 5), (1, 3), (1, 4), (1, 5), (2, 3), (2, 4), (2, 5), (3, 4), (3, 5), (4, 5)]:
    _OFF[_i, _j] = _OFF[_j, _i] = True
#: Extra starts of the frame search (random rotations), for targets whose C_ijkk is degenerate.
FRAME_STARTS = 12
#: Gradient steps of the refinement through the forward model.
POLISH_STEPS = 150
#: Two designs closer than this (rho and theta / 90, max-norm) are the same design.
SAME_DESIGN = 0.01
#: Targets within this factor of the training labels' range of Mandel norms count as reachable.
REACH_MARGIN = 1.25
#: FE cells per verified design: their mean is the design's stiffness (the standard error of the
#: mean falls as 1/sqrt(n); 8 cells bring a 10 % cell-to-cell scatter to 3.5 %).
REALISATIONS = 8
#: Rounds of FE-corrected refinement of the best design.
CORRECTIONS = 1


def _off_norm(C: np.ndarray) -> float:
    return float(np.linalg.norm((C * MANDEL_W66)[_OFF]))


def _axis_angle(v: np.ndarray) -> np.ndarray:
    a = float(np.linalg.norm(v))
    if a < 1e-15:
        return np.eye(3)
    k = v / a
    K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + math.sin(a) * K + (1 - math.cos(a)) * K @ K


def principal_frame(C: np.ndarray, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray, float]:
    """The orthotropic frame of a stiffness.

    Parameters
    ----------
    C : ndarray, shape (6, 6)
        Voigt stiffness (any units).

    Returns
    -------
    R : ndarray, shape (3, 3)
        Proper rotation, columns the principal axes in the frame of ``C``.
    C_principal : ndarray, shape (6, 6)
        ``C`` in that frame: ``rotate_voigt(C_principal, R) == C``.
    residual : float
        Relative Mandel norm of the non-orthotropic part of ``C_principal`` (0 for an
        orthotropic ``C``).
    """
    from scipy.optimize import minimize

    from ..inverse_model import canonical_frame

    C = np.asarray(C, dtype=np.float64)
    Q0 = canonical_frame(torch.as_tensor(C))[0].numpy()
    rng = np.random.default_rng(seed)
    starts = [Q0] + [rotation_from_6d(rng.standard_normal(6)) for _ in range(FRAME_STARTS)]
    scale = float(np.linalg.norm(C * MANDEL_W66))

    def cost(v, Q):
        R = Q @ _axis_angle(v)
        return _off_norm(rotate_voigt(C, R.T)) ** 2 / scale**2

    best = (math.inf, Q0)
    for Q in starts:
        r = minimize(cost, np.zeros(3), args=(Q,), method="BFGS", options={"gtol": 1e-12, "maxiter": 200})
        if r.fun < best[0] - 1e-14:
            best = (float(r.fun), Q @ _axis_angle(r.x))
    R = best[1]
    if np.linalg.det(R) < 0:  # pragma: no cover - products of rotations stay proper
        R[:, 2] *= -1
    Cp = rotate_voigt(C, R.T)
    return R, 0.5 * (Cp + Cp.T), math.sqrt(max(best[0], 0.0))


@dataclass
class SpinodoidDesignResult:
    """One proposed spinodoid cell.

    Attributes
    ----------
    rank : int
        0 = best (by FE error when verified, else by predicted error).
    design : SpinodoidDesign
        ``rho``, ``theta`` (degrees), ``R`` (the target's principal frame), wavelength, waves.
    wave_seed : int or None
        Seed of the verified realisation (``numpy.random.default_rng(wave_seed)`` draws its
        waves); None when not verified.
    waves : WaveSet or None
        The verified realisation's waves.
    C_pred, C_fe : (6, 6) float
        Forward-model stiffness and the mean FE stiffness of the design's cells, in the target's
        frame, normalised by E_s (C_fe None when not verified).
    error_pred, error_fe : float
        Relative Mandel-norm error against the target (rotation invariant).
    frobenius_fe, nmse_fe : float
        Relative Frobenius error of the Voigt matrices (the build report's error) and NMSE.
    C_cell, error_cell, frobenius_cell : (6, 6) float, float, float
        FE stiffness of the kept cell (the one closest to the target) and its errors.
    density_fe : float
        Solid fraction of the kept voxel cell.
    C_realisations : ndarray, shape (realisations, 6, 6)
        FE stiffness of every cell homogenized (``C_fe`` is their mean).
    realisation_errors : list of float
        Mandel error of every cell (their spread is the seed-to-seed scatter).
    scatter : float
        Median relative Mandel distance of a cell from the mean (the realisation scatter).
    corrected : bool
        The design came from the FE-corrected refinement.
    residual : float
        Non-orthotropic share of the target (what no spinodoid has).
    """

    rank: int
    design: SpinodoidDesign
    C_pred: np.ndarray
    error_pred: float
    residual: float
    wave_seed: int | None = None
    waves: WaveSet | None = None
    C_fe: np.ndarray | None = None
    error_fe: float | None = None
    frobenius_fe: float | None = None
    nmse_fe: float | None = None
    density_fe: float | None = None
    C_cell: np.ndarray | None = None
    error_cell: float | None = None
    frobenius_cell: float | None = None
    C_realisations: np.ndarray | None = None
    realisation_errors: list[float] | None = None
    scatter: float | None = None
    corrected: bool = False

    @property
    def error(self) -> float:
        """FE error when verified, else the predicted one."""
        return self.error_fe if self.error_fe is not None else self.error_pred


def load_spinodoid_forward(stem=None) -> SpinodoidForward:
    """Load a spinodoid forward model (default: the shipped one), checked like every weights file."""
    from ..weights import load_model
    from .model import SpinodoidForwardConfig

    return load_model(WEIGHTS_DIR / "forward" if stem is None else stem, "spinodoid-forward",
                      SpinodoidForwardConfig, SpinodoidForward)


def load_spinodoid_inverse(stem=None) -> SpinodoidInverse:
    """Load a spinodoid inverse model (default: the shipped one)."""
    from ..weights import load_model
    from .model import SpinodoidInverseConfig

    return load_model(WEIGHTS_DIR / "inverse" if stem is None else stem, "spinodoid-inverse",
                      SpinodoidInverseConfig, SpinodoidInverse)


@functools.lru_cache(maxsize=1)
def default_spinodoid_models() -> tuple[SpinodoidInverse, SpinodoidForward]:
    """The shipped (inverse, forward) spinodoid models, loaded once per process."""
    return load_spinodoid_inverse(), load_spinodoid_forward()


def _polish(forward: SpinodoidForward, target9: np.ndarray, rho: np.ndarray, theta: np.ndarray,
            steps: int, bias9: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Refine designs (n,) through the forward model (plus ``bias9``, shape (9,), if given); open
    cones fixed. Returns rho, theta, error."""
    lo, hi = forward.config.rho_range
    is_open = theta > 0
    u_r = torch.logit(torch.as_tensor((np.clip(rho, lo + 1e-4, hi - 1e-4) - lo) / (hi - lo)))
    u_t = torch.logit(torch.as_tensor((np.clip(np.where(is_open, theta, 45.0), 15.01, 89.99) - 15.0) / 75.0))
    u_r, u_t = u_r.float().requires_grad_(True), u_t.float().requires_grad_(True)
    o = torch.as_tensor(is_open, dtype=torch.float32)
    w = torch.as_tensor(MANDEL_W66[np.array([0, 0, 0, 1, 1, 2, 3, 4, 5]), np.array([0, 1, 2, 1, 2, 2, 3, 4, 5])],
                        dtype=torch.float32)
    # off-diagonal normal constants appear twice in the full matrix
    mult = torch.as_tensor([1.0, 2, 2, 1, 2, 1, 1, 1, 1]).sqrt()
    t9 = torch.as_tensor(target9, dtype=torch.float32)
    norm = torch.linalg.norm(t9 * w * mult)
    b9 = torch.zeros(9) if bias9 is None else torch.as_tensor(bias9, dtype=torch.float32)

    def err():
        r = lo + (hi - lo) * torch.sigmoid(u_r)
        t = (15.0 + 75.0 * torch.sigmoid(u_t)) / 90.0
        x = torch.cat([r[:, None], o, o * t], dim=1)
        return torch.linalg.norm((forward(x) + b9 - t9) * w * mult, dim=1) / norm

    opt = torch.optim.Adam([u_r, u_t], lr=0.05)
    for _ in range(steps):
        loss = err().sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        e = err().double().numpy()
        r = (lo + (hi - lo) * torch.sigmoid(u_r)).double().numpy()
        t = (15.0 + 75.0 * torch.sigmoid(u_t)).double().numpy()
    return r, np.where(is_open, t, 0.0), e


def _distinct(rho, theta, order, k) -> list[int]:
    chosen: list[int] = []
    key = np.concatenate([rho[:, None], theta / 90.0], axis=1)
    for i in order:
        if all(np.max(np.abs(key[i] - key[j])) > SAME_DESIGN or ((theta[i] > 0) != (theta[j] > 0)).any()
               for j in chosen):
            chosen.append(int(i))
        if len(chosen) == k:
            break
    return chosen


def design_spinodoid(
    target,
    *,
    E: float | None = None,
    units: str = "normalized",
    n_draws: int = 256,
    top_k: int = 3,
    realisations: int = REALISATIONS,
    corrections: int = CORRECTIONS,
    verify: bool = True,
    seed: int = 0,
    wavelength: float = SPINODOID_BOUNDS["wavelength"],
    n_waves: int = SPINODOID_BOUNDS["n_waves"],
    models: tuple[SpinodoidInverse, SpinodoidForward] | None = None,
    progress: Progress | None = None,
) -> list[SpinodoidDesignResult]:
    """Propose spinodoid cells whose stiffness matches ``target``.

    Parameters
    ----------
    target : array_like
        21 constants or a 6x6 Voigt matrix (:func:`graded.inverse.design.parse_target`).
    E, units
        As for trusses: ``units="GPa"`` divides by the base material's ``E`` (GPa).
    n_draws : int
        Designs drawn from the inverse model (each refined through the forward model).
    top_k : int
        Distinct designs returned (and FE-verified if ``verify``).
    realisations : int
        Cells (wave sets) of each returned design homogenized; their mean is the design's
        stiffness, and the cell closest to the target is kept.
    corrections : int
        Rounds of FE-corrected refinement of the best design (each costs ``realisations`` cells).
    verify : bool
        Homogenize by voxel FE (about 2-10 s per cell on one core).
    seed : int
        Seeds the draws and the wave sets (same seed, same results).
    wavelength, n_waves
        Of the cells (cell units); the models were trained at the defaults.
    models : (inverse, forward), optional
        Default: the shipped ones.
    progress : callable, optional
        ``progress(done, total, message)`` per FE cell.

    Examples
    --------
    >>> from graded.inverse.spinodoid import design_spinodoid
    >>> best = design_spinodoid(target, realisations=8)[0]        # doctest: +SKIP
    >>> best.error_fe, best.error_cell, best.scatter              # doctest: +SKIP

    Returns
    -------
    list of SpinodoidDesignResult
        Best first.
    """
    for name, value, lo in (("n_draws", n_draws, 1), ("top_k", top_k, 1), ("realisations", realisations, 1),
                            ("corrections", corrections, 0)):
        check_count(name, value, lo)
    C = parse_target(target, E=E, units=units)
    inverse, forward = models if models is not None else default_spinodoid_models()
    size = float(np.linalg.norm(C * MANDEL_W66))
    lo, hi = forward.config.reach
    if not lo / REACH_MARGIN <= size <= hi * REACH_MARGIN:
        side = "softer" if size < lo / REACH_MARGIN else "stiffer"
        warnings.warn(TargetOutOfReachWarning(
            f"the target (Mandel norm {size:.3g} E_s) is {side} than any spinodoid of the design space "
            f"(rho {forward.config.rho_range[0]:g}-{forward.config.rho_range[1]:g}: {lo:.3g}-{hi:.3g} E_s); "
            "the designs returned are the nearest the models reach"), stacklevel=2)
    R, Cp, residual = principal_frame(C, seed=seed)
    t9 = to_9(Cp)
    gen = torch.Generator().manual_seed(seed)
    rho, theta = inverse.draw(t9, n_draws, gen)
    rho, theta, err = _polish(forward, t9, rho[0], theta[0], POLISH_STEPS)
    order = np.argsort(err)
    picks = _distinct(rho, theta, order, top_k)

    def result(rank, r, t, corrected=False):
        c9 = forward.predict(np.array([r]), np.array([t]))[0]
        C_pred = rotate_voigt(from_9(c9), R)
        d = SpinodoidDesign(rho=float(r), theta=tuple(float(x) for x in t), R=R, wavelength=wavelength,
                            n_waves=n_waves)
        return SpinodoidDesignResult(rank=rank, design=d, C_pred=C_pred, error_pred=float(relative_error(C, C_pred)),
                                     residual=residual, corrected=corrected)

    results = [result(rank, rho[i], theta[i]) for rank, i in enumerate(picks)]
    if verify:
        total = (len(results) + corrections) * realisations
        state = {"done": 0}

        def tell(k, r):
            state["done"] += 1
            if progress is not None:
                progress(state["done"], total, f"FE of design {k + 1}, cell {r + 1}")

        for k, res in enumerate(results):
            _verify(res, C, seed, k, realisations, tell)
        results.sort(key=lambda r: r.error)
        for c in range(corrections):
            best = results[0]
            d = best.design
            bias9 = to_9(rotate_voigt(best.C_fe, R.T)) - forward.predict(np.array([d.rho]), np.array([d.theta]))[0]
            r2, t2, _ = _polish(forward, t9, np.array([d.rho]), np.array([d.theta]), POLISH_STEPS, bias9=bias9)
            key = np.concatenate([[r2[0] - d.rho], (t2[0] - np.asarray(d.theta)) / 90.0])
            if np.max(np.abs(key)) <= SAME_DESIGN / 10:
                break  # the corrected model agrees with FE at this design
            res = result(0, r2[0], t2[0], corrected=True)
            _verify(res, C, seed, len(picks) + c, realisations, tell)
            results.append(res)
            results.sort(key=lambda r: r.error)
        for rank, res in enumerate(results):
            res.rank = rank
    if not results:  # pragma: no cover - top_k >= 1 always picks one
        fail("target", "no spinodoid design was found", None)
    if results[0].error > POOR_MATCH:
        warnings.warn(PoorMatchWarning(
            f"the best spinodoid differs from the target by {100 * results[0].error:.0f} % (relative Mandel norm"
            f"{', by FE' if results[0].error_fe is not None else ', predicted'}); spinodoids do not reach it "
            "(try --family truss)"), stacklevel=2)
    return results


def cell_stiffness(design: SpinodoidDesign, rng: np.random.Generator, resolution: int = RESOLUTION):
    """One cell of ``design`` and its periodic voxel-FE stiffness.

    Returns
    -------
    cell : SpinodoidCell
        Drawn with ``rng`` and voxelised at ``resolution`` (islands removed).
    C : ndarray, shape (6, 6), float64
        Normalised by E_s (nu_s = 0.3), symmetrised, in the frame of ``design.R``.
    """
    from graded.fem import homogenize_voxels

    cell = generate_cell(design, resolution, rng)
    C = homogenize_voxels(cell.solid).C[0]
    return cell, 0.5 * (C + C.T)


def _verify(res: SpinodoidDesignResult, C: np.ndarray, seed: int, k: int, realisations: int, tell) -> None:
    """Homogenize ``realisations`` cells of ``res.design``; fill its FE fields (in place)."""
    cells, Cs = [], []
    for r in range(realisations):
        wave_seed = int(np.random.SeedSequence(seed, spawn_key=(k, r)).generate_state(1)[0])
        cell, C_fe = cell_stiffness(res.design, np.random.default_rng(wave_seed))
        cells.append((wave_seed, cell))
        Cs.append(C_fe)
        tell(k, r)
    Cs = np.array(Cs)
    errors = [float(relative_error(C, c)) for c in Cs]
    j = int(np.argmin(errors))
    C_mean = Cs.mean(axis=0)
    norm = float(np.linalg.norm(C_mean * MANDEL_W66))
    res.C_realisations, res.realisation_errors = Cs, errors
    res.scatter = float(np.median([np.linalg.norm((c - C_mean) * MANDEL_W66) / norm for c in Cs]))
    res.C_fe, res.error_fe = C_mean, float(relative_error(C, C_mean))
    res.frobenius_fe, res.nmse_fe = float(relative_frobenius(C, C_mean)), float(nmse(C, C_mean))
    res.wave_seed, cell = cells[j]
    res.waves, res.density_fe = cell.waves, cell.density
    res.C_cell, res.error_cell = Cs[j], errors[j]
    res.frobenius_cell = float(relative_frobenius(C, Cs[j]))


def regenerate_waves(res: SpinodoidDesignResult) -> WaveSet:
    """The verified realisation's waves from its seed (equal to ``res.waves``)."""
    if res.wave_seed is None:
        fail("wave_seed", "the design was not verified", "call design_spinodoid with verify=True")
    return sample_waves(res.design, np.random.default_rng(res.wave_seed))
