"""Small regular lattices as graphs, for tests, benchmarks and demos (BCC and octet)."""

from __future__ import annotations

import numpy as np

from ..graph import LatticeGraph

__all__ = ["bcc_graph", "octet_graph", "graded_diameters", "superpose", "tile_cell"]


def _grid(shape, cell):
    nx, ny, nz = shape
    idx = np.stack(np.meshgrid(np.arange(nx + 1), np.arange(ny + 1), np.arange(nz + 1), indexing="ij"), -1)
    return idx.reshape(-1, 3) * float(cell), lambda i, j, k: (i * (ny + 1) + j) * (nz + 1) + k


def graded_diameters(nodes, struts, d_min: float, d_max: float, axis: int = 0) -> np.ndarray:
    """Diameters growing linearly from ``d_min`` to ``d_max`` along ``axis`` (strut midpoints), mm."""
    mid = nodes[struts].mean(axis=1)[:, axis]
    span = np.ptp(mid)
    t = (mid - mid.min()) / span if span > 0 else np.zeros_like(mid)
    return d_min + (d_max - d_min) * t


def bcc_graph(shape=(2, 2, 2), cell: float = 2.0, d_min: float = 0.3, d_max: float = 0.5) -> LatticeGraph:
    """Body-centred cubic lattice: a centre node joined to the 8 corners of each cell.

    ``shape`` cells along x, y, z; ``8 * prod(shape)`` struts of length ``cell * sqrt(3) / 2``;
    diameters graded linearly along x from ``d_min`` to ``d_max`` (mm).
    """
    shape = tuple(int(s) for s in shape)
    corners, cidx = _grid(shape, cell)
    cells = np.stack(np.meshgrid(*[np.arange(s) for s in shape], indexing="ij"), -1).reshape(-1, 3)
    centres = (cells + 0.5) * cell
    c_id = len(corners) + np.arange(len(cells))
    offs = np.array([[a, b, c] for a in (0, 1) for b in (0, 1) for c in (0, 1)])
    corner_ids = cidx(*(cells[:, None, :] + offs[None]).transpose(2, 0, 1))
    struts = np.stack([np.repeat(c_id, 8), corner_ids.reshape(-1)], axis=1)
    nodes = np.vstack([corners, centres])
    return LatticeGraph(nodes, struts, graded_diameters(nodes, struts, d_min, d_max), {"lattice": "bcc"})


def octet_graph(shape=(2, 2, 2), cell: float = 2.0, d_min: float = 0.3, d_max: float = 0.5) -> LatticeGraph:
    """Octet truss (face-centred cubic nodes, nearest neighbours joined), 24 struts per cell.

    Struts have length ``cell / sqrt(2)``; diameters graded along x (mm).
    """
    shape = tuple(int(s) for s in shape)
    h = float(cell) / 2.0
    fine = np.stack(np.meshgrid(*[np.arange(2 * s + 1) for s in shape], indexing="ij"), -1).reshape(-1, 3)
    fine = fine[fine.sum(axis=1) % 2 == 0]  # FCC sites on the half-cell grid
    lookup = {tuple(p): i for i, p in enumerate(fine)}
    nbr = np.array([[a, b, 0] for a in (-1, 1) for b in (-1, 1)])
    nbr = np.concatenate([nbr, nbr[:, [0, 2, 1]], nbr[:, [2, 0, 1]]])
    struts = []
    for i, p in enumerate(fine):
        for o in nbr:
            j = lookup.get(tuple(p + o))
            if j is not None and j > i:
                struts.append((i, j))
    nodes = fine * h
    struts = np.asarray(struts, dtype=np.int64)
    return LatticeGraph(nodes, struts, graded_diameters(nodes, struts, d_min, d_max), {"lattice": "octet"})


def superpose(*graphs: LatticeGraph, tol: float = 1e-6) -> LatticeGraph:
    """Union of graphs: nodes closer than ``tol`` (mm, on a grid) fused, duplicate struts kept once.

    Crossing struts are not split (the superposed BCC + octet lattices used in tests have no
    crossings away from nodes). The diameter of a duplicate strut is the first one's.
    """
    nodes = np.vstack([g.nodes for g in graphs])
    key = np.round(nodes / tol).astype(np.int64)
    _, first, inverse = np.unique(key, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    offsets = np.cumsum([0] + [g.n_nodes for g in graphs])
    struts = np.vstack([inverse[g.struts + o] for g, o in zip(graphs, offsets)])
    struts = np.sort(struts, axis=1)
    struts, keep = np.unique(struts, axis=0, return_index=True)
    diameters = np.concatenate([g.diameters for g in graphs])[keep]
    name = "+".join(str(g.meta.get("lattice")) for g in graphs)
    return LatticeGraph(nodes[first], struts, diameters, {"lattice": name})


def tile_cell(cell, shape=(2, 2, 2), cell_size: float = 4.0) -> LatticeGraph:
    """A block of ``shape`` identical cells of a :class:`graded.unitcell.UnitCell` (mm).

    Bonds of the cell's periodic graph that leave the block are dropped; nodes shared by
    neighbouring cells are fused (:func:`superpose`). All struts get the cell's diameter for
    ``cell_size``. Useful to mesh real design-space cells without the grading pipeline.
    """
    from ..topology import reference_graph

    pg = reference_graph(cell.topology).periodic
    basis = cell.basis * float(cell_size)
    shape = np.asarray(shape, dtype=np.int64)
    idx = np.stack(np.meshgrid(*[np.arange(s) for s in shape], indexing="ij"), -1).reshape(-1, 3)
    n = pg.n_nodes
    nodes = ((idx[:, None, :] + pg.nodes[None]).reshape(-1, 3)) @ basis.T
    target = idx[:, None, :] + pg.offsets[None]  # (cells, bonds, 3)
    inside = np.all((target >= 0) & (target < shape), axis=2)
    flat = lambda c: (c[..., 0] * shape[1] + c[..., 1]) * shape[2] + c[..., 2]  # noqa: E731
    src = flat(idx)[:, None] * n + pg.bonds[None, :, 0]
    dst = flat(target) * n + pg.bonds[None, :, 1]
    struts = np.stack([src[inside], dst[inside]], axis=1)
    d = float(cell.diameter(cell_size))
    g = LatticeGraph(nodes, struts, np.full(len(struts), d), {"lattice": cell.topology_string})
    return superpose(g)
