"""Inverse design of spinodoid cells for a target stiffness, verified by voxel FE.

1. The target's orthotropic frame ``R`` (:func:`principal_frame`): the rotation that minimises
   the non-orthotropic part of the rotated target, from the eigenvectors of ``C_ijkk`` and a few
   other starts. What is left off-orthotropic no spinodoid has (their cells are orthotropic in
   the frame of their cones); it is reported as ``residual``.
2. ``n_draws`` designs from the inverse model for the target's nine constants in that frame, each
   refined through the forward model (gradient descent on ``rho`` and the open angles, the open
   cones fixed) to the smallest predicted Mandel error.
3. The ``top_k`` best distinct designs are FE-verified: ``realisations`` cells (wave sets) of each
   are voxelised at :data:`~graded.inverse.spinodoid.dataset.RESOLUTION`, homogenized, rotated by
   ``R``, and the best realisation is kept with its wave seed (the part builds that cell).
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
        Forward-model and FE stiffness in the target's frame, normalised by E_s (C_fe None
        when not verified).
    error_pred, error_fe : float
        Relative Mandel-norm error against the target (rotation invariant).
    frobenius_fe, nmse_fe : float
        Relative Frobenius error of the Voigt matrices (the build report's error) and NMSE.
    density_fe : float
        Solid fraction of the verified voxel cell.
    realisation_errors : list of float
        Mandel error of every realisation tried (their spread is the seed-to-seed scatter).
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
    realisation_errors: list[float] | None = None

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
            steps: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Refine designs (n,) through the forward model; open cones fixed. Returns rho, theta, error."""
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

    def err():
        r = lo + (hi - lo) * torch.sigmoid(u_r)
        t = (15.0 + 75.0 * torch.sigmoid(u_t)) / 90.0
        x = torch.cat([r[:, None], o, o * t], dim=1)
        return torch.linalg.norm((forward(x) - t9) * w * mult, dim=1) / norm

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
    realisations: int = 4,
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
        Cells (wave sets) of each returned design homogenized; the best is kept.
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

    Returns
    -------
    list of SpinodoidDesignResult
        Best first.
    """
    from graded.fem import homogenize_voxels

    for name, value, lo in (("n_draws", n_draws, 1), ("top_k", top_k, 1), ("realisations", realisations, 1)):
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
    C9_pred = forward.predict(rho[picks], theta[picks])
    results = []
    total = len(picks) * realisations
    for rank, (i, c9) in enumerate(zip(picks, C9_pred)):
        C_pred = rotate_voigt(from_9(c9), R)
        d = SpinodoidDesign(rho=float(rho[i]), theta=tuple(float(t) for t in theta[i]), R=R,
                            wavelength=wavelength, n_waves=n_waves)
        results.append(SpinodoidDesignResult(rank=rank, design=d, C_pred=C_pred,
                                             error_pred=float(relative_error(C, C_pred)), residual=residual))
    if verify:
        done = 0
        for k, res in enumerate(results):
            tried = []
            for r in range(realisations):
                wave_seed = int(np.random.SeedSequence(seed, spawn_key=(k, r)).generate_state(1)[0])
                cell = generate_cell(res.design, RESOLUTION, np.random.default_rng(wave_seed))
                C_fe = homogenize_voxels(cell.solid).C[0]
                C_fe = 0.5 * (C_fe + C_fe.T)
                tried.append((float(relative_error(C, C_fe)), wave_seed, cell, C_fe))
                done += 1
                if progress is not None:
                    progress(done, total, f"FE of design {k + 1}, cell {r + 1}")
            e, wave_seed, cell, C_fe = min(tried, key=lambda t: t[0])
            res.wave_seed, res.waves, res.C_fe, res.error_fe = wave_seed, cell.waves, C_fe, e
            res.frobenius_fe = float(relative_frobenius(C, C_fe))
            res.nmse_fe = float(nmse(C, C_fe))
            res.density_fe = cell.density
            res.realisation_errors = [t[0] for t in tried]
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


def regenerate_waves(res: SpinodoidDesignResult) -> WaveSet:
    """The verified realisation's waves from its seed (equal to ``res.waves``)."""
    if res.wave_seed is None:
        fail("wave_seed", "the design was not verified", "call design_spinodoid with verify=True")
    return sample_waves(res.design, np.random.default_rng(res.wave_seed))
