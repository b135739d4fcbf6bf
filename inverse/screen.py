"""Every lattice of the design space as a candidate: starts for each, verified by FE.

The inverse network's G1 proposes topologies; for targets unlike its training data
(bone, for one) its choice can miss the lattice that fits best, while G2's geometry for a
*given* topology is still a good start. :func:`lattice_starts` therefore proposes, for
every distinct lattice (:func:`distinct_cells`), every geometry head of G2 for that
topology and the design library's nearest cells of that lattice, and homogenizes them
all by FE (about 1,700 solves, a few seconds). :func:`~graded.inverse.design.design`
adds the best of them to its candidates (``screen``); the exhaustive search
(:mod:`~graded.inverse.exhaustive`) polishes all of them.

Two part triples are one lattice when their parts superpose to the same struts
(:func:`~graded.inverse.select.cell_key`): same strut graph, same diameter for a density,
same stiffness for every geometry. One representative per lattice -- 236 of the 560
triples -- is therefore a provably sufficient subset.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from graded.elastic.metrics import relative_error

from .draw import orthonormalize
from .forward import topology_onehot
from .inverse_model import TOPOLOGY_TRIPLES, topology_class
from .library import shipped_library
from .oracle import fe_stiffness, sorted_parts
from .refine import DESIGN_KEYS
from .select import cell_key

Progress = Callable[[int, int, str], None]

__all__ = ["GROUP_STEP", "distinct_cells", "cell_index", "lattice_starts", "best_per_cell"]


#: Part triples grouped between two progress calls of :func:`distinct_cells` (the first
#: grouping builds the reference graph of all 560 triples, a few seconds on two cores).
GROUP_STEP = 40

_DISTINCT: dict = {}


def distinct_cells(progress: Progress | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One representative part triple of every distinct lattice.

    Parameters
    ----------
    progress : callable, optional
        ``progress(done, 560, message)`` every :data:`GROUP_STEP` triples, while the
        grouping is computed (once per process; later calls return it at once).

    Returns
    -------
    topology : (m, 3, 2) int8
        The first of :data:`~graded.inverse.inverse_model.TOPOLOGY_TRIPLES` (dataset
        encoding ``[tessellation, id]``) of each lattice; m = 236.
    of_triple : (560,) int64
        Lattice of each of the 560 triples.
    """
    if "cells" in _DISTINCT:
        return _DISTINCT["cells"]
    triples = np.stack([TOPOLOGY_TRIPLES // 7 + 1, TOPOLOGY_TRIPLES % 7 + 1], axis=-1).astype(np.int8)
    index: dict[frozenset, int] = {}
    of_triple = np.empty(len(triples), dtype=np.int64)
    reps = []
    for i, t in enumerate(triples):
        key = cell_key(t)
        if key not in index:
            index[key] = len(reps)
            reps.append(t)
        of_triple[i] = index[key]
        if progress is not None and (i + 1) % GROUP_STEP == 0:
            progress(i + 1, len(triples), f"{i + 1} of {len(triples)} part triples grouped into lattices")
    _DISTINCT["cells"] = (np.stack(reps), of_triple)
    return _DISTINCT["cells"]


def cell_index(topology: np.ndarray) -> np.ndarray:
    """Lattice (row of :func:`distinct_cells`) of each of n topologies (n, 3, 2) -> (n,) int64."""
    parts = sorted_parts(topology).reshape(-1, 3, 2).astype(np.int64)
    cls = topology_class((parts[..., 0] - 1) * 7 + (parts[..., 1] - 1))
    return distinct_cells()[1][cls]


@torch.no_grad()
def _model_starts(inverse, target: np.ndarray, topology: np.ndarray) -> dict[str, np.ndarray]:
    """Every geometry head of G2 for each topology (m, 3, 2): arrays with leading axis m * K."""
    inverse = inverse.float().eval()
    x, Q, _, _ = inverse.scaled_features(torch.as_tensor(target[None], dtype=torch.float64))
    m = len(topology)
    z = topology_onehot(topology, torch.float32)
    (rho, U, V, R1, R2c), _ = inverse.geometry_heads(x.float().expand(m, -1), z)
    K = rho.shape[-1]
    R2 = Q.float() @ R2c
    return {
        "topology": np.repeat(np.asarray(topology), K, axis=0),
        "rho": rho.double().numpy().reshape(-1),
        "U": U.double().numpy().reshape(-1, 3),
        "V": V.double().numpy().reshape(-1, 3),
        "R1": orthonormalize(R1.double().numpy().reshape(-1, 3, 3)),
        "R2": orthonormalize(R2.double().numpy().reshape(-1, 3, 3)),
    }


def lattice_starts(target: np.ndarray, inverse, *, n_library: int = 3, library=None,
                   cells: np.ndarray | None = None, progress=None) -> dict[str, np.ndarray]:
    """Starts for every distinct lattice, verified by FE.

    Parameters
    ----------
    target : (6, 6) float
        Normalised target (:func:`~graded.inverse.design.parse_target`).
    inverse : InverseModel
        Its G2 gives one start per geometry head and lattice (G1 is not used).
    n_library : int
        Nearest library designs per lattice (fewer where the library holds fewer; 0: none).
    library : DesignLibrary, optional
        Default: the shipped library.
    cells : array_like of int, optional
        Only these lattices (rows of :func:`distinct_cells`); default all.
    progress : callable, optional
        ``progress(done, total, message)`` while the lattices are grouped (the first call in
        a process, :func:`distinct_cells`) and during the FE of the starts, after each group
        of designs that share a lattice.

    Returns
    -------
    dict
        Arrays with leading axis n (all starts): :data:`~graded.inverse.refine.DESIGN_KEYS`,
        ``cell`` (n,) int (row of :func:`distinct_cells`), ``source`` (n,) ``"model"`` or
        ``"library"``, ``C_fe`` (n, 6, 6) and ``error`` (n,) its relative Mandel-norm error.
    """
    reps, _ = distinct_cells(progress)
    cells = np.arange(len(reps)) if cells is None else np.unique(np.asarray(cells, dtype=np.int64))
    cand = _model_starts(inverse, target, reps[cells])
    cand["cell"] = np.repeat(cells, len(cand["rho"]) // len(cells))
    cand["source"] = np.array(["model"] * len(cand["rho"]), dtype=object)
    if n_library > 0:
        lib = library if library is not None else shipped_library()
        group = cell_index(lib.topology)
        group = np.where(np.isin(group, cells), group, -1)  # -1: lattices not searched
        nb = lib.nearest_per_group(target, group, int(n_library))
        keep = nb["group"] >= 0
        nb = {k: v[keep] for k, v in nb.items()}
        nb = {k: nb[k] for k in DESIGN_KEYS} | {"cell": nb["group"],
                                                "source": np.array(["library"] * len(nb["rho"]), dtype=object)}
        cand = {k: np.concatenate([cand[k], nb[k]]) for k in cand}
    fe_progress = None if progress is None else (lambda done, n, msg: progress(done, n, f"{done} of {n} designs"))
    cand["C_fe"] = fe_stiffness(*(cand[k] for k in DESIGN_KEYS), progress=fe_progress)
    cand["error"] = relative_error(target, cand["C_fe"])
    return cand


def best_per_cell(error: np.ndarray, cell: np.ndarray, k: int = 1) -> np.ndarray:
    """Indices of the ``k`` lowest errors of every cell, cells ordered by their best error.

    Parameters
    ----------
    error, cell : (n,)

    Returns
    -------
    ndarray of int64
        Grouped by cell (best cell first), each group by error.
    """
    order = np.lexsort((error, cell))
    c = cell[order]
    rank = np.arange(len(order)) - np.searchsorted(c, c, side="left")
    chosen = order[rank < int(k)]
    best = {}
    for i in chosen:
        best.setdefault(int(cell[i]), error[i])
    return np.array(sorted(chosen, key=lambda i: (best[int(cell[i])], int(cell[i]), error[i])), dtype=np.int64)
