"""Linear elasticity of a body with a spatially varying anisotropic stiffness (scikit-fem).

The body is meshed on a regular grid of boxes (``grid_mesh``): every box is split into
the six Kuhn tetrahedra around its main diagonal (conforming across boxes), and only
the boxes a predicate keeps (for example those whose centre lies inside a closed
surface) enter the mesh, so a box body is meshed exactly and any other body to within
one box. The grid structure also gives an exact, vectorised point location
(:meth:`GridMesh.locate`), used to evaluate the solution at arbitrary points.

Each tetrahedron carries its own 6x6 Voigt stiffness (engineering shear strains,
order 11, 22, 33, 23, 13, 12); displacements are P1 or P2 Lagrange fields. Prescribed
displacements are eliminated with :func:`skfem.condense`; the system is solved by a
sparse direct solver below :data:`DIRECT_MAX_DOFS` and by CG with a pyamg
smoothed-aggregation preconditioner (rigid-body modes as near-null space) above.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field

import numpy as np
from scipy import sparse

__all__ = ["GridMesh", "grid_mesh", "ContinuumModel", "ContinuumResult", "continuum_model",
           "solve_continuum", "stiffness_matrix", "traction_load", "probe", "DIRECT_MAX_DOFS", "CG_RTOL"]

#: Above this many free dofs the continuum solve uses AMG-CG instead of SuperLU.
DIRECT_MAX_DOFS = 30_000
#: Relative residual at which CG stops (displacements to ~1e-6 for these condition numbers).
CG_RTOL = 1e-9
#: Barycentric coordinates this far below zero still count as inside a tetrahedron
#: (points on faces of the grid, up to round-off).
LOCATE_TOL = 1e-9

# Kuhn subdivision: tet k has corners 0, e_p0, e_p0 + e_p1, (1, 1, 1) for permutation p
_PERMS = list(itertools.permutations(range(3)))


@dataclass(frozen=True)
class GridMesh:
    """A tetrahedral mesh made of the Kuhn tetrahedra of kept grid boxes.

    Attributes
    ----------
    mesh : skfem.MeshTet
    lo : ndarray, shape (3,)
        Grid origin (mm).
    h : ndarray, shape (3,)
        Box edges (mm).
    shape : tuple of int
        Boxes along x, y, z.
    box_of_tet : ndarray, shape (T,)
        Flat box index of every tetrahedron.
    tet_of_box : ndarray, shape (nx ny nz, 6)
        Tetrahedron of each box and permutation, -1 where the box is not kept.
    """

    mesh: object
    lo: np.ndarray
    h: np.ndarray
    shape: tuple
    box_of_tet: np.ndarray
    tet_of_box: np.ndarray

    def locate(self, x: np.ndarray):
        """Element and barycentric coordinates of points (N, 3).

        Returns
        -------
        tet : ndarray of int, shape (N,)
            -1 where the point lies in no kept box.
        """
        x = np.asarray(x, dtype=np.float64).reshape(-1, 3)
        n = np.array(self.shape)
        s = (x - self.lo) / self.h
        ijk = np.floor(s).astype(np.int64)
        inside = np.all((s >= -LOCATE_TOL) & (s <= n + LOCATE_TOL), axis=1)
        ijk = np.clip(ijk, 0, n - 1)
        xi = np.clip(s - ijk, 0.0, 1.0)
        order = np.argsort(-xi, axis=1, kind="stable")
        lookup = np.zeros(27, dtype=np.int64)
        for k, p in enumerate(_PERMS):
            lookup[p[0] * 9 + p[1] * 3 + p[2]] = k
        code = lookup[order[:, 0] * 9 + order[:, 1] * 3 + order[:, 2]]
        box = (ijk[:, 0] * n[1] + ijk[:, 1]) * n[2] + ijk[:, 2]
        tet = np.where(inside, self.tet_of_box[box, code], -1)
        return tet


def grid_mesh(lo, hi, h: float, keep=None):
    """Tetrahedral mesh of the boxes of a regular grid over ``[lo, hi]``.

    Parameters
    ----------
    lo, hi : array_like, shape (3,)
        Bounds (mm); the grid covers them exactly with boxes of edge <= ``h``.
    h : float
        Largest box edge (mm).
    keep : callable, optional
        ``keep(centres) -> bool mask`` on box centres (M, 3); default: every box.

    Returns
    -------
    GridMesh
    """
    from skfem import MeshTet

    lo = np.asarray(lo, dtype=np.float64)
    hi = np.asarray(hi, dtype=np.float64)
    n = np.maximum(1, np.ceil((hi - lo) / h - 1e-9)).astype(np.int64)
    hh = (hi - lo) / n
    ii, jj, kk = np.meshgrid(*[np.arange(m) for m in n], indexing="ij")
    ijk = np.stack([ii.ravel(), jj.ravel(), kk.ravel()], axis=1)
    centres = lo + (ijk + 0.5) * hh
    kept = np.ones(len(ijk), dtype=bool) if keep is None else np.asarray(keep(centres), dtype=bool)
    if not kept.any():
        raise ValueError("h: no grid box of the body is kept; give a smaller mesh size")
    kb = np.flatnonzero(kept)

    def vid(c):  # vertex index of grid corner (N, 3)
        return (c[:, 0] * (n[1] + 1) + c[:, 1]) * (n[2] + 1) + c[:, 2]

    tets = []
    for p in _PERMS:
        e0, e1 = np.eye(3, dtype=np.int64)[p[0]], np.eye(3, dtype=np.int64)[p[1]]
        corners = [ijk[kb], ijk[kb] + e0, ijk[kb] + e0 + e1, ijk[kb] + 1]
        t = np.stack([vid(c) for c in corners], axis=0)
        # odd permutations give negatively oriented tets: swap two corners
        parity = sum(1 for a in range(3) for b in range(a + 1, 3) if p[a] > p[b]) % 2
        if parity:
            t = t[[0, 2, 1, 3]]
        tets.append(t)
    t = np.stack(tets, axis=2).reshape(4, -1)  # column = 6 * kept_box + perm
    used, t = np.unique(t, return_inverse=True)
    t = t.reshape(4, -1)
    c = np.stack(np.unravel_index(used, tuple(n + 1)), axis=0).astype(np.float64)
    p = lo[:, None] + c * hh[:, None]
    mesh = MeshTet(p, t)
    tet_of_box = np.full((len(ijk), 6), -1, dtype=np.int64)
    tet_of_box[kb] = np.arange(6 * len(kb)).reshape(-1, 6)
    return GridMesh(mesh, lo, hh, tuple(int(v) for v in n), np.repeat(kb, 6), tet_of_box)


@dataclass
class ContinuumModel:
    """A meshed body with its displacement basis.

    Attributes
    ----------
    grid : GridMesh
    basis : skfem.Basis
        Vector P1 or P2 Lagrange basis.
    points : ndarray, shape (P, 3)
        Locations of the displacement nodes (vertices, then edge midpoints for P2).
    dofs : ndarray of int, shape (P, 3)
        Global dof of each node and component.
    """

    grid: GridMesh
    basis: object
    points: np.ndarray
    dofs: np.ndarray

    @property
    def n_dofs(self) -> int:
        return int(self.basis.N)


def continuum_model(grid: GridMesh, order: int = 2) -> ContinuumModel:
    """The displacement basis (P1 or P2) of a grid mesh."""
    from skfem import Basis, ElementTetP1, ElementTetP2, ElementVector

    if order not in (1, 2):
        raise ValueError(f"order: {order!r} is not 1 or 2")
    elem = ElementVector(ElementTetP2() if order == 2 else ElementTetP1())
    basis = Basis(grid.mesh, elem)
    table = basis.nodal_dofs if order == 1 else np.hstack([basis.nodal_dofs, basis.edge_dofs])
    dofs = np.ascontiguousarray(table.T)
    points = np.ascontiguousarray(basis.doflocs[:, dofs[:, 0]].T)
    return ContinuumModel(grid, basis, points, dofs)


@dataclass
class ContinuumResult:
    """Solution of the continuum model.

    Attributes
    ----------
    u : ndarray, shape (n_dofs,)
        Displacement coefficients (mm).
    displacement : ndarray, shape (P, 3)
        Displacement at the model's ``points``.
    reaction : ndarray, shape (P, 3)
        Support forces (N) at prescribed node components, zero elsewhere.
    stress : ndarray, shape (T, 6)
        Voigt stress (MPa) at each tetrahedron's centroid.
    von_mises : ndarray, shape (T,)
    solver, iterations, timings
        As for the frame solver.
    """

    u: np.ndarray
    displacement: np.ndarray
    reaction: np.ndarray
    stress: np.ndarray
    von_mises: np.ndarray
    solver: str
    iterations: int
    timings: dict = field(default_factory=dict)


def _voigt_strain(grad):
    """Engineering Voigt strain from a displacement gradient (3, 3, ...)."""
    g = grad
    return np.stack([g[0, 0], g[1, 1], g[2, 2], g[1, 2] + g[2, 1], g[0, 2] + g[2, 0], g[0, 1] + g[1, 0]])


def traction_load(model: ContinuumModel, facets: np.ndarray, traction: np.ndarray) -> np.ndarray:
    """Load vector of a uniform traction (N / mm^2) on some boundary facets.

    Returns
    -------
    ndarray, shape (n_dofs,)
    """
    from skfem import FacetBasis, LinearForm

    fb = FacetBasis(model.grid.mesh, model.basis.elem, facets=np.asarray(facets, dtype=np.int64))
    t = np.asarray(traction, dtype=np.float64)

    @LinearForm
    def load(v, w):
        return t[0] * v[0] + t[1] * v[1] + t[2] * v[2]

    return load.assemble(fb)


def stiffness_matrix(model: ContinuumModel, C: np.ndarray) -> sparse.csr_matrix:
    """Global stiffness (n_dofs, n_dofs) of the model with per-tetrahedron Voigt stiffness C (T, 6, 6).

    Assemble once and pass it to :func:`solve_continuum` (``stiffness=``) to solve several
    load cases of one body.
    """
    C = np.asarray(C, dtype=np.float64)
    T = model.grid.mesh.t.shape[1]
    if C.shape != (T, 6, 6):
        raise ValueError(f"C: has shape {C.shape}, expected ({T}, 6, 6), one stiffness per tetrahedron")
    return _stiffness(model, C)


def _stiffness(model: ContinuumModel, C: np.ndarray) -> sparse.csr_matrix:
    """Global stiffness: element matrices ``sum_q w_q B_q^T C_e B_q`` from the basis' gradients.

    scikit-fem gives the basis functions, their gradients and the quadrature weights; the
    element matrices are formed in one vectorised product instead of one form call per
    pair of basis functions (30 x 30 for P2), which is ~20x faster for anisotropic C.
    """
    basis = model.basis
    nb = basis.Nbfun
    Bv = np.stack([_voigt_strain(basis.basis[k][0].grad) for k in range(nb)])  # (nb, 6, T, Q)
    CB = np.einsum("tij,kjtq->kitq", C, Bv, optimize=True)
    Ke = np.einsum("kitq,litq,tq->tkl", Bv, CB, basis.dx, optimize=True)  # (T, nb, nb)
    dofs = basis.element_dofs.T  # (T, nb)
    rows = np.broadcast_to(dofs[:, :, None], Ke.shape).reshape(-1)
    cols = np.broadcast_to(dofs[:, None, :], Ke.shape).reshape(-1)
    return sparse.coo_matrix((Ke.reshape(-1), (rows, cols)), shape=(basis.N, basis.N)).tocsr()


def _rigid_modes(points: np.ndarray, dofs: np.ndarray, n: int) -> np.ndarray:
    x = points - points.mean(axis=0)
    B = np.zeros((n, 6))
    for k in range(3):
        B[dofs[:, k], k] = 1.0
    # rotations: u = w x x
    B[dofs[:, 1], 3], B[dofs[:, 2], 3] = -x[:, 2], x[:, 1]
    B[dofs[:, 0], 4], B[dofs[:, 2], 4] = x[:, 2], -x[:, 0]
    B[dofs[:, 0], 5], B[dofs[:, 1], 5] = -x[:, 1], x[:, 0]
    return B


def solve_continuum(
    model: ContinuumModel,
    C: np.ndarray,
    *,
    prescribed: np.ndarray,
    values: np.ndarray,
    load: np.ndarray | None = None,
    solver: str = "auto",
    stiffness: sparse.spmatrix | None = None,
) -> ContinuumResult:
    """Static equilibrium of the body with per-element stiffness ``C``.

    Parameters
    ----------
    model : ContinuumModel
    C : ndarray, shape (T, 6, 6)
        Voigt stiffness (MPa) of every tetrahedron.
    prescribed : ndarray of int, shape (P,)
        Global dofs with prescribed displacement.
    values : ndarray, shape (P,)
        Their values (mm).
    load : ndarray, shape (n_dofs,), optional
        External load vector (N), e.g. from :func:`traction_load`.
    solver : {"auto", "direct", "amg"}
    stiffness : scipy.sparse matrix, optional
        ``stiffness_matrix(model, C)``, when several cases share the body (default: assembled here).
    """
    from skfem import condense

    if solver not in ("auto", "direct", "amg"):
        raise ValueError(f"solver: {solver!r} is not one of ['auto', 'direct', 'amg']")
    C = np.asarray(C, dtype=np.float64)
    T = model.grid.mesh.t.shape[1]
    if C.shape != (T, 6, 6):
        raise ValueError(f"C: has shape {C.shape}, expected ({T}, 6, 6), one stiffness per tetrahedron")
    t0 = time.perf_counter()
    K = _stiffness(model, C) if stiffness is None else sparse.csr_matrix(stiffness)
    n = K.shape[0]
    if K.shape != (model.n_dofs, model.n_dofs):
        raise ValueError(f"stiffness: has shape {K.shape}, expected ({model.n_dofs}, {model.n_dofs})")
    f = np.zeros(n) if load is None else np.asarray(load, dtype=np.float64)
    pres = np.asarray(prescribed, dtype=np.int64)
    x = np.zeros(n)
    x[pres] = values
    timings = {"assemble_s": time.perf_counter() - t0}
    A, b, _, free = condense(K, f, x=x, D=pres)
    use = solver if solver != "auto" else ("direct" if len(free) <= DIRECT_MAX_DOFS else "amg")
    t1 = time.perf_counter()
    iterations = 0
    if use == "direct":
        from scipy.sparse.linalg import spsolve

        y = spsolve(A.tocsc(), b)
    else:
        import pyamg

        dinv = 1.0 / np.sqrt(A.diagonal())
        D = sparse.diags(dinv)
        As = (D @ A @ D).tocsr()
        B = _rigid_modes(model.points, model.dofs, n)[free] / dinv[:, None]
        ml = pyamg.smoothed_aggregation_solver(As, B=B, symmetry="hermitian", max_coarse=500,
                                                coarse_solver="splu")
        res: list[float] = []
        y = dinv * ml.solve(dinv * b, tol=CG_RTOL, maxiter=2000, accel="cg", residuals=res)
        iterations = max(len(res) - 1, 0)
    timings["solve_s"] = time.perf_counter() - t1
    u = x.copy()
    u[free] = y
    r = K @ u - f
    reaction = np.zeros(n)
    reaction[pres] = r[pres]
    ip = model.basis.interpolate(u)
    eps = _voigt_strain(ip.grad).mean(axis=-1)  # (6, T): P2 strain averaged over the quadrature points
    sig = np.einsum("tij,jt->ti", C, eps)
    s = sig
    vm = np.sqrt(0.5 * ((s[:, 0] - s[:, 1]) ** 2 + (s[:, 1] - s[:, 2]) ** 2 + (s[:, 2] - s[:, 0]) ** 2)
                 + 3.0 * (s[:, 3] ** 2 + s[:, 4] ** 2 + s[:, 5] ** 2))
    return ContinuumResult(u, u[model.dofs], reaction[model.dofs], sig, vm, use, int(iterations), timings)


def probe(model: ContinuumModel, u: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Displacement (N, 3) at points x (N, 3); rows of points outside the mesh are NaN.

    Returns
    -------
    values : ndarray, shape (N, 3)
    found : ndarray of bool, shape (N,)
    """
    x = np.asarray(x, dtype=np.float64).reshape(-1, 3)
    cells = model.grid.locate(x)
    found = cells >= 0
    out = np.zeros((len(x), 3))
    out[~found] = np.nan
    if not found.any():
        return out, found
    basis = model.basis
    xs = x[found].T
    cs = cells[found]
    pts = basis.mapping.invF(xs[:, :, None], tind=cs)
    for k in range(basis.Nbfun):
        phi = np.asarray(basis.elem.gbasis(basis.mapping, pts, k, tind=cs)[0])[:, :, 0]  # (3, n)
        out[found] += (phi * u[basis.element_dofs[k, cs]][None, :]).T
    return out, found
