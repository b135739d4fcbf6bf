"""Periodic Timoshenko-beam homogenization of truss unit cells (DESIGN §5).

Unknowns are the periodic fluctuation displacements and rotations of every node plus
the six macroscopic strains ``eps`` (Voigt, engineering shear). A bond from node i to
the image of node j shifted by the lattice vector ``F n`` has the end displacements

    u_i = w_i,    u_j = w_j + E d,    d = F (X_j + n - X_i),

where ``E d = B(d) eps`` is the relative affine displacement; the end rotations are the
nodal fluctuation rotations. Assembling the beam energies gives the stiffness

    [K_ff  K_fe] [w  ]
    [K_ef  K_ee] [eps]

and minimising over the fluctuations w (one node's translations pinned per connected
component) leaves ``C = (K_ee - K_ef K_ff^-1 K_fe) / V``. No boundary-node pairing is
needed and any parallelepiped cell works.

The beam is linear-elastic Timoshenko with a circular section: A = pi r^2,
I = pi r^4 / 4, J = 2 I, shear correction k = 6(1 + nu) / (7 + 6 nu). Its global
stiffness is written with the projectors ``e e^T`` and ``I - e e^T`` of the bond axis
e, which is exact for the rotationally symmetric section and needs no local frame.

Cells that share a graph are solved together: element matrices are built for the
whole batch at once, scattered into dense cell matrices by one sparse product, and the
condensation is a batched Cholesky solve.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import sparse
from scipy.linalg.lapack import dpotrf as potrf
from scipy.linalg.lapack import dpotrs as potrs
from scipy.sparse.linalg import splu
from threadpoolctl import ThreadpoolController

from .periodic_graph import PeriodicGraph

__all__ = ["homogenize", "beam_stiffness", "strain_operator", "shear_correction"]

_THREADPOOLS: list[ThreadpoolController] = []


def _single_threaded_blas():
    """Context limiting BLAS to one thread (the controller is built once: it scans libraries)."""
    if not _THREADPOOLS:
        _THREADPOOLS.append(ThreadpoolController())
    return _THREADPOOLS[0].limit(limits=1, user_api="blas")


#: Cells per dense block, chosen so a block's matrices stay under ~256 MB.
_BLOCK_BYTES = 256 * 2**20


def shear_correction(nu: float) -> float:
    """Timoshenko shear correction factor of a solid circular section."""
    return 6.0 * (1.0 + nu) / (7.0 + 6.0 * nu)


def strain_operator(d: np.ndarray) -> np.ndarray:
    """``B(d)`` with ``E d = B(d) eps`` for Voigt strain (engineering shear).

    Parameters
    ----------
    d : ndarray, shape (..., 3)

    Returns
    -------
    ndarray, shape (..., 3, 6)
    """
    d = np.asarray(d, dtype=np.float64)
    z = np.zeros(d.shape[:-1])
    h = 0.5 * d
    r1 = np.stack([d[..., 0], z, z, z, h[..., 2], h[..., 1]], -1)
    r2 = np.stack([z, d[..., 1], z, h[..., 2], z, h[..., 0]], -1)
    r3 = np.stack([z, z, d[..., 2], h[..., 1], h[..., 0], z], -1)
    return np.stack([r1, r2, r3], -2)


def _skew(e: np.ndarray) -> np.ndarray:
    z = np.zeros(e.shape[:-1])
    x, y, w = e[..., 0], e[..., 1], e[..., 2]
    return np.stack([np.stack([z, -w, y], -1), np.stack([w, z, -x], -1), np.stack([-y, x, z], -1)], -2)


def beam_stiffness(d: np.ndarray, radius: np.ndarray, E: float = 1.0, nu: float = 0.3) -> np.ndarray:
    """Global 12x12 stiffness of Timoshenko beams with circular sections.

    Parameters
    ----------
    d : ndarray, shape (..., 3)
        Vector from the first to the second end.
    radius : ndarray, shape (...)
    E, nu : float
        Young's modulus and Poisson's ratio of the base material.

    Returns
    -------
    ndarray, shape (..., 12, 12)
        Dof order: u_1 (3), theta_1 (3), u_2 (3), theta_2 (3).
    """
    d = np.asarray(d, dtype=np.float64)
    r = np.asarray(radius, dtype=np.float64)
    L = np.linalg.norm(d, axis=-1)
    e = d / L[..., None]
    G = E / (2.0 * (1.0 + nu))
    A = np.pi * r**2
    I = np.pi * r**4 / 4.0  # noqa: E741 - the second moment of area, named as in every beam text
    J = 2.0 * I
    phi = 12.0 * E * I / (shear_correction(nu) * G * A * L**2)
    den = 1.0 + phi
    ee = e[..., :, None] * e[..., None, :]
    perp = np.eye(3) - ee
    S = _skew(e)
    s = lambda x: x[..., None, None]  # noqa: E731 - broadcast scalars over 3x3 blocks
    k_uu = s(E * A / L) * ee + s(12.0 * E * I / (L**3 * den)) * perp
    k_ut = -s(6.0 * E * I / (L**2 * den)) * S
    k_tt = s(G * J / L) * ee + s((4.0 + phi) * E * I / (L * den)) * perp
    k_tt2 = -s(G * J / L) * ee + s((2.0 - phi) * E * I / (L * den)) * perp
    K = np.empty(d.shape[:-1] + (12, 12))
    K[..., 0:3, 0:3] = k_uu
    K[..., 0:3, 3:6] = k_ut
    K[..., 0:3, 6:9] = -k_uu
    K[..., 0:3, 9:12] = k_ut
    K[..., 3:6, 0:3] = np.swapaxes(k_ut, -1, -2)
    K[..., 3:6, 3:6] = k_tt
    K[..., 3:6, 6:9] = -np.swapaxes(k_ut, -1, -2)
    K[..., 3:6, 9:12] = k_tt2
    K[..., 6:9, 0:3] = -k_uu
    K[..., 6:9, 3:6] = -k_ut
    K[..., 6:9, 6:9] = k_uu
    K[..., 6:9, 9:12] = -k_ut
    K[..., 9:12, 0:3] = np.swapaxes(k_ut, -1, -2)
    K[..., 9:12, 3:6] = k_tt2
    K[..., 9:12, 6:9] = -np.swapaxes(k_ut, -1, -2)
    K[..., 9:12, 9:12] = k_tt
    return K


#: Above this many free dofs a cell is factorised sparse (SuperLU, minimum-degree
#: ordering); below it dense Cholesky is faster (measured crossover ~300 dofs).
DENSE_MAX_DOFS = 300


@dataclass(frozen=True)
class _Assembly:
    """Fixed scatter pattern of one graph: element matrix entries -> free-dof matrix."""

    pd: np.ndarray  # (M, 12) position of each element dof among the free dofs, -1 if pinned
    nf: int  # number of free dofs
    op: sparse.csr_matrix  # (nf*nf or nnz, M*144) summation operator
    indices: np.ndarray | None = None  # CSC pattern when sparse
    indptr: np.ndarray | None = None

    @property
    def sparse(self) -> bool:
        return self.indices is not None


@lru_cache(maxsize=256)
def _assembly(n_nodes: int, bonds_bytes: bytes, free_bytes: bytes) -> _Assembly:
    bonds = np.frombuffer(bonds_bytes, dtype=np.int64).reshape(-1, 2)
    free = np.frombuffer(free_bytes, dtype=np.int64)
    M, nf = len(bonds), len(free)
    dofs = np.concatenate([6 * bonds[:, :1] + np.arange(6), 6 * bonds[:, 1:] + np.arange(6)], axis=1)  # (M, 12)
    pos = np.full(6 * n_nodes, -1, dtype=np.int64)
    pos[free] = np.arange(nf)
    pd = pos[dofs]
    r = np.broadcast_to(pd[:, :, None], (M, 12, 12)).reshape(-1)
    c = np.broadcast_to(pd[:, None, :], (M, 12, 12)).reshape(-1)
    keep = (r >= 0) & (c >= 0)
    cols = np.arange(M * 144)[keep]
    r, c = r[keep], c[keep]
    if nf <= DENSE_MAX_DOFS:
        op = sparse.csr_matrix((np.ones(len(r)), (r * nf + c, cols)), shape=(nf * nf, M * 144))
        return _Assembly(pd, nf, op)
    key = c * nf + r  # column-major: CSC order
    ukey, slot = np.unique(key, return_inverse=True)
    op = sparse.csr_matrix((np.ones(len(r)), (slot.reshape(-1), cols)), shape=(len(ukey), M * 144))
    indices = (ukey % nf).astype(np.int32)
    indptr = np.searchsorted(ukey // nf, np.arange(nf + 1)).astype(np.int32)
    return _Assembly(pd, nf, op, indices, indptr)


def _free_dofs(graph: PeriodicGraph) -> np.ndarray:
    comp = graph.components()
    _, first = np.unique(comp, return_index=True)
    pinned = (6 * first[:, None] + np.arange(3)).reshape(-1)
    mask = np.ones(6 * graph.n_nodes, dtype=bool)
    mask[pinned] = False
    return np.flatnonzero(mask)


def homogenize(
    graph: PeriodicGraph,
    basis: np.ndarray,
    diameters: np.ndarray,
    E: float = 1.0,
    nu: float = 0.3,
) -> np.ndarray:
    """Effective Voigt stiffness of periodic beam lattices sharing one graph.

    Parameters
    ----------
    graph : PeriodicGraph
        Reference nodes and bonds (shared by the whole batch).
    basis : ndarray, shape (B, 3, 3) or (3, 3)
        Cell bases F (columns are the translation vectors), length unit arbitrary.
    diameters : ndarray, shape (B,), (B, M) or scalar
        Strut diameters in the same length unit, per cell or per bond.
    E, nu : float
        Base material Young's modulus and Poisson's ratio.

    Returns
    -------
    ndarray, shape (B, 6, 6) or (6, 6)
        Effective stiffness (units of E), Voigt order 11, 22, 33, 23, 13, 12.
    """
    F = np.asarray(basis, dtype=np.float64)
    single = F.ndim == 2
    F = F.reshape(-1, 3, 3)
    B, M = len(F), graph.n_bonds
    dia = np.asarray(diameters, dtype=np.float64)
    dia = np.broadcast_to(dia.reshape(B, -1) if dia.ndim >= 1 and dia.size > 1 else dia.reshape(-1, 1), (B, M))
    vol = np.abs(np.linalg.det(F))
    if np.any(vol <= 0):
        raise ValueError("basis: a cell basis is singular (zero volume)")
    if np.any(dia <= 0):
        raise ValueError("diameters: must be > 0")

    free = _free_dofs(graph)
    asm = _assembly(graph.n_nodes, graph.bonds.tobytes(), free.tobytes())
    nf = asm.nf
    per_cell = 8 * (M * 144 * 2 + (asm.op.shape[0] if asm.sparse else nf * nf) * 2 + nf * 12)
    block = max(1, int(_BLOCK_BYTES // per_cell))
    out = np.empty((B, 6, 6))
    # Cell matrices are small (hundreds of dofs): threaded BLAS only adds contention here,
    # by a factor of ~10 on a loaded 2-core machine. Parallelism belongs to the caller
    # (one process per core), so BLAS runs single-threaded inside.
    with _single_threaded_blas():
        for lo in range(0, B, block):
            hi = min(B, lo + block)
            out[lo:hi] = _condense(graph, F[lo:hi], dia[lo:hi], vol[lo:hi], E, nu, asm)
    return out[0] if single else out


def _solve_spd(A: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """``A^-1 rhs`` for a batch of SPD matrices (LAPACK Cholesky, one call per cell)."""
    out = np.empty_like(rhs)
    for k in range(len(A)):
        c, info = potrf(A[k], lower=True, overwrite_a=True, clean=False)
        if info != 0:
            raise RuntimeError(
                "the cell stiffness is singular: the lattice has a mechanism that even rigid "
                f"joints cannot stop (LAPACK potrf info={info})"
            )
        out[k], info = potrs(c, rhs[k], lower=True)
    return out


def _solve_sparse(asm: _Assembly, data: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """``A^-1 rhs`` per cell for SPD matrices given as CSC data (nnz, b) on one fixed pattern."""
    out = np.empty_like(rhs)
    data = np.ascontiguousarray(data.T)  # (b, nnz): one contiguous row per cell
    for k in range(rhs.shape[0]):
        A = sparse.csc_matrix((data[k], asm.indices, asm.indptr), shape=(asm.nf, asm.nf))
        try:
            lu = splu(A, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0, options={"SymmetricMode": True})
        except RuntimeError as exc:  # "Factor is exactly singular"
            raise RuntimeError(
                "the cell stiffness is singular: the lattice has a mechanism that even rigid joints cannot stop"
            ) from exc
        out[k] = lu.solve(rhs[k])
    return out


def _condense(graph, F, dia, vol, E, nu, asm: _Assembly):
    b, nf, pd = len(F), asm.nf, asm.pd
    d = graph.bond_vectors(F)  # (b, M, 3)
    Ke = beam_stiffness(d, dia / 2.0, E, nu)  # (b, M, 12, 12)
    Bd = strain_operator(d)  # (b, M, 3, 6)
    # coupling with strain: only the second end carries E d
    KeB = np.einsum("bmij,bmjk->bmik", Ke[..., 6:9], Bd)  # (b, M, 12, 6)
    Kfe = np.zeros((b, nf + 1, 6))
    idx = np.where(pd >= 0, pd, nf)  # pinned dofs dumped into a spare row
    np.add.at(Kfe, (slice(None), idx.reshape(-1)), KeB.reshape(b, -1, 6))
    Kfe = Kfe[:, :nf]
    Kee = np.einsum("bmji,bmjk->bik", Bd, KeB[..., 6:9, :])
    # K_ff: one sparse-matrix product scatters the element blocks of the whole batch
    assembled = asm.op @ Ke.reshape(b, -1).T
    if asm.sparse:
        X = _solve_sparse(asm, assembled, Kfe)
    else:
        X = _solve_spd(np.ascontiguousarray(assembled.T).reshape(b, nf, nf), Kfe)
    C = Kee - np.einsum("bki,bkj->bij", Kfe, X)
    C = 0.5 * (C + np.swapaxes(C, -1, -2))
    return C / vol[:, None, None]
