"""Polishing designs against the FE solver itself (Levenberg-Marquardt).

The forward surrogate is accurate to a few percent; gradient descent through it
(:func:`~graded.inverse.refine.refine_designs`) can therefore only bring a design as close
to the target as the surrogate is to the truth, and it tends to exploit the surrogate's
errors. :func:`polish_designs` instead minimises the *FE* misfit

.. math:: f(p) = \\frac{\\|M(C_{FE}(p) - C_t)\\|_F^2}{\\|M(C_t)\\|_F^2}

(M: Mandel form; rotation invariant, the relative error of the elastic surface) over the
continuous parameters of each design, topology fixed, by Levenberg-Marquardt with a
forward-difference Jacobian:

* ``rho``, ``U``, ``V`` through a logistic map onto their Table S1 ranges (the bounds can
  never be left), ``R_I`` and ``R_II`` through rotation-vector increments
  ``R <- exp([w]) R``;
* the 10 columns of ``rho``, ``U``, ``V``, ``R_I`` need one FE solve each, the 3 columns of
  ``R_II`` none (``C = K(R_II) C_hat K(R_II)^T`` is exact), so an iteration costs 11 FE
  solves per design plus one for the trial step; all designs of a call are solved
  together, batched per topology.

Every accepted step lowers the FE misfit, so the result is never worse than the input.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.spatial.transform import Rotation

from graded.elastic import rotate_voigt
from graded.elastic.metrics import MANDEL_W66

from .oracle import fe_stiffness
from .scaling import RHO_RANGE, STRETCH_RANGE

__all__ = ["polish_designs", "FD_STEP", "LOGIT_CLIP", "MAX_DAMPING_TRIES"]

Progress = Callable[[int, int, str], None]

#: Forward-difference step in the unconstrained parameters. The FE solve is exact to
#: ~1e-13 relative, so truncation (~h) and round-off (~1e-13 / h) errors balance near
#: 1e-6; 1e-6 keeps the Jacobian accurate to ~1e-6 relative, far below what LM needs.
FD_STEP = 1e-6
#: Logistic parameters are kept in [-LOGIT_CLIP, LOGIT_CLIP]: a parameter at its Table S1
#: bound then still has a usable derivative (sigma' = 2e-7 at 15 would stall it; 9 gives 1e-4).
LOGIT_CLIP = 9.0

#: Damping increases (x10 each, from the last accepted damping) tried on one Jacobian
#: before a design is declared converged: 7 spans lam from ~1e-3 to ~1e4, i.e. from a
#: Gauss-Newton step down to a short scaled-gradient step, which descends unless the
#: design sits at a (local) minimum.
MAX_DAMPING_TRIES = 7

_IU = np.triu_indices(6)
#: weights of the 21 upper-triangle entries so that sum(r^2) = ||M(.)||_F^2
_W21 = (MANDEL_W66 * np.where(np.eye(6, dtype=bool), 1.0, np.sqrt(2.0)))[_IU]


def _logit(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    p = np.clip((np.asarray(x, dtype=np.float64) - lo) / (hi - lo), 1e-12, 1 - 1e-12)
    return np.clip(np.log(p / (1 - p)), -LOGIT_CLIP, LOGIT_CLIP)


def _expit(q: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return lo + (hi - lo) / (1.0 + np.exp(-q))


def _spin(w: np.ndarray) -> np.ndarray:
    """Rotation matrices exp([w]) of rotation vectors (..., 3)."""
    w = np.asarray(w, dtype=np.float64)
    return Rotation.from_rotvec(w.reshape(-1, 3)).as_matrix().reshape(w.shape[:-1] + (3, 3))


def _unpack(q: np.ndarray, R1: np.ndarray):
    """Unconstrained parameters (n, 10) -> rho, U, V, R_I (R_I perturbed by q[:, 7:10])."""
    rho = _expit(q[:, 0], *RHO_RANGE)
    U = _expit(q[:, 1:4], *STRETCH_RANGE)
    V = _expit(q[:, 4:7], *STRETCH_RANGE)
    return rho, U, V, _spin(q[:, 7:10]) @ R1


def _c_hat(topology, q, R1, fe) -> np.ndarray:
    """FE stiffness (n, 6, 6) of the cells ``V R_I U X`` (before R_II)."""
    rho, U, V, R = _unpack(q, R1)
    eye = np.broadcast_to(np.eye(3), R.shape)
    return fe(topology, rho, U, V, R, eye)


def _residual(C: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(..., 21) weighted residual with ``sum r^2 = ||M(C - target)||^2 / ||M(target)||^2``."""
    scale = np.linalg.norm(target * MANDEL_W66, axis=(-2, -1))[..., None]
    return (C - target)[..., _IU[0], _IU[1]] * _W21 / scale


def polish_designs(
    target: np.ndarray,
    cand: dict[str, np.ndarray],
    *,
    iterations: int = 10,
    rtol: float = 1e-4,
    fe: Callable | None = None,
    progress: Progress | None = None,
) -> dict[str, np.ndarray]:
    """Levenberg-Marquardt on the FE misfit of designs (module docstring).

    Parameters
    ----------
    target : (6, 6) or (k, 6, 6) float
        Normalised target stiffness, one for all designs or one per design.
    cand : dict
        Arrays ``topology`` (k, 3, 2), ``rho`` (k,), ``U``, ``V`` (k, 3), ``R1``, ``R2``
        (k, 3, 3).
    iterations : int
        Jacobian evaluations per design at most (each costs 10 FE solves per design).
    rtol : float
        A design stops once an accepted step lowers its relative error by less than
        this fraction.
    fe : callable, optional
        ``fe(topology, rho, U, V, R1, R2) -> (n, 6, 6)``; default
        :func:`graded.inverse.oracle.fe_stiffness`.
    progress : callable, optional
        ``progress(done, total, message)`` once per iteration.

    Returns
    -------
    dict
        The polished ``topology``, ``rho``, ``U``, ``V``, ``R1``, ``R2``, their FE stiffness
        ``C_fe`` (k, 6, 6) and relative error ``error`` (k,), plus ``error_start`` (k,),
        the FE relative error of the input designs.
    """
    if fe is None:
        fe = fe_stiffness
    topo = np.asarray(cand["topology"])
    k = topo.shape[0]
    target = np.broadcast_to(np.asarray(target, dtype=np.float64), (k, 6, 6))
    q = np.concatenate([
        _logit(cand["rho"], *RHO_RANGE)[:, None],
        _logit(cand["U"], *STRETCH_RANGE),
        _logit(cand["V"], *STRETCH_RANGE),
        np.zeros((k, 3)),
    ], axis=1)
    R1 = np.asarray(cand["R1"], dtype=np.float64).copy()
    R2 = np.asarray(cand["R2"], dtype=np.float64).copy()
    Ch = _c_hat(topo, q, R1, fe)
    C = rotate_voigt(Ch, R2)
    r = _residual(C, target)
    cost = (r * r).sum(-1)
    cost0 = cost.copy()
    lam = np.full(k, 1e-3)
    active = np.ones(k, dtype=bool)
    eye10 = np.eye(10)
    for it in range(int(iterations)):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        m = idx.size
        # --- Jacobian: 10 FE columns by forward differences, 3 R_II columns exactly
        qp = np.repeat(q[idx, None, :], 10, axis=1) + FD_STEP * eye10
        Chp = _c_hat(np.repeat(topo[idx], 10, axis=0), qp.reshape(-1, 10), np.repeat(R1[idx], 10, axis=0), fe)
        Cp = rotate_voigt(Chp.reshape(m, 10, 6, 6), R2[idx, None])
        J = np.empty((m, 21, 13))
        J[:, :, :10] = np.moveaxis((_residual(Cp, target[idx, None]) - r[idx, None]) / FD_STEP, 1, 2)
        for a in range(3):
            w = np.zeros((m, 3))
            w[:, a] = FD_STEP
            Cw = rotate_voigt(Ch[idx], _spin(w) @ R2[idx])
            J[:, :, 10 + a] = (_residual(Cw, target[idx]) - r[idx]) / FD_STEP
        JtJ = J.transpose(0, 2, 1) @ J
        g = (J.transpose(0, 2, 1) @ r[idx][..., None])[..., 0]
        # --- damped steps; up to MAX_DAMPING_TRIES damping increases without a new Jacobian
        todo = np.ones(m, dtype=bool)
        improved = np.zeros(m, dtype=bool)
        for _ in range(MAX_DAMPING_TRIES):
            sel = np.flatnonzero(todo)
            if sel.size == 0:
                break
            ii = idx[sel]
            D = np.einsum("nii->ni", JtJ[sel]) + 1e-12
            A = JtJ[sel] + lam[ii, None, None] * np.einsum("ni,ij->nij", D, np.eye(13))
            step = -np.linalg.solve(A, g[sel][..., None])[..., 0]
            q_new = q[ii].copy()
            q_new[:, :7] = np.clip(q_new[:, :7] + step[:, :7], -LOGIT_CLIP, LOGIT_CLIP)
            q_new[:, 7:10] = step[:, 7:10]
            R1_new = _spin(q_new[:, 7:10]) @ R1[ii]
            q_new[:, 7:10] = 0.0
            R2_new = _spin(step[:, 10:13]) @ R2[ii]
            Ch_new = _c_hat(topo[ii], q_new, R1_new, fe)
            C_new = rotate_voigt(Ch_new, R2_new)
            r_new = _residual(C_new, target[ii])
            cost_new = (r_new * r_new).sum(-1)
            ok = cost_new < cost[ii]
            acc = ii[ok]
            rel_gain = 1.0 - np.sqrt(cost_new[ok] / np.maximum(cost[acc], 1e-300))
            q[acc], R1[acc], R2[acc] = q_new[ok], R1_new[ok], R2_new[ok]
            Ch[acc], C[acc], r[acc], cost[acc] = Ch_new[ok], C_new[ok], r_new[ok], cost_new[ok]
            lam[acc] = np.maximum(lam[acc] / 3.0, 1e-9)
            lam[ii[~ok]] *= 10.0
            active[acc[rel_gain < rtol]] = False
            improved[sel[ok]] = True
            todo[sel[ok]] = False
        active[idx[~improved]] = False  # no descent even with heavy damping: at a minimum
        if progress is not None:
            progress(it + 1, int(iterations), f"FE polish {it + 1}/{iterations}: median error "
                                              f"{np.median(np.sqrt(cost)):.2%}")
    rho, U, V, R1f = _unpack(q, R1)
    return {
        "topology": topo.copy(),
        "rho": rho,
        "U": U,
        "V": V,
        "R1": R1f,
        "R2": R2,
        "C_fe": C,
        "error": np.sqrt(cost),
        "error_start": np.sqrt(cost0),
    }
