"""Ranking and choosing designs: the criteria, and the best design of each distinct cell first.

``graded design`` and ``graded evaluate inverse`` rank candidates the same way: by one of
:data:`CRITERIA` (:func:`ranking_error`), the best design of every distinct cell first,
then the next best ones (:func:`select_designs`).
"""

from __future__ import annotations

import numpy as np

from graded.elastic import nmse, to_21
from graded.elastic.metrics import r2_error, relative_error
from graded.validation import check_choice, fail

__all__ = ["CRITERIA", "ranking_error", "topology_keys", "select_designs", "gather"]

#: Ranking criteria and what they measure.
CRITERIA = {
    "mandel": "relative Mandel-norm error",
    "nmse": "NMSE (main Eq. 8)",
    "r2": "share of the summed 1 - R^2 over the 21 constants",
}


def ranking_error(rank_by: str, target: np.ndarray, C: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """The error designs are ranked by.

    Parameters
    ----------
    rank_by : {"mandel", "nmse", "r2"}
        :func:`~graded.elastic.metrics.relative_error`, :func:`~graded.elastic.nmse` or
        :func:`~graded.elastic.metrics.r2_error` (see :data:`CRITERIA`).
    target, C : ndarray, shape (..., 6, 6)
        Normalised target(s) and design stiffnesses, broadcast against each other.
    weights : ndarray, shape (21,), optional
        Component weights of ``"r2"`` (:func:`~graded.elastic.metrics.component_weights`).

    Returns
    -------
    ndarray, shape (...)
        Lower is better.
    """
    check_choice("rank_by", rank_by, tuple(CRITERIA))
    if rank_by == "mandel":
        return relative_error(target, C)
    if rank_by == "nmse":
        return nmse(target, C)
    if weights is None:
        fail("weights", "are required to rank by 'r2'", "give the component weights of the training targets")
    return r2_error(to_21(np.asarray(target, dtype=np.float64)), to_21(np.asarray(C, dtype=np.float64)), weights)


def topology_keys(topology: np.ndarray) -> list[tuple]:
    """Hashable keys (one per design) of topologies (n, 3, 2)."""
    return [tuple(map(tuple, t.tolist())) for t in np.asarray(topology)]


def select_designs(scores: np.ndarray, topology: np.ndarray, top_k: int,
                   rho: np.ndarray | None = None) -> tuple[list[int], list[bool]]:
    """The ``top_k`` best designs, the best design of each distinct topology first.

    Parameters
    ----------
    scores : ndarray, shape (n,)
        Lower is better (:func:`ranking_error`).
    topology : ndarray, shape (n, 3, 2)
    top_k : int
    rho : ndarray, shape (n,), optional
        With it, exact repeats -- the same topology and the same ``rho``, i.e. the same
        geometry head for the same drawn topology -- are skipped, so fewer than ``top_k``
        may come back.

    Returns
    -------
    (list of int, list of bool)
        Indices of the chosen designs and whether each is the best of its topology.
    """
    keys = topology_keys(topology)
    order = np.argsort(scores, kind="stable")
    seen: set = set()
    taken: set = set()
    first, rest = [], []
    for i in order:
        if rho is not None:
            ident = (keys[i], float(rho[i]))
            if ident in taken:
                continue
            taken.add(ident)
        if keys[i] in seen:
            rest.append(int(i))
        else:
            seen.add(keys[i])
            first.append(int(i))
    chosen = (first + rest)[:top_k]
    best = set(first)
    return chosen, [i in best for i in chosen]


def gather(cand: dict[str, np.ndarray], order: np.ndarray) -> dict[str, np.ndarray]:
    """Designs ``cand`` (arrays with leading axes (T, N)) picked by ``order`` (T, k), flattened
    to (T * k, ...) in target-major order."""
    order = np.asarray(order)
    out = {}
    for k, v in cand.items():
        idx = order.reshape(order.shape + (1,) * (v.ndim - 2))
        out[k] = np.take_along_axis(v, idx, 1).reshape((-1,) + v.shape[2:])
    return out
