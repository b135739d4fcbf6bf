"""Linear-elastic homogenization of voxel cells (periodic or affine boundary conditions).

A cell is a grid of ``n1 x n2 x n3`` cubic voxels, each a trilinear hexahedron (hex8, full
2x2x2 Gauss integration, which is exact for a cube) of isotropic material whose Young's modulus
is given per voxel relative to the solid's ``E_s`` (0 = void). The displacement is
``u(x) = E x + w(x)`` with a macroscopic strain ``E`` and a fluctuation ``w`` that is

* periodic on the cell (``bc="periodic"``), the homogenized stiffness of the infinite
  tessellation, or
* zero on the cell boundary (``bc="affine"``), the kinematic (Voigt-type) estimate that
  overestimates the stiffness and that Kumar et al. (npj Comput. Mater. 2020) used.

The six unit strains (Voigt order 11, 22, 33, 23, 13, 12, engineering shear) are solved at once,
batched over cells, by conjugate gradients on a matrix-free operator written in torch (on any
device) and preconditioned in two levels: the exact inverse of the homogeneous solid's operator,
applied by FFT (the operator of a uniform periodic grid is a block circulant), then a deflation
onto aggregates that follow the solid (:mod:`graded.fem.voxel_coarse`), which catches the soft
modes the uniform solid does not have (lamellae sliding on one another). CG iterates in float32, a
quarter of the cost of float64 per operator application on the CPU, with reliable updates: its
residual is replaced by the true float64 one at intervals, so the solution reaches float64
accuracy (tolerances below :data:`_FLOAT32_RTOL` finish in float64). Void is removed:
nodes that touch no solid voxel are taken out of the system, so the iteration count does not
depend on a contrast parameter (``contrast > 0`` instead gives void that stiffness, for
comparison). The stiffness is the energy average ``C_ij = <eps_i : sigma_j>``, computed as
average stress plus a residual correction, so its error is quadratic in the solver residual.

Nodes are indexed like voxels: node ``(i, j, k)`` is the lower corner of voxel ``(i, j, k)``; with
periodic wrap the grid has one node per voxel. Voxels are cubes; the cell is
``n1 x n2 x n3`` voxel edges (stiffness does not depend on the length unit).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .voxel_coarse import aggregation_coarse_space

__all__ = [
    "VoxelHomogenization",
    "homogenize_voxels",
    "hex8_stiffness",
    "isotropic_stiffness",
    "VOXEL_RTOL",
    "VOXEL_MAX_ITER",
]

#: Default stop of CG: preconditioned residual norm relative to the right-hand side's. The
#: stiffness error is quadratic in it (energy form). Measured on 32^3 spinodoids against a solve
#: to 1e-10 (docs/voxel.md): max|dC| / max|C| is 5e-10 (isotropic), 1e-9 (columnar) and 1e-8
#: (lamellar), every diagonal constant within 5e-6 of its own value: far below the 0.3-1.5 %
#: discretisation error of the grids in use.
VOXEL_RTOL = 1e-5
#: Iteration cap. Two-level preconditioned CG on spinodoid cells (rho >= 0.3) needs 30-140
#: iterations at 1e-5 (lamellar cells the most; 40-530 with the FFT step alone); cells that do
#: not converge in this many are reported, not hidden.
VOXEL_MAX_ITER = 2000
#: Preconditioned load norm, relative to the square root of the affine energy, below which a
#: load case is zero up to round-off (a uniform cell), so the fluctuation is zero.
_TRIVIAL_LOAD = 1e-13
#: CG iterates in float32 down to this relative residual: measured on spinodoid cells it needs
#: as many iterations as float64 there, while at 1e-6 the lamellar cell needs 20 % more (lost
#: orthogonality). Tighter tolerances finish in float64.
_FLOAT32_RTOL = 1e-5
#: CG in float32 replaces its recurred residual by the true float64 one whenever a
#: system's residual fell by this factor since the last replacement (float32 keeps ~7 digits,
#: so the recurrence stays accurate over 3 of them), and before any system is declared done.
_REPLACE = 1e-3
#: Working memory of one operator application per solved system, in bytes per voxel:
#: gathered corner values, their reordering and the element forces (24 float64 each).
_BYTES_PER_VOXEL_SYSTEM = 72 * 8

#: On grids below :data:`COARSE_AT_ONCE` CG runs with the FFT preconditioner alone for this
#: many iterations, then, if its rate over the second half predicts more than
#: :data:`COARSE_WORTH` iterations in all, adds the coarse level (:mod:`graded.fem.voxel_coarse`)
#: and restarts. Measured on 32^3 cells (docs/voxel.md): isotropic spinodoids and most cubic
#: voxel cells stay on one level, lamellar ones switch (428 iterations -> 111).
COARSE_PROBE = 10
#: Predicted iteration count above which the coarse level pays: it costs about as much as it
#: saves where the FFT step alone converges in 30-60 iterations (isotropic spinodoids, 64^3:
#: 12.0 s with it, 11.3 s without; cubic voxel cells at 32^3: 0.81 s against 0.45 s a label)
#: and cuts time 1.3-3.6x on columnar and lamellar cells (90-530 iterations alone).
COARSE_WORTH = 80
#: Grids of at least this many voxels use the coarse level from the start: there the probe and
#: restart cost a lamellar 64^3 cell 140 iterations and 29.6 s against 120 and 25.5 s (the
#: isotropic cell pays 12.0 s against 9.6 s for it).
COARSE_AT_ONCE = 48**3
#: Corner offsets of a voxel; corner a has local index a (DOF 3 a + component).
OFFSETS = np.array([[(a >> 0) & 1, (a >> 1) & 1, (a >> 2) & 1] for a in range(8)], dtype=np.int64)
#: Voigt pairs (i, j) of the six strain components.
_VOIGT = [(0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1)]


@dataclass(frozen=True)
class VoxelHomogenization:
    """Homogenized stiffness of voxel cells.

    Attributes
    ----------
    C : ndarray, shape (M, 6, 6), float64
        Stiffness in Voigt form (11, 22, 33, 23, 13, 12; engineering shear), relative to ``E_s``.
    iterations : ndarray, shape (M,), int
        CG iterations of the slowest of the six load cases of each cell.
    residual : ndarray, shape (M,), float64
        Largest final relative preconditioned residual of the six load cases.
    converged : ndarray, shape (M,), bool
        Whether every load case reached the tolerance.
    density : ndarray, shape (M,), float64
        Solid volume fraction (voxels with modulus > 0).
    """

    C: np.ndarray
    iterations: np.ndarray
    residual: np.ndarray
    converged: np.ndarray
    density: np.ndarray


def isotropic_stiffness(E: float = 1.0, nu: float = 0.3) -> np.ndarray:
    """Voigt stiffness (6, 6) of an isotropic material (engineering shear).

    >>> float(isotropic_stiffness(1.0, 0.0)[3, 3])
    0.5
    """
    lam = E * nu / ((1 + nu) * (1 - 2 * nu))
    mu = E / (2 * (1 + nu))
    D = np.zeros((6, 6))
    D[:3, :3] = lam
    D[np.arange(3), np.arange(3)] += 2 * mu
    D[np.arange(3, 6), np.arange(3, 6)] = mu
    return D


def _shape_gradients(xi: np.ndarray) -> np.ndarray:
    """Gradients (8, 3) of the trilinear shape functions of the unit cube at point ``xi`` (3,)."""
    g = np.empty((8, 3))
    for a, off in enumerate(OFFSETS):
        f = [xi[d] if off[d] else 1.0 - xi[d] for d in range(3)]
        s = [1.0 if off[d] else -1.0 for d in range(3)]
        g[a] = [s[0] * f[1] * f[2], f[0] * s[1] * f[2], f[0] * f[1] * s[2]]
    return g


def _strain_matrix(grad: np.ndarray) -> np.ndarray:
    """Voigt strain-displacement matrix B (6, 24) from shape gradients (8, 3)."""
    B = np.zeros((6, 24))
    for a in range(8):
        for row, (i, j) in enumerate(_VOIGT):
            B[row, 3 * a + i] += grad[a, j]
            if i != j:
                B[row, 3 * a + j] += grad[a, i]
    return B


def hex8_stiffness(nu: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """Element stiffness of a unit cube of unit Young's modulus, and its centre strain matrix.

    Returns
    -------
    K0 : ndarray, shape (24, 24)
        ``int B^T D B dV`` by 2x2x2 Gauss quadrature (exact for the cube); DOF ``3 a + i`` is
        component ``i`` of corner ``a`` (corner offsets :data:`OFFSETS`).
    Bc : ndarray, shape (6, 24)
        Strain matrix at the centre, which is also the element's mean strain matrix.
    """
    D = isotropic_stiffness(1.0, nu)
    g = 0.5 / math.sqrt(3.0)
    K0 = np.zeros((24, 24))
    for off in OFFSETS:
        B = _strain_matrix(_shape_gradients(0.5 + g * (2 * off - 1)))
        K0 += 0.125 * B.T @ D @ B
    return K0, _strain_matrix(_shape_gradients(np.full(3, 0.5)))


def _unit_strain_displacements() -> np.ndarray:
    """Corner displacements (6, 24) of the six unit Voigt strains (engineering shear)."""
    U = np.zeros((6, 24))
    for c, (i, j) in enumerate(_VOIGT):
        eps = np.zeros((3, 3))
        eps[i, j] = eps[j, i] = 1.0 if i == j else 0.5
        U[c] = (OFFSETS @ eps.T).reshape(-1)
    return U


class _Operator:
    """Matrix-free assembled stiffness of a batch of voxel cells on one grid.

    Only voxels with non-zero modulus are stored (their 8 corner node indices and modulus):
    gather the 24 corner values, multiply by the element stiffness, scatter-add back.
    """

    def __init__(
        self,
        modulus: torch.Tensor,
        nu: float,
        mask: torch.Tensor | None,
        work_bytes: int,
        periodic: bool = True,
    ):
        # modulus: (M, n1, n2, n3); systems are (cell, load case) pairs, 6 per cell
        self.periodic = periodic
        self.boundary_mask = mask is not None and not periodic
        self.shape = tuple(modulus.shape[1:])
        self.M = modulus.shape[0]
        K0, Bc = hex8_stiffness(nu)
        opts = {"dtype": modulus.dtype, "device": modulus.device}
        self.E = modulus
        self.K0 = torch.as_tensor(K0, **opts)
        # the same matrix with DOFs ordered component-major (8 i + a), the layout of a gather
        cm = np.array([3 * a + i for i in range(3) for a in range(8)])
        self.K0_cm = torch.as_tensor(K0[np.ix_(cm, cm)], **opts)
        self.Bc = torch.as_tensor(Bc, **opts)
        self.D = torch.as_tensor(isotropic_stiffness(1.0, nu), **opts)
        self.mask = mask  # (M, 1, 1, n1, n2, n3) float 0/1 or None
        grid = torch.arange(math.prod(self.shape), device=modulus.device).reshape(self.shape)
        corner = [torch.roll(grid, shifts=tuple(-int(o) for o in off), dims=(0, 1, 2)).reshape(-1) for off in OFFSETS]
        corner = torch.stack(corner)  # (8, N): node index of corner a of every voxel
        self.nodes, self.Ee = [], []
        for m in range(self.M):
            Em = modulus[m].reshape(-1)
            keep = torch.nonzero(Em > 0).reshape(-1)
            self.nodes.append(corner[:, keep].reshape(-1))  # (8 Ns,), corner-major
            self.Ee.append(Em[keep])
        self.work_bytes = work_bytes
        self._symbol_inv = None  # built on first use of the FFT preconditioner
        # second level of the preconditioner (aggregates that follow the solid), added by
        # add_coarse_space when CG needs it; shared with the casts of this operator
        self.coarse: list = []
        self._K0 = K0

    def add_coarse_space(self) -> None:
        """Build the aggregation coarse level of every cell (once); ``precondition`` uses it."""
        if self.coarse:
            return
        N = math.prod(self.shape)
        for m in range(self.M):
            free = np.ones(N, dtype=bool) if self.mask is None else self.mask[m].reshape(-1).cpu().numpy() > 0
            nodes = self.nodes[m].reshape(8, -1).cpu().numpy()
            Ee = self.Ee[m].cpu().numpy()
            self.coarse.append(aggregation_coarse_space(nodes, Ee, free, self.shape, self._K0, device=self.E.device))

    def cast(self, dtype: torch.dtype) -> _Operator:
        """The same operator computing in ``dtype`` (shares the index arrays)."""
        other = copy.copy(self)
        other.K0_cm = self.K0_cm.to(dtype)
        other.Ee = [e.to(dtype) for e in self.Ee]
        other.mask = None if self.mask is None else self.mask.to(dtype)
        return other

    def apply(self, u: torch.Tensor) -> torch.Tensor:
        """K u for u of shape (M, 6, 3, n1, n2, n3)."""
        M, L = u.shape[:2]
        out = torch.zeros_like(u)
        for m in range(M):
            nodes, Ee = self.nodes[m], self.Ee[m]
            ns = Ee.shape[0]
            if ns == 0:
                continue
            chunk = max(1, int(self.work_bytes // (_BYTES_PER_VOXEL_SYSTEM * ns)))
            uf = u[m].reshape(3 * L, -1)
            of = out[m].reshape(L, 3, -1)
            for s in range(0, L, chunk):
                # a 2D index_select is the fastest gather in torch on the CPU
                ue = torch.index_select(uf[3 * s : 3 * (s + chunk)], 1, nodes).reshape(-1, 24, ns)  # component-major
                fe = torch.matmul(self.K0_cm, ue)
                fe *= Ee
                of[s : s + chunk].index_add_(2, nodes, fe.reshape(-1, 3, 8 * ns))
        if self.boundary_mask:
            out *= self.mask  # nodes off the mask that only void touches get no force anyway
        return out

    def affine_load(self, U: torch.Tensor) -> torch.Tensor:
        """Right-hand side -K u_affine for the L unit strains U (L, 24), shape (M, L, 3, n1, n2, n3)."""
        L = U.shape[0]
        fe0 = (self.K0 @ U.T).T.reshape(L, 8, 3).transpose(1, 2)  # (L loads, 3, 8 corners)
        out = torch.zeros((self.M, L, 3, *self.shape), dtype=self.K0.dtype, device=self.K0.device)
        for m in range(self.M):
            fe = -(fe0[:, :, :, None] * self.Ee[m]).reshape(L, 3, -1)
            out[m].reshape(L, 3, -1).index_add_(2, self.nodes[m], fe)
        if self.mask is not None:
            out = out * self.mask
        return out

    def _reference_symbol_inverse(self, K0: np.ndarray, opts: dict) -> torch.Tensor:
        """Inverse (n1, n2, n3//2+1, 3, 3) of the Fourier symbol of the uniform solid's operator."""
        n1, n2, n3 = self.shape
        # stencil k(d) = sum over corner pairs with b - a = d of the 3x3 blocks of K0
        stencil: dict[tuple[int, int, int], np.ndarray] = {}
        for a, oa in enumerate(OFFSETS):
            for b, ob in enumerate(OFFSETS):
                d = tuple(int(x) for x in ob - oa)
                stencil[d] = stencil.get(d, 0.0) + K0[3 * a : 3 * a + 3, 3 * b : 3 * b + 3]
        f1 = torch.fft.fftfreq(n1, dtype=torch.float64) * 2 * math.pi
        f2 = torch.fft.fftfreq(n2, dtype=torch.float64) * 2 * math.pi
        f3 = torch.fft.rfftfreq(n3, dtype=torch.float64) * 2 * math.pi
        x1, x2, x3 = torch.meshgrid(f1, f2, f3, indexing="ij")
        S = torch.zeros((*x1.shape, 3, 3), dtype=torch.complex128)
        for d, k in stencil.items():
            phase = torch.exp(1j * (d[0] * x1 + d[1] * x2 + d[2] * x3))
            S += phase[..., None, None] * torch.as_tensor(k, dtype=torch.complex128)
        S[0, 0, 0] = torch.eye(3, dtype=torch.complex128)
        Sinv = torch.linalg.inv(S)
        Sinv[0, 0, 0] = 0.0  # the mean displacement is free: no correction in it
        return Sinv.to(device=opts["device"])

    def _project(self, v: torch.Tensor) -> torch.Tensor:
        """Remove the rigid translation of the (masked) solid: the operator's null space."""
        if self.mask is None:
            return v - v.flatten(3).mean(-1)[..., None, None, None]
        count = self.mask.flatten(3).sum(-1)[..., None, None, None]
        return (v - v.flatten(3).sum(-1)[..., None, None, None] / count) * self.mask

    def precondition(self, r: torch.Tensor) -> torch.Tensor:
        """Inverse of the uniform solid's operator applied to r (M, 6, 3, n1, n2, n3), masked.

        With periodic fluctuations the result is projected onto the complement of the rigid
        translations (the residuals CG feeds in already lie there, so the preconditioner stays
        symmetric on that space), so round-off cannot accumulate along them.
        """
        # r is masked and free of rigid translations already (it is a combination of the masked
        # load and operator outputs), so only the result needs the mask and the projection
        R = torch.view_as_real(torch.fft.rfftn(r, dim=(3, 4, 5)))  # (M, L, 3, n1, n2, n3 // 2 + 1, 2)
        if self._symbol_inv is None or self._symbol_inv.dtype != r.dtype:
            Sinv = self._reference_symbol_inverse(self.K0.cpu().numpy(), {"device": self.K0.device})
            # the symbol of a symmetric stencil whose blocks satisfy k(-d) = k(d)^T is real
            # symmetric: real products on the (re, im) pairs, half the work of complex ones
            self._symbol_inv = Sinv.real.permute(3, 4, 0, 1, 2)[..., None].contiguous().to(r.dtype)
        S = self._symbol_inv  # (3, 3, n1, n2, n3 // 2 + 1, 1)
        Z = torch.empty_like(R)
        for i in range(3):
            Zi = Z[:, :, i]
            torch.mul(R[:, :, 0], S[i, 0], out=Zi)
            Zi.addcmul_(R[:, :, 1], S[i, 1]).addcmul_(R[:, :, 2], S[i, 2])
        z = torch.fft.irfftn(torch.view_as_complex(Z), s=self.shape, dim=(3, 4, 5))
        if self.mask is not None:
            z = z * self.mask
        L = r.shape[1]
        for m, coarse in enumerate(self.coarse):
            coarse.deflate(r[m].reshape(L, 3, -1), z[m].reshape(L, 3, -1))
        if self.periodic:
            z = self._project(z)
        return z


def _as_modulus(cells) -> np.ndarray:
    arr = np.asarray(cells)
    if arr.ndim == 3:
        arr = arr[None]
    if arr.ndim != 4 or min(arr.shape) < 1:
        raise ValueError(
            f"cells: has shape {arr.shape}; give one grid (n1, n2, n3) or a batch (M, n1, n2, n3)"
        )
    if arr.dtype == bool:
        return arr.astype(np.float64)
    try:
        arr = arr.astype(np.float64)
    except (TypeError, ValueError):
        raise ValueError("cells: not numeric; give a bool solid mask or relative Young's moduli") from None
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise ValueError("cells: moduli must be finite and >= 0 (0 = void); fix the voxel values")
    return arr


def homogenize_voxels(
    cells,
    *,
    nu: float = 0.3,
    bc: str = "periodic",
    contrast: float = 0.0,
    rtol: float = VOXEL_RTOL,
    max_iter: int = VOXEL_MAX_ITER,
    device: str | torch.device | None = None,
    work_bytes: int = 1 << 30,
    batch: int = 1,
    progress: Callable[[int, int, str], None] | None = None,
    load_cases: Sequence[int] | None = None,
) -> VoxelHomogenization:
    """Homogenized 6x6 stiffness of voxel cells.

    Parameters
    ----------
    cells : array_like, shape (n1, n2, n3) or (M, n1, n2, n3)
        Bool solid mask, or the Young's modulus of every voxel relative to the solid's (>= 0,
        0 = void). All cells of one call share the grid.
    nu : float
        Poisson's ratio of the (single) base material.
    bc : {"periodic", "affine"}
        Periodic fluctuations, or fluctuations zero on the cell boundary (kinematic BCs).
    contrast : float
        0 removes void from the system (default). A value in (0, 1) gives void voxels that
        relative modulus instead (the classic soft-phase treatment, for comparison).
    rtol : float
        CG stop on the relative preconditioned (true, float64) residual of every load case.
    max_iter : int
        CG iteration cap; cells that hit it are flagged in ``converged``.
    device : str or torch.device, optional
        Where to compute (``"cuda"`` on a GPU); CPU by default.
    work_bytes : int
        Budget for the operator's temporaries; larger grids are applied in smaller chunks.
    batch : int
        Cells solved together (more uses more memory; helps on a GPU).
    progress : callable, optional
        ``progress(done, total, message)`` after every batch of cells.
    load_cases : sequence of int, optional
        Voigt indices (0-5: 11, 22, 33, 23, 13, 12) of the unit strains to solve; all six by
        default. Only those columns of ``C`` are computed, the others are NaN. An entry
        ``C[i, j]`` with both ``i`` and ``j`` solved carries the energy correction (error
        quadratic in the residual); with ``i`` not solved it is the mean stress alone, whose
        error is linear in the residual (tighten ``rtol`` when such entries matter).
        ``iterations``, ``residual`` and ``converged`` refer to the solved load cases.

    Returns
    -------
    VoxelHomogenization
        ``C`` of shape (M, 6, 6), normalised by ``E_s``.
    """
    if bc not in ("periodic", "affine"):
        raise ValueError(f"bc: {bc!r} is not one of ['periodic', 'affine']; pick one of them")
    if not (-1.0 < nu < 0.5):
        raise ValueError(f"nu: {nu} is outside (-1, 0.5); give a Poisson's ratio of a stable isotropic solid")
    if not (0.0 <= contrast < 1.0):
        raise ValueError(f"contrast: {contrast} is outside [0, 1); give 0 to remove void or e.g. 1e-6")
    if not (rtol > 0):
        raise ValueError(f"rtol: {rtol} must be > 0")
    loads = _as_load_cases(load_cases)
    modulus = _as_modulus(cells)
    M = modulus.shape[0]
    dev = torch.device(device) if device is not None else torch.device("cpu")
    C = np.zeros((M, 6, 6))
    its = np.zeros(M, dtype=np.int64)
    res = np.zeros(M)
    conv = np.zeros(M, dtype=bool)
    density = (modulus > 0).reshape(M, -1).mean(axis=1)
    for s in range(0, M, max(1, int(batch))):
        sl = slice(s, min(M, s + max(1, int(batch))))
        C[sl], its[sl], res[sl], conv[sl] = _solve(
            modulus[sl], nu, bc, contrast, rtol, max_iter, dev, work_bytes, loads
        )
        if progress is not None:
            progress(sl.stop, M, "voxel homogenization")
    return VoxelHomogenization(C=C, iterations=its, residual=res, converged=conv, density=density)


def _dot(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-system inner products (M, L) of fields (M, L, 3, n1, n2, n3), returned in float64.

    Accumulated in the fields' dtype by torch's blocked summation (float32: relative error about
    1e-6 of ``sum |x y|`` at 64^3, a quarter of the time of a float64 accumulation); CG takes only
    ratios of such sums, and its stopping test the true float64 residual.
    """
    if x.dtype != y.dtype:
        x, y = x.double(), y.double()
    return torch.linalg.vecdot(x.flatten(2), y.flatten(2)).double()


def _cg(x, b, apply, precondition, apply64, relative, rtol, max_iter, dtype, give_up=None):
    """Preconditioned CG on A x = b from x, iterating in ``dtype``, every system to ``rtol``.

    x, b : float64 (M, 6, 3, n1, n2, n3). ``apply`` and ``precondition`` work in ``dtype``;
    ``apply64`` is the float64 operator. Below float64 the recurred residual is replaced by the
    true float64 one (reliable updates: the update since the last replacement is folded into x,
    the search direction kept) whenever a system's residual fell by :data:`_REPLACE`, and a
    system stops only on its true residual. ``relative(rz)`` turns <r, z> into the relative
    residual. The step is the flexible (Polak-Ribiere) one: the float32 preconditioners are
    symmetric only up to round-off, which the Fletcher-Reeves form does not tolerate.

    ``give_up(k, rel)``, if given, is asked after every iteration ``k`` (1, 2, ...) with the
    relative residuals (M, 6) of the active systems (others 0); True stops CG there.

    Returns x, the true float64 residual b - A x, the relative residuals (M, 6) and the
    iterations (M, 6).
    """
    reliable = dtype != torch.float64
    r64 = b - apply64(x) if bool(x.abs().max() > 0) else b.clone()
    d = torch.zeros_like(b, dtype=dtype)  # update since the last replacement
    r = r64.to(dtype)
    z = precondition(r)
    p = z.clone()
    rz = _dot(r, z)
    rel = relative(rz)
    rel_replaced = rel.clone()
    active = rel > rtol
    its = torch.zeros(rz.shape, dtype=torch.int64, device=b.device)
    for _ in range(max(0, max_iter)):
        if not bool(active.any()):
            break
        Ap = apply(p)
        pAp = _dot(p, Ap)
        alpha = torch.where(active, rz / torch.where(active, pAp, torch.ones_like(pAp)), torch.zeros_like(rz))
        a6 = alpha[:, :, None, None, None, None].to(dtype)
        d.addcmul_(a6, p)
        r.addcmul_(a6, Ap, value=-1.0)
        z = precondition(r)
        rz_new = _dot(r, z)
        rel_new = relative(rz_new)
        checked = not reliable
        if reliable and bool((active & ((rel_new <= rtol) | (rel_new <= _REPLACE * rel_replaced))).any()):
            x += d.double()
            d.zero_()
            r64 = b - apply64(x)
            r = r64.to(dtype)
            z = precondition(r)
            rz_new = _dot(r, z)
            rel_new = relative(rz_new)
            rel_replaced = torch.where(active, rel_new, rel_replaced)
            checked = True
        num = -alpha * _dot(z, Ap)
        del Ap
        beta = torch.where(active, num / torch.where(active, rz, torch.ones_like(rz)), torch.zeros_like(rz))
        p.mul_(beta[:, :, None, None, None, None].to(dtype)).add_(z)
        rz = torch.where(active, rz_new, rz)
        rel = torch.where(active, rel_new, rel)
        its += active.to(torch.int64)
        if checked:
            active = active & (rel > rtol)
        if give_up is not None and give_up(int(its.max()), torch.where(active, rel, torch.zeros_like(rel))):
            break
    x += d.double()
    return x, b - apply64(x), rel, its


def _as_load_cases(load_cases) -> tuple[int, ...]:
    """Validated, sorted Voigt indices of the load cases to solve (all six for None)."""
    if load_cases is None:
        return tuple(range(6))
    try:
        loads = [int(i) for i in load_cases]
    except (TypeError, ValueError):
        raise ValueError(
            f"load_cases: {load_cases!r} is not a sequence of integers; give Voigt indices 0-5, e.g. (0, 3)"
        ) from None
    bad = [i for i in load_cases if isinstance(i, bool) or int(i) != i]
    if bad or not loads or len(set(loads)) != len(loads) or min(loads) < 0 or max(loads) > 5:
        raise ValueError(
            f"load_cases: {tuple(load_cases)!r} is not a set of distinct Voigt indices in 0-5; "
            "give e.g. (0, 3) for 11 and 23, or None for all six"
        )
    return tuple(sorted(loads))


def _solve(modulus, nu, bc, contrast, rtol, max_iter, dev, work_bytes, loads=tuple(range(6))):
    E = torch.as_tensor(modulus, dtype=torch.float64, device=dev)
    M = E.shape[0]
    shape = tuple(E.shape[1:])
    mask = None
    if contrast > 0:
        E = torch.where(E > 0, E, torch.full_like(E, contrast))
    else:
        solid = (E > 0).to(torch.float64)
        touch = sum(torch.roll(solid, shifts=tuple(int(o) for o in off), dims=(1, 2, 3)) for off in OFFSETS)
        mask = touch > 0
    if bc == "affine":
        interior = torch.ones(shape, dtype=torch.bool, device=dev)
        interior[0, :, :] = False
        interior[:, 0, :] = False
        interior[:, :, 0] = False
        mask = interior.expand(M, *shape) if mask is None else mask & interior
    if mask is not None:
        mask = mask.reshape(M, 1, 1, *shape).to(torch.float64)
    op = _Operator(E, nu, mask, work_bytes, periodic=bc == "periodic")
    # mixed precision: CG runs in float32 (the operator and its preconditioner cost a quarter
    # to a half of float64 there); reliable updates on the float64 residual b - A x bring the
    # solution to any tolerance float64 can reach
    op32 = op.cast(torch.float32)
    precondition = op32.precondition
    L = len(loads)
    U = torch.as_tensor(_unit_strain_displacements()[list(loads)], dtype=torch.float64, device=dev)
    b = op.affine_load(U)

    # affine (Voigt) energy of each load case: a right-hand side this small relative to it is
    # round-off of a load that vanishes exactly (uniform cells), already solved by w = 0
    voigt = torch.einsum("li,ij,lj->l", U, op.K0, U)[None, :] * E.reshape(M, -1).sum(-1)[:, None]
    at_once = math.prod(shape) >= COARSE_AT_ONCE
    if at_once:
        op.add_coarse_space()
    def load_norms():
        # <b, P b> under the preconditioner in use: residuals are measured relative to it
        rz0 = _dot(b, precondition(b.float()))
        return rz0, torch.where(rz0 > 0, rz0, torch.ones_like(rz0))

    rz0, scale = load_norms()
    trivial = rz0 <= _TRIVIAL_LOAD**2 * voigt

    def relative(rz):
        return torch.where(trivial, torch.zeros_like(rz0), torch.sqrt(torch.clamp(rz, min=0) / scale))

    x = torch.zeros_like(b)
    its = torch.zeros((M, L), dtype=torch.int64, device=dev)

    def run(apply, prec, dtype, tol, cap, give_up=None):
        nonlocal x
        x, r, rel, k = _cg(x, b, apply, prec, op.apply, relative, tol, cap, dtype, give_up)
        its.add_(k)
        return r, rel

    # float32 down to where it stays as fast per digit as float64, then float64 if asked for more.
    # Grids of COARSE_AT_ONCE voxels and more start with both levels, from the coarse solution.
    # On smaller ones CG starts with the FFT step alone. Where its convergence rate over iterations
    # COARSE_PROBE / 2 to COARSE_PROBE predicts more than COARSE_WORTH iterations in all, the cell
    # has soft modes the uniform solid lacks: CG stops, the coarse level is added, and CG restarts
    # from the iterate corrected on it (x += Z (Z^T K Z)^+ Z^T r keeps the residuals orthogonal
    # to Z, as the two-level step needs)
    tol32 = max(rtol, _FLOAT32_RTOL)
    half = COARSE_PROBE // 2
    at_half = []  # the relative residuals after `half` iterations
    gave_up = []

    def slow(k, rel):
        if k == half:
            at_half.append(rel.clone())
        if k != COARSE_PROBE or not at_half:
            return False
        rate = (rel / at_half[0].clamp(min=1e-300)).clamp(min=1e-300) ** (1.0 / (COARSE_PROBE - half))
        left = torch.log(torch.as_tensor(tol32) / rel.clamp(min=1e-300)) / torch.log(rate.clamp(max=1 - 1e-12))
        gave_up.append(bool(((rel > tol32) & (k + left > COARSE_WORTH)).any()))
        return gave_up[0]

    def coarse_correction(res):
        for m, coarse in enumerate(op.coarse):
            coarse.prolong_add(coarse.solve(coarse.restrict(res[m].reshape(L, 3, -1))), x[m].reshape(L, 3, -1))

    if at_once:
        coarse_correction(b)
    r, rel = run(op32.apply, precondition, torch.float32, tol32, max_iter, None if at_once else slow)
    if any(gave_up):
        op.add_coarse_space()
        coarse_correction(r)
        scale = load_norms()[1]
        r, rel = run(op32.apply, precondition, torch.float32, tol32, max_iter - int(its.max()))
    if rtol < _FLOAT32_RTOL:
        r, rel = run(op.apply, op.precondition, torch.float64, rtol, max_iter - int(its.max()))
    # r is the true float64 residual of x, for the energy correction
    # mean stress: <E D Bc (u_aff + gathered w)> over voxels
    Ef = E.reshape(M, 1, -1)
    mean_E = Ef.mean(-1)  # (M, 1)
    xf = x.reshape(M, L, 3, -1)
    rolled = [torch.roll(E, shifts=tuple(int(o) for o in off), dims=(1, 2, 3)).reshape(M, 1, 1, -1) for off in OFFSETS]
    # (M, load, 24): mean over voxels of E_e times w at corner a of voxel e
    ew = torch.stack([(xf * Ea).mean(-1) for Ea in rolled], dim=2).reshape(M, L, 24)
    t = mean_E[:, :, None] * U[None] + ew  # (M, L, 24)
    sigma = torch.einsum("ij,jk,mlk->mil", op.D, op.Bc, t)  # (M, 6 components, L loads)
    N = math.prod(shape)
    corr = torch.einsum("mik,mjk->mij", x.flatten(2), r.flatten(2)) / N
    # the energy correction of row i needs the fluctuation of load case i: solved rows only
    sigma[:, list(loads), :] -= corr
    Cm = np.full((M, 6, 6), np.nan)
    Cm[:, :, list(loads)] = sigma.cpu().numpy()
    final = rel
    return (
        Cm,
        its.max(dim=1).values.cpu().numpy(),
        final.max(dim=1).values.cpu().numpy(),
        (final <= rtol).all(dim=1).cpu().numpy(),
    )
