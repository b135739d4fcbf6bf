"""Geometric multigrid preconditioner for the voxel operator of :mod:`graded.fem.voxel`.

A V-cycle on a hierarchy of voxel grids, each coarsened by 2 along every axis:

* **Galerkin coarse operators, element by element.** A coarse voxel is the union of 8 fine
  voxels and trilinear interpolation is local to it, so ``P^T K P`` is assembled from coarse
  element matrices ``K_C = sum_s T_s^T K_s T_s`` (``T_s`` interpolates the coarse corners to the
  corners of child ``s``). On the first coarse grid this is ``sum_s E_s G_s`` with 8 fixed
  matrices ``G_s``; below it each coarse voxel stores its own 24 x 24 matrix. Void stays void
  (a coarse voxel whose children are all void has no matrix), thin walls keep their stiffness
  on every level, and there is no contrast parameter.
* **Chebyshev smoothing with the inverse 3 x 3 nodal blocks** (degree :data:`SMOOTH_DEGREE`,
  on ``[lmax / CHEBYSHEV_RATIO, lmax]`` of ``D^-1 K``, ``lmax`` from a few power iterations),
  which needs only operator applications, so the fine level stays matrix free.
* **Coarsest grid solved exactly**: a dense pseudo-inverse (the periodic operator is singular
  along rigid translations), or more smoothing where the grid stops coarsening above
  :data:`COARSEST_DOFS`.

The cycle is a fixed symmetric positive semi-definite linear operator (same polynomial before
and after the coarse correction), so it can precondition conjugate gradients. All load cases of
a cell go through it together, as with the FFT reference preconditioner it replaces.
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = [
    "VoxelMultigrid",
    "SMOOTH_DEGREE",
    "CHEBYSHEV_RATIO",
    "COARSEST_DOFS",
    "POWER_STEPS",
]

#: Chebyshev degree of the pre- and post-smoother (one operator application per degree).
SMOOTH_DEGREE = 2
#: The smoother damps the eigenvalues of D^-1 K in [lmax / CHEBYSHEV_RATIO, lmax]; the coarse
#: grid must take care of the rest (30 is the usual choice for 3D elasticity).
CHEBYSHEV_RATIO = 30.0
#: Largest coarsest grid (degrees of freedom) solved by a dense pseudo-inverse.
COARSEST_DOFS = 600
#: Power iterations for lmax of D^-1 K per level; the estimate is raised by LMAX_SAFETY because
#: a Chebyshev smoother that underestimates lmax amplifies the top of the spectrum.
POWER_STEPS = 12
LMAX_SAFETY = 1.1
#: Eigenvalues of the coarsest matrix below this fraction of its largest are its null space
#: (rigid translations of a periodic cell; their round-off images).
_PINV_RCOND = 1e-10

#: Corner offsets of a voxel (corner a has local index a), as in graded.fem.voxel.
_OFFSETS = np.array([[(a >> 0) & 1, (a >> 1) & 1, (a >> 2) & 1] for a in range(8)], dtype=np.int64)


def _child_interpolation() -> np.ndarray:
    """T (8 children, 24, 24): coarse corner DOFs -> DOFs of child s's corners (component-major)."""
    def w(p: int, b: int) -> float:  # 1D hat of coarse corner b in {0, 1} at fine point p in {0, 1, 2}
        return 1.0 - p / 2.0 if b == 0 else p / 2.0

    T = np.zeros((8, 24, 24))
    for s, os_ in enumerate(_OFFSETS):
        P = np.zeros((8, 8))
        for a, oa in enumerate(_OFFSETS):
            for b, ob in enumerate(_OFFSETS):
                P[a, b] = math.prod(w(int(os_[d] + oa[d]), int(ob[d])) for d in range(3))
        T[s] = np.kron(np.eye(3), P)
    return T


def _corners(shape: tuple[int, int, int], device) -> torch.Tensor:
    """(8, N) node index of corner a of every voxel of a periodic grid."""
    grid = torch.arange(math.prod(shape), device=device).reshape(shape)
    return torch.stack(
        [torch.roll(grid, shifts=tuple(-int(o) for o in off), dims=(0, 1, 2)).reshape(-1) for off in _OFFSETS]
    )


def _children(x: torch.Tensor) -> torch.Tensor:
    """(..., 2 m1, 2 m2, 2 m3, *tail) -> (..., m1 m2 m3, 8, *tail), child s at offset _OFFSETS[s]."""
    lead = x.shape[:1]
    n1, n2, n3 = x.shape[1:4]
    tail = x.shape[4:]
    y = x.reshape(*lead, n1 // 2, 2, n2 // 2, 2, n3 // 2, 2, *tail)
    nt = len(tail)
    perm = (0, 1, 3, 5, 6, 4, 2, *range(7, 7 + nt))
    return y.permute(perm).reshape(*lead, (n1 // 2) * (n2 // 2) * (n3 // 2), 8, *tail)


def _prolong(u: torch.Tensor) -> torch.Tensor:
    """Trilinear periodic interpolation of node fields (..., m1, m2, m3) to (..., 2m1, 2m2, 2m3).

    Fine node 2I is coarse node I; fine node 2I + 1 is the mean of coarse nodes I and I + 1.
    """
    for ax in (-3, -2, -1):
        v = u.movedim(ax, -1)
        mid = 0.5 * (v + torch.roll(v, shifts=-1, dims=-1))
        u = torch.stack((v, mid), dim=-1).reshape(*v.shape[:-1], 2 * v.shape[-1]).movedim(-1, ax)
    return u


def _restrict(f: torch.Tensor) -> torch.Tensor:
    """Transpose of :func:`_prolong`: (..., 2m1, 2m2, 2m3) -> (..., m1, m2, m3)."""
    for ax in (-3, -2, -1):
        v = f.movedim(ax, -1)
        v = v.reshape(*v.shape[:-1], v.shape[-1] // 2, 2)
        e0, e1 = v[..., 0], v[..., 1]
        f = (e0 + 0.5 * e1 + 0.5 * torch.roll(e1, shifts=1, dims=-1)).movedim(-1, ax)
    return f


class _Level:
    """One grid of the hierarchy: element matrices (or the fine operator), nodal block inverses."""

    def __init__(self, shape, apply, mask, diag_blocks, device, dtype):
        self.shape = shape
        self._apply = apply
        self.mask = mask.to(dtype)  # (M, 1, 1, *shape)
        M = mask.shape[0]
        N = math.prod(shape)
        blocks = diag_blocks.reshape(M, N, 3, 3)
        live = mask.reshape(M, N) > 0
        eye = torch.eye(3, dtype=blocks.dtype, device=device)
        safe = torch.where(live[..., None, None], blocks, eye)
        inv = torch.linalg.inv(safe) * live[..., None, None]
        self.Dinv = inv.permute(0, 2, 3, 1).to(dtype).contiguous()  # (M, 3, 3, N)
        self.lmax = None

    def apply(self, u: torch.Tensor) -> torch.Tensor:
        return self._apply(u) * self.mask

    def jacobi(self, r: torch.Tensor) -> torch.Tensor:
        M, L = r.shape[:2]
        rf = r.reshape(M, L, 1, 3, -1)
        return (self.Dinv[:, None] * rf).sum(3).reshape(r.shape)

    def estimate_lmax(self, generator: torch.Generator) -> None:
        M = self.mask.shape[0]
        v = torch.rand((M, 1, 3, *self.shape), generator=generator, dtype=self.Dinv.dtype).to(self.Dinv.device)
        v = v * self.mask
        tiny = torch.finfo(v.dtype).tiny
        for _ in range(POWER_STEPS):
            v = v / torch.sqrt((v * v).flatten(1).sum(-1)).clamp_min(tiny)[:, None, None, None, None, None]
            v = self.jacobi(self.apply(v))
        # the growth of the last step (the norm of the image of a unit vector) approaches lmax from below
        self.lmax = (LMAX_SAFETY * torch.sqrt((v * v).flatten(1).sum(-1))).clamp_min(tiny)

    def smooth(self, b: torch.Tensor, x: torch.Tensor | None, r: torch.Tensor | None, need_residual: bool):
        """Chebyshev smoothing of K x = b from x (None = 0) with residual r; returns (x, r or None)."""
        lmax = self.lmax[:, None, None, None, None, None]
        lmin = lmax / CHEBYSHEV_RATIO
        theta = 0.5 * (lmax + lmin)
        delta = 0.5 * (lmax - lmin)
        sigma = theta / delta
        rho = 1.0 / sigma
        if x is None:
            x = torch.zeros_like(b)
            r = b.clone()
        d = self.jacobi(r) / theta
        for _ in range(SMOOTH_DEGREE - 1):
            x = x + d
            r = r - self.apply(d)
            rho_new = 1.0 / (2.0 * sigma - rho)
            d = (rho_new * rho) * d + (2.0 * rho_new / delta) * self.jacobi(r)
            rho = rho_new
        x = x + d
        return x, (r - self.apply(d) if need_residual else None)


class _ElementOperator:
    """Assembled action of per-voxel 24 x 24 matrices (component-major DOFs) on a periodic grid."""

    def __init__(self, shape, Ke_full: torch.Tensor, device, dtype):
        # Ke_full: (M, N, 24, 24) over all voxels of the grid; zero where the voxel is void
        self.shape = shape
        corner = _corners(shape, device)
        self.M = Ke_full.shape[0]
        self.nodes, self.Ke = [], []
        for m in range(self.M):
            # a voxel matrix is positive semi-definite: zero exactly when its trace is
            keep = torch.nonzero(torch.diagonal(Ke_full[m], dim1=-2, dim2=-1).sum(-1) > 0).reshape(-1)
            self.nodes.append(corner[:, keep].reshape(-1))
            self.Ke.append(Ke_full[m, keep].to(dtype).contiguous())

    def __call__(self, u: torch.Tensor) -> torch.Tensor:
        M, L = u.shape[:2]
        out = torch.zeros_like(u)
        for m in range(M):
            nodes, Ke = self.nodes[m], self.Ke[m]
            ne = Ke.shape[0]
            if ne == 0:
                continue
            ue = torch.index_select(u[m].reshape(3 * L, -1), 1, nodes).reshape(L, 24, ne).permute(2, 0, 1).contiguous()
            fe = torch.bmm(ue, Ke)  # (ne, L, 24); Ke is symmetric
            out[m].reshape(L, 3, -1).index_add_(2, nodes, fe.permute(1, 2, 0).reshape(L, 3, 8 * ne))
        return out


def _element_blocks(shape, Ke_full: torch.Tensor) -> torch.Tensor:
    """Nodal 3 x 3 diagonal blocks (M, N, 3, 3) assembled from voxel matrices (M, N, 24, 24)."""
    M, N = Ke_full.shape[:2]
    corner = _corners(shape, Ke_full.device)  # (8, N)
    blk = torch.diagonal(Ke_full.reshape(M, N, 3, 8, 3, 8), dim1=3, dim2=5)  # (M, N, 3, 3, 8)
    out = torch.zeros((M, N, 3, 3), dtype=Ke_full.dtype, device=Ke_full.device)
    for a in range(8):
        out.index_add_(1, corner[a], blk[..., a])
    return out


def _element_dense(shape, Ke: torch.Tensor) -> torch.Tensor:
    """Assembled matrix (3N, 3N), DOF ``i N + node``, from the voxel matrices (N, 24, 24) of a cell."""
    N = math.prod(shape)
    corner = _corners(shape, Ke.device)  # (8, N)
    comp = torch.arange(3, device=Ke.device)
    dof = (comp[:, None, None] * N + corner[None]).reshape(24, N).T  # (N, 24), component-major
    A = torch.zeros((3 * N, 3 * N), dtype=Ke.dtype, device=Ke.device)
    rows = dof[:, :, None].expand(N, 24, 24).reshape(-1)
    cols = dof[:, None, :].expand(N, 24, 24).reshape(-1)
    A.index_put_((rows, cols), Ke.reshape(-1), accumulate=True)
    return A


class VoxelMultigrid:
    """V-cycle preconditioner for the voxel operator of a batch of cells on one grid.

    Parameters
    ----------
    fine_apply : callable
        ``K u`` on the fine grid for u of shape (M, L, 3, n1, n2, n3).
    modulus : torch.Tensor, shape (M, n1, n2, n3), float64
        Relative Young's modulus of every voxel (0 = void) the fine operator was built from.
    K0_cm : torch.Tensor, shape (24, 24)
        Unit element stiffness with component-major DOFs (``8 i + a``).
    mask : torch.Tensor, shape (M, 1, 1, n1, n2, n3), float or None
        Free nodes of the fine grid (None = all).
    fix_origin_planes : bool
        The fluctuation is zero on the planes of index 0 (kinematic BCs); kept on every level.
    generator : torch.Generator
        Start vectors of the power iterations (the preconditioner is deterministic given it).
    """

    def __init__(self, fine_apply, modulus, K0_cm, mask, fix_origin_planes: bool, generator: torch.Generator,
                 dtype: torch.dtype = torch.float32):
        dev = modulus.device
        self.dtype = dtype
        M = modulus.shape[0]
        shape = tuple(modulus.shape[1:])
        if mask is None:
            mask = torch.ones((M, 1, 1, *shape), dtype=torch.float64, device=dev)
        # nodal blocks of the fine operator: corner a of voxel e adds E_e K0[a, a]
        corner = _corners(shape, dev)
        N = math.prod(shape)
        K5 = K0_cm.reshape(3, 8, 3, 8)
        blk0 = torch.diagonal(K5, dim1=1, dim2=3).permute(2, 0, 1)  # (8, 3, 3)
        fine_blocks = torch.zeros((M, N, 3, 3), dtype=torch.float64, device=dev)
        for a in range(8):
            fine_blocks.index_add_(1, corner[a], modulus.reshape(M, N)[:, :, None, None] * blk0[a])
        self.levels = [_Level(shape, fine_apply, mask, fine_blocks, dev, dtype)]
        T = torch.as_tensor(_child_interpolation(), dtype=torch.float64, device=dev)
        G = torch.einsum("sai,ab,sbj->sij", T, K0_cm, T)  # (8, 24, 24)
        Ke_full = None
        self.coarsest = None
        while True:
            n = self.levels[-1].shape
            if math.prod(n) * 3 <= COARSEST_DOFS or any(k % 2 or k < 4 for k in n):
                break
            cshape = tuple(k // 2 for k in n)
            if Ke_full is None:
                Ech = _children(modulus)  # (M, Nc, 8)
                Ke_full = torch.matmul(Ech, G.reshape(8, 576)).reshape(M, -1, 24, 24)
            else:
                Kch = _children(Ke_full.reshape(M, *n, 24, 24))  # (M, Nc, 8, 24, 24)
                Ke_full = sum(T[c].T @ (Kch[:, :, c] @ T[c]) for c in range(8))
            op = _ElementOperator(cshape, Ke_full, dev, dtype)
            blocks = _element_blocks(cshape, Ke_full)
            cmask = (torch.diagonal(blocks, dim1=-2, dim2=-1).sum(-1) > 0).to(torch.float64)
            if fix_origin_planes:
                fixed = torch.zeros(cshape, dtype=torch.bool, device=dev)
                fixed[0, :, :] = fixed[:, 0, :] = fixed[:, :, 0] = True
                cmask = cmask * (~fixed).reshape(1, -1).to(torch.float64)
            cmask = cmask.reshape(M, 1, 1, *cshape)
            self.levels.append(_Level(cshape, op, cmask, blocks, dev, dtype))
        for lvl in self.levels:
            lvl.estimate_lmax(generator)
        last = self.levels[-1]
        if len(self.levels) > 1 and math.prod(last.shape) * 3 <= COARSEST_DOFS:
            pinvs = []
            for m in range(M):
                A = _element_dense(last.shape, Ke_full[m])
                live = last.mask[m].reshape(-1).repeat(3) > 0
                A = A * live[:, None] * live[None, :]
                w, V = torch.linalg.eigh(A)
                keep = w > _PINV_RCOND * w.abs().max().clamp_min(1e-300)
                winv = torch.where(keep, 1.0 / torch.where(keep, w, torch.ones_like(w)), torch.zeros_like(w))
                pinvs.append((V * winv) @ V.T)
            self.coarsest = torch.stack(pinvs).to(dtype)  # (M, 3N, 3N)

    def __call__(self, r: torch.Tensor) -> torch.Tensor:
        """One V-cycle from zero for r of shape (M, L, 3, n1, n2, n3); the result is masked."""
        return self._cycle(0, r.to(self.dtype)).to(r.dtype)

    def _cycle(self, k: int, b: torch.Tensor) -> torch.Tensor:
        lvl = self.levels[k]
        if k == len(self.levels) - 1:
            if self.coarsest is not None:
                M, L = b.shape[:2]
                x = torch.einsum("mij,mlj->mli", self.coarsest, b.reshape(M, L, -1))
                return x.reshape(b.shape)
            x, _ = lvl.smooth(b, None, None, need_residual=False)
            return x * lvl.mask
        x, r = lvl.smooth(b, None, None, need_residual=True)
        nxt = self.levels[k + 1]
        rc = _restrict(r) * nxt.mask
        ec = self._cycle(k + 1, rc)
        e = _prolong(ec) * lvl.mask
        x = x + e
        r = r - lvl.apply(e)
        x, _ = lvl.smooth(b, x, r, need_residual=False)
        return x * lvl.mask
