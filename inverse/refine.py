"""Refining designs: the continuous parameters of a topology moved towards the target.

Two stages, both with the topology fixed:

* :func:`refine_designs` -- gradient descent through the forward surrogate (cheap, no FE;
  only as good as the surrogate);
* :func:`~graded.inverse.polish.polish_designs` -- Levenberg-Marquardt on the FE misfit
  itself.

:func:`improve_designs` chains them as ``graded design`` and ``graded evaluate inverse
--refine`` use them: a refined or polished design replaces its original only where it is
closer to the target (by FE when verifying), so the result is never worse than the input.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import numpy as np
import torch

from graded.elastic import nmse, rotation_to_6d
from graded.elastic import torch as et
from graded.elastic.metrics import MANDEL_W66, relative_error

from .draw import orthonormalize
from .forward import ForwardModel, topology_onehot
from .oracle import fe_stiffness
from .polish import polish_designs
from .scaling import RHO_RANGE, STRETCH_RANGE

__all__ = ["refine_designs", "improve_designs", "final_polish", "replace_where", "POLISH_ITERATIONS",
           "FINAL_ITERATIONS", "FINAL_RTOL", "DESIGN_KEYS"]

Progress = Callable[[int, int, str], None]

#: Levenberg-Marquardt iterations of the FE polish (each costs 11 FE solves per design;
#: most designs converge in 5-8).
POLISH_ITERATIONS = 10
#: Further Levenberg-Marquardt iterations of the final polish of the best few designs: after
#: :data:`POLISH_ITERATIONS` some good designs are still descending (a bone-like target
#: measured: 4.96 % after 10 iterations, 3.05 % after 30 more).
FINAL_ITERATIONS = 30
#: Relative progress below which the final polish stops (the first polish: 1e-4).
FINAL_RTOL = 1e-6
#: The arrays that make a design (dataset-style, leading axis = designs).
DESIGN_KEYS = ("topology", "rho", "U", "V", "R1", "R2")


def replace_where(pick: dict, other: dict, mask: np.ndarray) -> None:
    """Replace, in place, the designs of ``pick`` where ``mask`` (k,) by those of ``other``
    (every array of ``pick`` that ``other`` also has)."""
    for k in pick:
        if k in other:
            m = mask.reshape((-1,) + (1,) * (np.ndim(pick[k]) - 1))
            pick[k] = np.where(m, other[k], pick[k])


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def refine_designs(
    forward: ForwardModel,
    target: np.ndarray,
    cand: dict[str, np.ndarray],
    *,
    steps: int = 200,
    lr: float = 0.02,
    loss: str = "mandel",
    dtype: torch.dtype = torch.float64,
) -> dict[str, np.ndarray]:
    """Gradient descent on the continuous parameters of designs (topology fixed).

    Minimises the NMSE (main Eq. 8) -- or with ``loss="mandel"`` the squared relative
    Mandel-norm error -- predicted by ``forward`` over rho, U, V (through a sigmoid into
    the Table S1 ranges) and R_I, R_II (6D representation). ``target`` may be one (6, 6)
    matrix or one per design (k, 6, 6).

    Parameters
    ----------
    forward : ForwardModel
    target : (6, 6)
    cand : dict
        Arrays ``topology`` (k, 3, 2), ``rho`` (k,), ``U``, ``V`` (k, 3), ``R1``, ``R2`` (k, 3, 3).
    steps, lr : int, float
        Adam steps and step size (in the unconstrained parameters).
    loss : {"nmse", "mandel"}
    dtype : torch.dtype
        Precision of the descent. float64 (default) for a few designs; float32 is about
        twice as fast for many (the rotations are re-orthonormalised in float64 on return).

    Returns
    -------
    dict
        The refined arrays, plus ``C_pred`` (k, 6, 6) and ``nmse`` (k,).
    """
    fwd = copy.deepcopy(forward).to(dtype).eval()
    for p in fwd.parameters():
        p.requires_grad_(False)
    z = topology_onehot(cand["topology"], dtype)
    lo_s, hi_s = STRETCH_RANGE
    p_rho = torch.tensor(_logit((cand["rho"] - RHO_RANGE[0]) / (RHO_RANGE[1] - RHO_RANGE[0])), dtype=dtype)
    p_U = torch.tensor(_logit((cand["U"] - lo_s) / (hi_s - lo_s)), dtype=dtype)
    p_V = torch.tensor(_logit((cand["V"] - lo_s) / (hi_s - lo_s)), dtype=dtype)
    p_R1 = torch.tensor(rotation_to_6d(cand["R1"]), dtype=dtype)
    p_R2 = torch.tensor(rotation_to_6d(cand["R2"]), dtype=dtype)
    params = [p.requires_grad_(True) for p in (p_rho, p_U, p_V, p_R1, p_R2)]
    tgt = torch.as_tensor(np.asarray(target), dtype=dtype)
    nz = tgt != 0
    denom = torch.where(nz, tgt, torch.ones_like(tgt)).square()
    opt = torch.optim.Adam(params, lr=lr)

    def unpack():
        rho = RHO_RANGE[0] + (RHO_RANGE[1] - RHO_RANGE[0]) * torch.sigmoid(p_rho)
        U = lo_s + (hi_s - lo_s) * torch.sigmoid(p_U)
        V = lo_s + (hi_s - lo_s) * torch.sigmoid(p_V)
        return rho, U, V, et.rotation_from_6d(p_R1), et.rotation_from_6d(p_R2)

    mw = torch.as_tensor(MANDEL_W66, dtype=dtype)
    tnorm = (tgt * mw).square().sum((-2, -1))

    def loss_of(C):
        if loss == "mandel":
            return ((C - tgt) * mw).square().sum((-2, -1)) / tnorm
        return torch.where(nz, (C - tgt).square() / denom, torch.zeros_like(C)).sum((-2, -1))

    for _ in range(steps):
        rho, U, V, R1, R2 = unpack()
        per = loss_of(fwd(z, rho, U, V, R1, R2))
        opt.zero_grad()
        per.sum().backward()
        opt.step()
    with torch.no_grad():
        rho, U, V, R1, R2 = unpack()
        C = fwd(z, rho, U, V, R1, R2)
        best = {
            "topology": np.asarray(cand["topology"]),
            "rho": rho.double().numpy().copy(),
            "U": U.double().numpy().copy(),
            "V": V.double().numpy().copy(),
            "R1": R1.double().numpy().copy(),
            "R2": R2.double().numpy().copy(),
            "C_pred": C.double().numpy().copy(),
        }
    if dtype != torch.float64:  # float32 round-off: rotations only nearly orthogonal, C nearly symmetric
        best["R1"], best["R2"] = orthonormalize(best["R1"]), orthonormalize(best["R2"])
        best["C_pred"] = 0.5 * (best["C_pred"] + np.swapaxes(best["C_pred"], -1, -2))
    best["nmse"] = nmse(np.broadcast_to(np.asarray(target), best["C_pred"].shape), best["C_pred"])
    return best


def improve_designs(
    forward: ForwardModel,
    target: np.ndarray,
    pick: dict[str, np.ndarray],
    *,
    verify: bool = True,
    iterations: int = POLISH_ITERATIONS,
    progress: Progress | None = None,
) -> np.ndarray:
    """Refine designs through the surrogate and, with ``verify``, polish them against FE.

    ``pick`` is updated in place: a design is replaced by its refined version where that
    has the lower relative Mandel-norm error (by FE with ``verify``, else predicted), then
    by its FE-polished version where the polish lowered the error.

    Parameters
    ----------
    forward : ForwardModel
    target : ndarray, shape (6, 6) or (k, 6, 6)
        Normalised target, one for all designs or one per design.
    pick : dict
        :data:`DESIGN_KEYS` arrays of k designs; with ``C_pred`` (k, 6, 6) the predicted
        stiffness (and ``nmse``) are kept up to date; with ``C_fe`` (k, 6, 6) (computed
        here if ``verify`` and missing) the FE stiffness.
    verify : bool
        Judge by FE and polish against FE; without it only the surrogate stage runs.
    iterations : int
        Levenberg-Marquardt iterations of the polish.
    progress : callable, optional
        ``progress(done, iterations, message)`` once per polish iteration.

    Returns
    -------
    ndarray, shape (k,), bool
        Designs changed by either stage.
    """
    ref = refine_designs(forward, target, pick, loss="mandel")
    if not verify:
        better = relative_error(target, ref["C_pred"]) < relative_error(target, pick["C_pred"])
        replace_where(pick, ref, better)
        return better
    if "C_fe" not in pick:
        pick["C_fe"] = fe_stiffness(*(pick[k] for k in DESIGN_KEYS))
    ref["C_fe"] = fe_stiffness(*(ref[k] for k in DESIGN_KEYS))
    better = relative_error(target, ref["C_fe"]) < relative_error(target, pick["C_fe"])
    replace_where(pick, ref, better)
    pol = polish_designs(target, pick, iterations=iterations, progress=progress)
    polished = pol["error"] < pol["error_start"]
    if "C_pred" in pick:
        pol["C_pred"] = forward.predict(*(pol[k] for k in DESIGN_KEYS))
        pol["nmse"] = nmse(np.broadcast_to(target, pol["C_pred"].shape), pol["C_pred"])
    replace_where(pick, pol, polished)
    return better | polished


def final_polish(forward: ForwardModel | None, target: np.ndarray, pick: dict[str, np.ndarray], idx,
                 *, iterations: int = FINAL_ITERATIONS, rtol: float = FINAL_RTOL,
                 progress: Progress | None = None) -> np.ndarray:
    """Polish designs ``idx`` of ``pick`` further against FE, in place; never worse.

    Parameters
    ----------
    forward : ForwardModel or None
        Keeps ``C_pred`` and ``nmse`` of ``pick`` up to date (if ``pick`` has them).
    target : (6, 6)
    pick : dict
        :data:`DESIGN_KEYS` and ``C_fe`` arrays of k designs.
    idx : array_like of int
        The designs to polish.
    iterations, rtol
        As in :func:`~graded.inverse.polish.polish_designs`.

    Returns
    -------
    ndarray, shape (k,), bool
        Designs changed.
    """
    idx = np.asarray(idx, dtype=np.int64)
    changed = np.zeros(len(pick["rho"]), dtype=bool)
    if idx.size == 0:
        return changed
    pol = polish_designs(target, {k: pick[k][idx] for k in DESIGN_KEYS}, iterations=iterations, rtol=rtol,
                         progress=progress)
    better = pol["error"] < relative_error(target, pick["C_fe"][idx])
    sel = idx[better]
    for k in DESIGN_KEYS + ("C_fe",):
        pick[k][sel] = pol[k][better]
    if forward is not None and "C_pred" in pick and sel.size:
        pick["C_pred"][sel] = forward.predict(*(pick[k][sel] for k in DESIGN_KEYS))
        if "nmse" in pick:
            pick["nmse"][sel] = nmse(np.broadcast_to(target, (sel.size, 6, 6)), pick["C_pred"][sel])
    changed[sel] = True
    return changed
