"""Ranking and choosing designs: the criteria, and the best design of each distinct cell first.

``graded design`` and ``graded evaluate inverse`` rank candidates the same way: by one of
:data:`CRITERIA` (:func:`ranking_error`), the best design of every distinct cell first,
then the next best ones (:func:`select_designs`). Two topologies are the same cell when
their parts superpose to the same lattice (:func:`cell_key`), not only when their part
lists are equal.
"""

from __future__ import annotations

import functools

import numpy as np

from graded.elastic import nmse, to_21
from graded.elastic.metrics import r2_error, relative_error
from graded.validation import check_choice, fail

__all__ = ["CRITERIA", "ranking_error", "cell_key", "cell_keys", "select_designs", "gather", "CELL_KEY_DECIMALS"]

#: Decimals of the reference-cube node coordinates in a cell key: the nodes are strut ends
#: and crossings in the unit cube, exact to round-off (1e-15), and distinct ones lie at
#: least 1e-3 apart, so 9 decimals merge round-off and separate every pair of nodes.
CELL_KEY_DECIMALS = 9

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


@functools.cache
def _lattice(parts: tuple) -> frozenset:
    from graded.topology import reference_graph

    g = reference_graph(parts)
    p = np.round(g.nodes, CELL_KEY_DECIMALS) + 0.0  # + 0.0: no negative zeros
    return frozenset(tuple(sorted((tuple(p[i]), tuple(p[j])))) for i, j in g.struts)


def cell_key(topology) -> frozenset:
    """The lattice a topology makes, as a hashable key: equal keys mean the same cell.

    Parts may come in any order, repeated, or covered by the others (e.g. ``"2x1+2x2"``,
    ``"2x1+2x2+2x2"`` and ``"1x1+2x1+2x2"`` are one lattice): the key is the set of struts
    of the superposed reference cube (:func:`graded.topology.reference_graph`), so two
    designs with equal keys and equal geometry are the same cell.

    Parameters
    ----------
    topology : array_like, shape (3, 2), or str
        Parts ``[tessellation, id]``, or a topology string such as ``"1x2+2x3"``.
    """
    from graded.topology import canonical, parse_topology

    parts = parse_topology(topology) if isinstance(topology, str) else tuple(map(tuple, np.asarray(topology).tolist()))
    return _lattice(canonical(parts))


def cell_keys(topology: np.ndarray) -> list[frozenset]:
    """:func:`cell_key` of each of n topologies (n, 3, 2)."""
    return [cell_key(t) for t in np.asarray(topology)]


def select_designs(scores: np.ndarray, topology: np.ndarray, top_k: int,
                   rho: np.ndarray | None = None) -> tuple[list[int], list[bool]]:
    """The ``top_k`` best designs, the best design of each distinct cell first.

    Parameters
    ----------
    scores : ndarray, shape (n,)
        Lower is better (:func:`ranking_error`).
    topology : ndarray, shape (n, 3, 2)
    top_k : int
    rho : ndarray, shape (n,), optional
        With it, exact repeats -- the same cell and the same ``rho``, i.e. the same
        geometry head for the same drawn topology -- are skipped, so fewer than ``top_k``
        may come back.

    Returns
    -------
    (list of int, list of bool)
        Indices of the chosen designs and whether each is the best of its cell
        (:func:`cell_key`).
    """
    topology = np.asarray(topology)
    raw = [t.tobytes() for t in topology]
    keys: dict[bytes, frozenset] = {}
    order = np.argsort(scores, kind="stable")
    seen: set = set()
    taken: set = set()
    first, rest = [], []
    for i in order:
        if raw[i] not in keys:  # keys only of designs looked at: a reference graph costs ~30 ms
            keys[raw[i]] = cell_key(topology[i])
        key = keys[raw[i]]
        if rho is not None:
            ident = (key, float(rho[i]))
            if ident in taken:
                continue
            taken.add(ident)
        if key in seen:
            rest.append(int(i))
        else:
            seen.add(key)
            first.append(int(i))
            if len(first) >= top_k:
                break
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
