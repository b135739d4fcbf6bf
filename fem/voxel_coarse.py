"""Aggregation coarse space for the voxel operator: the second level of its preconditioner.

The FFT preconditioner of :mod:`graded.fem.voxel` inverts the operator of the *uniform* solid,
so it treats void as solid. The modes it gets most wrong are the soft ones of the real
microstructure: thin plates sliding on one another, struts bending, pieces joined by a few
voxels, all of which move nearly rigidly. A coarse space of piecewise-constant displacements
on aggregates that follow the solid captures exactly those: the grid is cut into blocks of
``block^3`` nodes, and every block's nodes are split into the pieces that the solid voxels
inside the block connect (two lamellae crossing a block are two aggregates, not one). The
coarse operator is the Galerkin product ``Z^T K Z`` (``Z`` the 0/1 aggregate indicators per
displacement component), assembled from the voxels whose corners lie in more than one
aggregate (a voxel inside one aggregate only translates it, at zero energy), and factorised
once by sparse LU. The two-level preconditioner is additive: ``G r + Z (Z^T K Z)^+ Z^T r``.

Rigid translations of every floating piece of solid (all of them with periodic fluctuations,
those that touch no fixed node with affine ones) are the null space of ``Z^T K Z``: one
aggregate per floating piece is pinned (its coarse correction is zero), which keeps the
correction symmetric positive semi-definite and leaves the translations to the projection the
solver already applies.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spl
import torch
from scipy.sparse.csgraph import connected_components

__all__ = ["CoarseSpace", "aggregation_coarse_space", "coarse_block", "COARSE_BLOCKS_PER_EDGE", "COARSE_MIN_BLOCK"]

#: Aggregates are cut from blocks of nodes whose edge is the grid's longest edge over this, so
#: the coarse grid has at most 8 blocks a side whatever the resolution: the same cell at 64^3
#: gets blocks of the same physical size as at 32^3 (4 nodes there), and the coarse LU stays
#: small (0.8 M non-zeros for an isotropic 64^3 spinodoid, against 8.9 M with blocks of 4,
#: whose 5.7 s factorisation cost more than their fewer iterations saved; docs/voxel.md).
COARSE_BLOCKS_PER_EDGE = 8
#: Smallest block edge: blocks of 2 or 3 nodes make aggregates barely coarser than the grid.
COARSE_MIN_BLOCK = 4


def coarse_block(shape: tuple[int, ...]) -> int:
    """Block edge (nodes) for a grid of ``shape``: see :data:`COARSE_BLOCKS_PER_EDGE`.

    >>> coarse_block((32, 32, 32)), coarse_block((64, 64, 64)), coarse_block((96, 80, 64))
    (4, 8, 12)
    """
    return max(COARSE_MIN_BLOCK, -(-max(shape) // COARSE_BLOCKS_PER_EDGE))


# pairs of corners of a voxel (all 28): corners that share a voxel are connected
_PAIRS = [(a, b) for a in range(8) for b in range(a + 1, 8)]


@dataclass
class CoarseSpace:
    """Coarse level of one cell.

    Attributes
    ----------
    nodes : torch.Tensor
        int64 (Nc,), the grid nodes (flat indices) that belong to an aggregate.
    aggregate : torch.Tensor
        int64 (Nc,), the aggregate of each of those nodes, in ``[0, count)``.
    count : int
        Number of aggregates; the coarse system has ``3 count`` unknowns, ordered
        ``3 aggregate + component``.
    free : numpy.ndarray
        bool (3 count,), coarse unknowns solved for (pinned ones get no correction).
    lu : scipy.sparse.linalg.SuperLU or None
        Factorisation of the coarse operator restricted to the free unknowns.
    KZt : torch.Tensor
        Sparse CSR (3 count, 3 N) float64, ``(K Z)^T`` with fine DOFs ordered
        ``component N + node``.
    """

    nodes: torch.Tensor
    aggregate: torch.Tensor
    count: int
    free: np.ndarray
    lu: spl.SuperLU | None
    KZt: torch.Tensor
    # KZt cast to each dtype CG iterates in, always from the float64 original
    _KZt_cast: dict = field(default_factory=dict, repr=False)

    def restrict(self, r: torch.Tensor) -> torch.Tensor:
        """``Z^T r`` (3 count, L) float64 of a field r (L, 3, N)."""
        L = r.shape[0]
        rc = torch.zeros((3 * L, self.count), dtype=torch.float64, device=r.device)
        rc.index_add_(1, self.aggregate, r.reshape(3 * L, -1).index_select(1, self.nodes).double())
        return rc.reshape(L, 3, self.count).permute(2, 1, 0).reshape(3 * self.count, L)

    def solve(self, rc: torch.Tensor) -> torch.Tensor:
        """``(Z^T K Z)^+ rc`` for rc (3 count, L) float64, pinned unknowns zero."""
        rhs = rc.cpu().numpy()
        xc = np.zeros_like(rhs)
        if self.lu is not None:
            xc[self.free] = self.lu.solve(np.ascontiguousarray(rhs[self.free]))
        return torch.as_tensor(xc, device=rc.device)

    def prolong_add(self, xc: torch.Tensor, out: torch.Tensor) -> None:
        """``out += Z xc`` for xc (3 count, L) and out (L, 3, N) (in place)."""
        L = out.shape[0]
        back = xc.reshape(self.count, 3, L).permute(2, 1, 0).reshape(3 * L, self.count).to(out.dtype)
        out.reshape(3 * L, -1).index_add_(1, self.nodes, back.index_select(1, self.aggregate))

    def deflate(self, r: torch.Tensor, z: torch.Tensor) -> None:
        """``z += Z (Z^T K Z)^+ Z^T (r - K z)`` in place: the coarse step after the smoother z.

        r, z : (L, 3, N). ``Z^T K z`` is ``(K Z)^T z``, a sparse product, so no operator
        application is needed.
        """
        L = r.shape[0]
        if z.dtype not in self._KZt_cast:
            self._KZt_cast[z.dtype] = self.KZt.to(z.dtype)
        kz = torch.sparse.mm(self._KZt_cast[z.dtype], z.reshape(L, -1).T.contiguous())  # (3 count, L)
        self.prolong_add(self.solve(self.restrict(r) - kz.double()), z)


def aggregation_coarse_space(
    corners: np.ndarray,
    modulus: np.ndarray,
    free_nodes: np.ndarray,
    shape: tuple[int, int, int],
    K0: np.ndarray,
    block: int | None = None,
    device: torch.device | None = None,
) -> CoarseSpace:
    """Aggregates and the factorised Galerkin coarse operator of one cell.

    Parameters
    ----------
    corners : numpy.ndarray
        int64 (8, Ns), the node of corner ``a`` of every stiff voxel (flat grid indices).
    modulus : numpy.ndarray
        float (Ns,), the voxels' Young's moduli (relative to the solid's).
    free_nodes : numpy.ndarray
        bool (N,), nodes that carry unknowns (not removed as void, not fixed by the boundary).
    shape : tuple of int
        The grid ``(n1, n2, n3)``; ``N = n1 n2 n3``.
    K0 : numpy.ndarray
        float64 (24, 24), the unit-modulus voxel stiffness, DOF ``3 a + component``.
    block : int, optional
        Block edge in nodes; :func:`coarse_block` of the grid by default.
    device : torch.device, optional
        Where the transfer indices live (the solver's device).

    Returns
    -------
    CoarseSpace
    """
    N = int(np.prod(shape))
    block = coarse_block(shape) if block is None else int(block)
    corners = np.asarray(corners, dtype=np.int64)
    ijk = np.unravel_index(np.arange(N), shape)
    nb = tuple(-(-s // block) for s in shape)
    block_of = np.ravel_multi_index(tuple(c // block for c in ijk), nb)
    free_c = free_nodes[corners]  # (8, Ns)
    rows, cols = [], []
    for a, b in _PAIRS:
        keep = free_c[a] & free_c[b] & (block_of[corners[a]] == block_of[corners[b]])
        rows.append(corners[a][keep])
        cols.append(corners[b][keep])
    r_ = np.concatenate(rows)
    graph = sp.coo_matrix((np.ones(r_.size, dtype=np.int8), (r_, np.concatenate(cols))), shape=(N, N))
    _, label = connected_components(graph, directed=False)
    nodes = np.nonzero(free_nodes)[0]
    _, agg_of_free = np.unique(label[nodes], return_inverse=True)
    count = int(agg_of_free.max()) + 1 if nodes.size else 0
    agg = np.full(N, -1, dtype=np.int64)
    agg[nodes] = agg_of_free
    Kc, KZt = _galerkin(agg[corners], corners, np.asarray(modulus, dtype=np.float64), K0, count, N)
    free = _unpinned(Kc, agg[corners], count)
    Kf = Kc[free][:, free].tocsc()
    lu = spl.splu(Kf, permc_spec="MMD_AT_PLUS_A") if Kf.shape[0] else None
    dev = device if device is not None else torch.device("cpu")
    KZt = KZt.tocsr()
    return CoarseSpace(
        nodes=torch.as_tensor(nodes, device=dev),
        aggregate=torch.as_tensor(agg_of_free.astype(np.int64), device=dev),
        count=count,
        free=free,
        lu=lu,
        KZt=_csr_tensor(KZt, dev),
    )


def _csr_tensor(A: sp.csr_matrix, device: torch.device) -> torch.Tensor:
    """A scipy CSR matrix as a torch sparse CSR tensor (built from valid CSR: no checks)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")
        return torch.sparse_csr_tensor(
            torch.as_tensor(A.indptr, dtype=torch.int64),
            torch.as_tensor(A.indices, dtype=torch.int64),
            torch.as_tensor(A.data),
            size=A.shape,
            check_invariants=False,
        ).to(device)


def _galerkin(
    ca: np.ndarray, corners: np.ndarray, Ee: np.ndarray, K0: np.ndarray, count: int, N: int
) -> tuple[sp.csr_matrix, sp.coo_matrix]:
    """``Z^T K Z`` (3 count, 3 count) and ``(K Z)^T`` (3 count, 3 N) of the voxels.

    ``ca`` (8, Ns) holds the aggregate of every voxel corner (-1: no unknowns), ``corners`` its
    node. Voxels are grouped by the pattern in which their corners share aggregates (each
    corner labelled by the first corner of its aggregate); every pattern's reduced voxel matrix
    is formed once. A voxel with all corners in one aggregate only translates it: no energy,
    no force.
    """
    lab = np.empty_like(ca)
    for a in range(8):
        first = np.full(ca.shape[1], a, dtype=np.int64)
        for b in range(a - 1, -1, -1):
            first = np.where(ca[b] == ca[a], b, first)
        lab[a] = np.where(ca[a] < 0, 8, first)
    key = (lab * (9 ** np.arange(8))[:, None]).sum(0)
    single = (lab == 0).all(0)
    patterns, inverse = np.unique(key[~single], return_inverse=True)
    vox = np.nonzero(~single)[0]
    rows, cols, vals = [], [], []
    frows, fcols, fvals = [], [], []
    for p, k in enumerate(patterns):
        labels = [(int(k) // 9**a) % 9 for a in range(8)]
        groups = sorted({g for g in labels if g < 8})
        if not groups:
            continue
        R = np.zeros((24, 3 * len(groups)))
        for a, g in enumerate(labels):
            if g < 8:
                gi = groups.index(g)
                R[3 * a : 3 * a + 3, 3 * gi : 3 * gi + 3] = np.eye(3)
        KR = K0 @ R  # (24, 3k): voxel forces of unit aggregate translations
        Kp = R.T @ KR  # (3k, 3k)
        v = vox[inverse == p]
        nc = 3 * len(groups)
        dof = (3 * ca[groups][:, None, v] + np.arange(3)[None, :, None]).reshape(nc, -1)  # (3k, nv)
        rows.append(np.broadcast_to(dof[:, None, :], (nc, nc, v.size)).ravel())
        cols.append(np.broadcast_to(dof[None, :, :], (nc, nc, v.size)).ravel())
        vals.append((Kp[:, :, None] * Ee[v]).ravel())
        # (K Z)^T: rows the coarse unknowns, columns the fine DOFs (component N + node) of the
        # voxel's corners that carry unknowns
        live = [a for a in range(8) if labels[a] < 8]
        fine = np.stack([i * N + corners[a, v] for a in live for i in range(3)])  # (3 live, nv)
        rsel = [3 * a + i for a in live for i in range(3)]
        frows.append(np.broadcast_to(dof[:, None, :], (nc, len(rsel), v.size)).ravel())
        fcols.append(np.broadcast_to(fine[None, :, :], (nc, len(rsel), v.size)).ravel())
        fvals.append((KR[rsel].T[:, :, None] * Ee[v]).ravel())
    n = 3 * count
    if not rows:
        return sp.csr_matrix((n, n)), sp.coo_matrix((n, 3 * N))
    Kc = sp.coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)).tocsr()
    KZt = sp.coo_matrix(
        (np.concatenate(fvals), (np.concatenate(frows), np.concatenate(fcols))), shape=(n, 3 * N)
    )
    return Kc, KZt


def _unpinned(Kc: sp.csr_matrix, ca: np.ndarray, count: int) -> np.ndarray:
    """Coarse unknowns kept free: all but the 3 of one aggregate in every floating piece."""
    free = np.ones(3 * count, dtype=bool)
    if count == 0:
        return free
    coo = Kc.tocoo()
    adjacency = sp.coo_matrix((np.ones(coo.nnz, dtype=np.int8), (coo.row // 3, coo.col // 3)), shape=(count, count))
    pieces, piece = connected_components(adjacency, directed=False)
    # an aggregate is held if one of its voxels has a corner without unknowns (a fixed node)
    fixed_voxel = (ca < 0).any(0)
    held = np.zeros(count, dtype=bool)
    touching = ca[:, fixed_voxel]
    held[touching[touching >= 0]] = True
    piece_held = np.zeros(pieces, dtype=bool)
    piece_held[piece[held]] = True
    first = np.full(pieces, -1, dtype=np.int64)
    order = np.arange(count)[::-1]
    first[piece[order]] = order  # the lowest aggregate of every piece
    for g in first[~piece_held]:
        free[3 * g : 3 * g + 3] = False
    return free
