"""Cell placement from the phase fields (SI Eq. 13 and DESIGN §3).

The relaxed impulse train ``tau'(x) = 1/8 prod_j (1 + cos(2 pi mu phi_j(x)))`` is 1 where
all ``mu phi_j`` are integers (cell corners) and 0 where all are half-integers (cell
centres, the isolated minima the SI places cells at). Cell ``n`` (an integer triple) is
the region where ``mu phi(x)`` lies in ``n + [0, 1]^3``; its centre solves
``mu phi(x) = n + 1/2``.

*Locating the extrema.* On a sample grid finer than half the narrowest cell, the basin of
the minimum a sample belongs to is ``floor(mu phi)``; the found cells and their 26
neighbours (cells that only graze the region between samples) are the candidates, each
identified by its integer index, so none is duplicated. Each candidate's minimum is
refined by Newton's method from the affine guess of the nearest sample; a candidate whose
Newton iteration does not converge has no minimum in reach and is dropped.

*Nodes.* The node with reference coordinates ``xi`` (in [0, 1]^3) of cell ``n`` solves
``mu phi(x) = n + xi``. Neighbouring cells ask for the same right-hand side for the nodes
they share (``n + (1, y, z) == (n + e_1) + (0, y, z)``), so each distinct right-hand side
is solved once and shared nodes coincide by construction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "tau_prime",
    "invert_phase",
    "locate_cells",
    "place_nodes",
    "CellPlacement",
    "NEWTON_TOL",
    "NEWTON_MAXITER",
    "KEY_RESOLUTION",
]

#: Newton stops when max |mu phi(x) - target| is below this (phase units = cells):
#: 1e-11 of a cell is far below any geometric tolerance and above round-off (~1e-14).
NEWTON_TOL = 1e-11
#: The map is smooth and the affine guess close; 30 steps with backtracking suffice by
#: a wide margin (typically 2-4).
NEWTON_MAXITER = 30
#: Right-hand sides ``n + xi`` are identified on a grid of this pitch (reference units).
#: Distinct reference nodes are >= 1e-3 apart (multiples of 1/12 at worst); 2^-26 ~ 1.5e-8
#: absorbs round-off of ``n + xi`` without merging anything distinct.
KEY_RESOLUTION = 2.0**-26
#: Sample points evaluated at once while locating cells (bounds memory to ~100 MB).
SAMPLE_BLOCK = 500_000


def tau_prime(mu_phi: np.ndarray) -> np.ndarray:
    """Relaxed impulse train ``1/8 prod_j (1 + cos(2 pi mu phi_j))`` for ``mu phi`` of shape (N, 3)."""
    return np.prod(1.0 + np.cos(2.0 * np.pi * np.asarray(mu_phi)), axis=-1) / 8.0


def invert_phase(phase, mu: float, target: np.ndarray, guess: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Solve ``mu phi(x) = target`` by vectorised Newton with backtracking.

    Parameters
    ----------
    phase : graded.fem.PhaseField
    mu : float
    target : ndarray, shape (N, 3)
        Right-hand sides in phase units.
    guess : ndarray, shape (N, 3)
        Starting points (mm), e.g. the affine guess.

    Returns
    -------
    x : ndarray, shape (N, 3)
    converged : ndarray, shape (N,), bool
    """
    x = np.array(guess, dtype=np.float64, copy=True).reshape(-1, 3)
    target = np.asarray(target, dtype=np.float64).reshape(-1, 3)
    phi, J = phase.evaluate(x)
    r = mu * phi - target
    err = np.abs(r).max(axis=1)
    active = np.flatnonzero(err > NEWTON_TOL)
    for _ in range(NEWTON_MAXITER):
        if len(active) == 0:
            break
        try:
            step = np.linalg.solve(mu * J[active], r[active][:, :, None])[:, :, 0]
        except np.linalg.LinAlgError:
            det = np.abs(np.linalg.det(J[active]))
            ok = det > 0
            step = np.zeros((len(active), 3))
            step[ok] = np.linalg.solve(mu * J[active][ok], r[active][ok][:, :, None])[:, :, 0]
        lam = np.ones(len(active))
        todo = np.arange(len(active))
        for _ in range(6):  # backtracking: accept once the residual decreases
            xn = x[active[todo]] - lam[todo, None] * step[todo]
            pn, Jn = phase.evaluate(xn)
            rn = mu * pn - target[active[todo]]
            en = np.abs(rn).max(axis=1)
            better = en < err[active[todo]]
            idx = active[todo[better]]
            x[idx], phi[idx], J[idx], r[idx], err[idx] = xn[better], pn[better], Jn[better], rn[better], en[better]
            todo = todo[~better]
            if len(todo) == 0:
                break
            lam[todo] *= 0.5
        stalled = active[todo]  # no decrease even at 1/64 of the step: give up on these
        active = np.setdiff1d(active[err[active] > NEWTON_TOL], stalled, assume_unique=True)
    return x, err <= NEWTON_TOL


def _affine_guess(x0: np.ndarray, mu_phi0: np.ndarray, J0: np.ndarray, mu: float, target: np.ndarray) -> np.ndarray:
    return x0 + np.linalg.solve(mu * J0, (target - mu_phi0)[:, :, None])[:, :, 0]


@dataclass(frozen=True)
class CellPlacement:
    """Cells of the graded lattice.

    Attributes
    ----------
    index : ndarray, shape (n, 3), int64
        Integer cell indices ``n``.
    centre : ndarray, shape (n, 3)
        Cell centres (minima of tau', ``mu phi = n + 1/2``), mm.
    jacobian : ndarray, shape (n, 3, 3)
        ``mu grad phi`` at the centres (its inverse is the local cell basis, mm).
    """

    index: np.ndarray
    centre: np.ndarray
    jacobian: np.ndarray


def locate_cells(phase, mu: float, lo, hi, *, spacing: float | None = None) -> CellPlacement:
    """Every cell that meets the box ``[lo, hi]``, with its refined centre.

    Parameters
    ----------
    phase : graded.fem.PhaseField
    mu : float
    lo, hi : array_like, shape (3,)
        Region to cover (mm), normally the body's bounds.
    spacing : float, optional
        Sample-grid pitch (mm); default half the narrowest cell width seen on the grid.
    """
    lo = np.asarray(lo, dtype=np.float64)
    hi = np.asarray(hi, dtype=np.float64)
    if spacing is None:
        probe = _grid(lo, hi, np.max(hi - lo) / 16)
        J = mu * phase.gradient(probe)
        width = 1.0 / np.linalg.norm(J, axis=2).max()  # narrowest layer: 1 / |mu grad phi_j|
        spacing = 0.5 * width
    # the sample grid is walked in slabs so its size is not bounded by memory
    n = np.maximum(2, np.ceil((hi - lo) / spacing).astype(np.int64) + 1)
    axes = [np.linspace(lo[a], hi[a], n[a]) for a in range(3)]
    slab = max(1, SAMPLE_BLOCK // int(n[1] * n[2]))
    found_cells, found_x, found_q, found_J = [], [], [], []
    for i0 in range(0, int(n[0]), slab):
        samples = np.stack(np.meshgrid(axes[0][i0 : i0 + slab], axes[1], axes[2], indexing="ij"), -1).reshape(-1, 3)
        phi, J = phase.evaluate(samples)
        q = mu * phi
        c, rep = np.unique(np.floor(q).astype(np.int64), axis=0, return_index=True)
        found_cells.append(c)
        found_x.append(samples[rep])
        found_q.append(q[rep])
        found_J.append(J[rep])
    found, rep = np.unique(np.concatenate(found_cells), axis=0, return_index=True)
    samples = np.concatenate(found_x)[rep]
    q = np.concatenate(found_q)[rep]
    J = np.concatenate(found_J)[rep]
    rep = np.arange(len(found))
    offsets = np.array([[i, j, k] for i in (-1, 0, 1) for j in (-1, 0, 1) for k in (-1, 0, 1)], dtype=np.int64)
    cand = (found[:, None, :] + offsets[None]).reshape(-1, 3)
    src = np.repeat(rep, len(offsets))
    cand, first = np.unique(cand, axis=0, return_index=True)
    src = src[first]
    target = cand + 0.5
    guess = _affine_guess(samples[src], q[src], J[src], mu, target)
    centre, ok = invert_phase(phase, mu, target, guess)
    _, Jc = phase.evaluate(centre[ok])
    return CellPlacement(index=cand[ok], centre=centre[ok], jacobian=mu * Jc)


def _grid(lo: np.ndarray, hi: np.ndarray, spacing: float) -> np.ndarray:
    n = np.maximum(2, np.ceil((hi - lo) / spacing).astype(np.int64) + 1)
    axes = [np.linspace(lo[a], hi[a], n[a]) for a in range(3)]
    return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)


def place_nodes(
    phase, mu: float, cells: CellPlacement, ref_nodes: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Physical nodes of every cell, each shared node solved once.

    Parameters
    ----------
    phase : graded.fem.PhaseField
    mu : float
    cells : CellPlacement
    ref_nodes : ndarray, shape (R, 3)
        Reference-cube nodes ``xi`` in [0, 1]^3.

    Returns
    -------
    nodes : ndarray, shape (N, 3)
        Unique node positions (mm).
    node_of : ndarray, shape (n_cells, R), int64
        Global node index of reference node r of cell c.
    converged : ndarray, shape (N,), bool
        Newton converged (nodes far outside the phase mesh may not).
    """
    ref = np.asarray(ref_nodes, dtype=np.float64).reshape(-1, 3)
    n, R = len(cells.index), len(ref)
    target = (cells.index[:, None, :] + ref[None]).reshape(-1, 3)
    key = np.rint(target / KEY_RESOLUTION).astype(np.int64)
    _, first, inverse = np.unique(key, axis=0, return_index=True, return_inverse=True)
    utarget = target[first]
    c = first // R
    guess = cells.centre[c] + np.linalg.solve(cells.jacobian[c], (utarget - cells.index[c] - 0.5)[:, :, None])[:, :, 0]
    nodes, ok = invert_phase(phase, mu, utarget, guess)
    return nodes, inverse.reshape(n, R).astype(np.int64), ok
