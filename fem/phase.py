"""Least-squares phase fields on a box: the projection functions of SI Eq. 13.

Given a target gradient field ``k_j(x)`` for ``j = 1, 2, 3`` (the reciprocal lattice
vectors of a spatially varying lattice basis), find the scalar fields ``phi_j`` that
minimise ``int |grad phi_j - k_j|^2 dOmega``. The stationarity condition is the weak form

    int grad(phi_j) . grad(v) dOmega = int k_j . grad(v) dOmega     for all v,

a pure-Neumann Poisson problem (natural boundary condition ``grad phi . n = k . n``)
whose solution is unique up to a constant. We solve it with scikit-fem on a
tetrahedral mesh of an axis-aligned box with P1 or P2 Lagrange elements; the matrix
is the same for the three fields, so it is factorised once and reused for the three
right-hand sides. The constant is fixed afterwards: either the integral mean of each
``phi_j`` is zero, or ``phi(anchor) = anchor_value``.

**Weighted fit and exact point constraints.** A target field that is not a gradient
(``curl k != 0``) cannot be met everywhere; the plain least-squares fit spreads the misfit
over the whole domain, control points included. Two options move it away from where it
matters:

* a weight ``c(x) > 0`` (penalty): minimise ``int c |grad phi_j - k_j|^2``, i.e. the
  bilinear form ``int c grad phi . grad v`` against ``int c k . grad v``;
* point constraints: ``grad phi_j(p_m) = g_mj`` exactly at given points, by Lagrange
  multipliers. With ``B`` the (3M, N) operator that evaluates gradients at the points
  (the same element and reference coordinates :meth:`PhaseField.evaluate` uses), the
  stationarity system ``A u + B^T l = b, B u = g`` is solved by its Schur complement
  ``(B A^-1 B^T) l = B A^-1 b - g`` with the one factorisation of ``A`` (3M extra solves).

The fit is measured (:class:`PhaseFit`): the relative residual
``sqrt(int |grad phi - k|^2 / int |k|^2)`` over the box -- the incompatibility of the
target, as far as this fit leaves it -- and the relative error of the gradient and of its
inverse (the built basis) at each constrained point.

The mesh is a structured Kuhn (Freudenthal) subdivision of a grid of boxes into six
tetrahedra each, so a point is located in O(1) without a search tree; points outside
the box are evaluated by extrapolating the polynomial of the nearest boundary element
(Newton iterations may step slightly outside).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import permutations

import numpy as np
import scipy.sparse.linalg as spla
from scipy import sparse
from skfem import Basis, BilinearForm, ElementTetP1, ElementTetP2, LinearForm, MeshTet, asm
from skfem.helpers import dot, grad
from skfem.models.poisson import laplace

__all__ = ["BoxTetMesh", "box_tet_mesh", "PhaseField", "PhaseFit", "nested_dissection", "solve_phase_fields",
           "gradient_operator"]

#: Points are evaluated in blocks of this many so per-point temporaries (Jacobians,
#: ten basis values) stay around 100 MB whatever the number of points.
EVAL_CHUNK = 200_000

#: Nested-dissection blocks of at most this many dofs are not split further (dense
#: enough that further splitting saves nothing).
ND_LEAF = 64

#: The six vertex orders of the Kuhn subdivision: a point with local coordinates u lies
#: in the tetrahedron whose permutation sorts u in descending order.
_PERMS = np.array(list(permutations(range(3))), dtype=np.int64)
_PERM_CODE = np.full(9, -1, dtype=np.int64)
_PERM_CODE[_PERMS[:, 0] * 3 + _PERMS[:, 1]] = np.arange(6)

_ELEMENTS = {1: ElementTetP1, 2: ElementTetP2}


@dataclass(frozen=True)
class BoxTetMesh:
    """A box ``[lo, lo + shape * h]`` cut into ``prod(shape)`` boxes of six tetrahedra.

    Attributes
    ----------
    lo : ndarray, shape (3,), float64
        Lower corner.
    h : ndarray, shape (3,), float64
        Edge lengths of one small box along x, y, z.
    shape : ndarray, shape (3,), int64
        Number of small boxes along x, y, z.
    mesh : skfem.MeshTet
        The mesh; element ``e = 6 * box + perm`` with ``box`` in C order over ``shape``.
    inv_jac : ndarray, shape (6, 3, 3), float64
        Inverse of the affine map reference tetrahedron -> element, per permutation
        (it is the same for every box).
    """

    lo: np.ndarray
    h: np.ndarray
    shape: np.ndarray
    mesh: MeshTet
    inv_jac: np.ndarray

    @property
    def hi(self) -> np.ndarray:
        """Upper corner, shape (3,)."""
        return self.lo + self.shape * self.h

    def vertices(self) -> np.ndarray:
        """Mesh vertices, shape (n_vertices, 3)."""
        return self.mesh.p.T

    def locate(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Element and reference coordinates of each point.

        Parameters
        ----------
        x : ndarray, shape (N, 3)
            Points; outside the box they are assigned the nearest boundary element and
            get reference coordinates outside the reference tetrahedron.

        Returns
        -------
        elem : ndarray, shape (N,), int64
        X : ndarray, shape (N, 3), float64
            Reference coordinates, ``x = p0 + J X``.
        """
        x = np.asarray(x, dtype=np.float64).reshape(-1, 3)
        s = (x - self.lo) / self.h
        idx = np.clip(np.floor(s), 0, self.shape - 1).astype(np.int64)
        u = np.clip(s - idx, 0.0, 1.0)
        order = np.argsort(-u, axis=1, kind="stable")
        perm = _PERM_CODE[order[:, 0] * 3 + order[:, 1]]
        box = (idx[:, 0] * self.shape[1] + idx[:, 1]) * self.shape[2] + idx[:, 2]
        elem = box * 6 + perm
        p0 = self.lo + idx * self.h
        X = np.einsum("nij,nj->ni", self.inv_jac[perm], x - p0)
        return elem, X


def box_tet_mesh(lo, hi, h: float) -> BoxTetMesh:
    """Structured tetrahedral mesh of the box ``[lo, hi]`` with edge length about ``h``.

    Parameters
    ----------
    lo, hi : array_like, shape (3,)
        Box corners (``hi > lo``).
    h : float
        Target box edge; the actual spacing per axis is ``(hi - lo) / ceil((hi - lo) / h)``.
    """
    lo = np.asarray(lo, dtype=np.float64).reshape(3)
    hi = np.asarray(hi, dtype=np.float64).reshape(3)
    if not np.all(hi > lo) or not h > 0:
        raise ValueError("box_tet_mesh: need hi > lo and h > 0")
    shape = np.maximum(1, np.ceil((hi - lo) / h - 1e-9)).astype(np.int64)
    step = (hi - lo) / shape
    nx, ny, nz = shape + 1
    gx, gy, gz = (lo[a] + step[a] * np.arange(shape[a] + 1) for a in range(3))
    P = np.stack(np.meshgrid(gx, gy, gz, indexing="ij"), axis=-1).reshape(-1, 3)
    ix, iy, iz = np.meshgrid(*(np.arange(s) for s in shape), indexing="ij")
    base = np.stack([ix.ravel(), iy.ravel(), iz.ravel()], axis=1)  # (nbox, 3)
    eye = np.eye(3, dtype=np.int64)
    corners = np.zeros((6, 4, 3), dtype=np.int64)
    for k, p in enumerate(_PERMS):
        corners[k, 1] = eye[p[0]]
        corners[k, 2] = eye[p[0]] + eye[p[1]]
        corners[k, 3] = 1
    c = base[:, None, None, :] + corners[None]  # (nbox, 6, 4, 3)
    vid = (c[..., 0] * ny + c[..., 1]) * nz + c[..., 2]
    t = vid.reshape(-1, 4).T
    mesh = MeshTet(np.ascontiguousarray(P.T), np.ascontiguousarray(t))
    jac = np.transpose(corners[:, 1:, :] * step, (0, 2, 1))  # columns = edge vectors
    return BoxTetMesh(lo=lo, h=step, shape=shape, mesh=mesh, inv_jac=np.linalg.inv(jac))


@dataclass(frozen=True)
class PhaseFit:
    """How well the phase fields follow their target gradient field.

    Attributes
    ----------
    residual : float
        ``sqrt(int |grad phi - k|^2 / int |k|^2)`` over the box, all three fields together
        (unweighted; 0 for a compatible target up to discretisation).
    weighted_residual : float
        The same with the fit's weight ``c(x)`` in both integrals.
    point_gradient_error : ndarray, shape (M,)
        ``|grad phi(p_m) - g_m|_F / |g_m|_F`` at the constrained points.
    point_basis_error : ndarray, shape (M,)
        ``|(grad phi(p_m))^-1 - g_m^-1|_F / |g_m^-1|_F``: the built lattice basis against
        the wanted one.
    """

    residual: float
    weighted_residual: float
    point_gradient_error: np.ndarray
    point_basis_error: np.ndarray

    def to_dict(self) -> dict:
        """JSON-ready."""
        return {
            "residual": float(self.residual),
            "weighted_residual": float(self.weighted_residual),
            "point_gradient_error": [float(v) for v in self.point_gradient_error],
            "point_basis_error": [float(v) for v in self.point_basis_error],
        }


@dataclass(frozen=True)
class PhaseField:
    """Three scalar fields ``phi_j`` on a :class:`BoxTetMesh`, evaluable anywhere.

    Attributes
    ----------
    grid : BoxTetMesh
    order : int
        1 (P1) or 2 (P2).
    coeffs : ndarray, shape (n_dofs, 3), float64
        Degrees of freedom of the three fields.
    element_dofs : ndarray, shape (n_local, n_elements), int64
        Global dof of each local basis function (scikit-fem order).
    fit : PhaseFit, optional
        Residuals of the fit (set by :func:`solve_phase_fields`).
    """

    grid: BoxTetMesh
    order: int
    coeffs: np.ndarray
    element_dofs: np.ndarray
    fit: PhaseFit | None = None

    def evaluate(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Values and gradients at points.

        Parameters
        ----------
        x : ndarray, shape (N, 3)

        Returns
        -------
        phi : ndarray, shape (N, 3)
            ``phi[n, j] = phi_j(x_n)``.
        grad : ndarray, shape (N, 3, 3)
            ``grad[n, j, :] = grad phi_j(x_n)`` (the Jacobian of the map x -> phi).
        """
        x = np.asarray(x, dtype=np.float64).reshape(-1, 3)
        phi = np.empty((len(x), 3))
        grad = np.empty((len(x), 3, 3))
        for s in range(0, len(x), EVAL_CHUNK):
            phi[s : s + EVAL_CHUNK], grad[s : s + EVAL_CHUNK] = self._evaluate(x[s : s + EVAL_CHUNK])
        return phi, grad

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Values only, shape (N, 3)."""
        return self.evaluate(x)[0]

    def gradient(self, x: np.ndarray) -> np.ndarray:
        """Gradients only, shape (N, 3, 3), ``[n, j, :] = grad phi_j``."""
        return self.evaluate(x)[1]

    def _evaluate(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        elem, X = self.grid.locate(x)
        perm = elem % 6
        element = _ELEMENTS[self.order]()
        phi = np.zeros((len(x), 3))
        gref = np.zeros((len(x), 3, 3))  # [n, j, reference direction]
        for i in range(self.element_dofs.shape[0]):
            val, dval = element.lbasis(X.T, i)
            c = self.coeffs[self.element_dofs[i, elem]]  # (N, 3)
            phi += c * np.asarray(val)[:, None]
            gref += c[:, :, None] * np.asarray(dval).T[:, None, :]
        # grad_x = J^-T grad_X  ->  grad[n, j, l] = sum_k gref[n, j, k] invJ[k, l]
        grad = np.einsum("njk,nkl->njl", gref, self.grid.inv_jac[perm])
        return phi, grad


def gradient_operator(grid: BoxTetMesh, order: int, element_dofs: np.ndarray, x: np.ndarray) -> sparse.csr_matrix:
    """Sparse operator (3M, n_dofs) with ``(G @ c).reshape(M, 3) = grad(field c)(x)``.

    Row ``3 m + l`` is the derivative along axis ``l`` at point ``m``, evaluated in the
    element :meth:`BoxTetMesh.locate` assigns (as :meth:`PhaseField.evaluate` does).
    """
    x = np.asarray(x, dtype=np.float64).reshape(-1, 3)
    elem, X = grid.locate(x)
    inv_jac = grid.inv_jac[elem % 6]
    element = _ELEMENTS[order]()
    n_local = element_dofs.shape[0]
    rows, cols, vals = [], [], []
    for i in range(n_local):
        _, dval = element.lbasis(X.T, i)
        g = np.einsum("kn,nkl->nl", np.asarray(dval), inv_jac)  # (M, 3) physical gradient
        for ax in range(3):
            rows.append(3 * np.arange(len(x)) + ax)
            cols.append(element_dofs[i, elem])
            vals.append(g[:, ax])
    n = int(element_dofs.max()) + 1
    return sparse.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                             shape=(3 * len(x), n))


def nested_dissection(ijk: np.ndarray, leaf: int = ND_LEAF) -> np.ndarray:
    """Geometric nested-dissection ordering of the dofs of a :class:`BoxTetMesh`.

    Every element of the Kuhn mesh lies between two consecutive vertex planes, so the
    dofs on one vertex plane separate the dofs on its two sides. Ordering both sides
    first (recursively) and the separator last keeps the fill-in of a 3D factorisation
    near ``O(N^(4/3))`` instead of the ``O(N^(5/3))`` of the default column orderings
    (a 36k-dof P2 problem factorises ~20x faster).

    Parameters
    ----------
    ijk : ndarray, shape (N, 3), int
        Dof positions in units of half the mesh spacing (vertex planes at even values).
    leaf : int
        Blocks of at most this many dofs are kept whole.

    Returns
    -------
    ndarray, shape (N,), int64
        A permutation of ``range(N)``.
    """
    ijk = np.asarray(ijk, dtype=np.int64)
    out: list[np.ndarray] = []

    def split(idx: np.ndarray) -> None:
        if len(idx) <= leaf:
            out.append(idx)
            return
        c = ijk[idx]
        lo, hi = c.min(axis=0), c.max(axis=0)
        ax = int(np.argmax(hi - lo))
        if hi[ax] - lo[ax] < 4:  # no interior vertex plane left
            out.append(idx)
            return
        mid = (lo[ax] + hi[ax]) // 2
        mid -= mid % 2
        if mid <= lo[ax]:
            mid += 2
        v = c[:, ax]
        split(idx[v < mid])
        split(idx[v > mid])
        out.append(idx[v == mid])

    split(np.arange(len(ijk)))
    return np.concatenate(out)


@BilinearForm
def _weighted_laplace(u, v, w):
    return w.c * dot(grad(u), grad(v))


def solve_phase_fields(
    target: Callable[[np.ndarray], np.ndarray],
    lo,
    hi,
    h: float,
    *,
    order: int = 2,
    intorder: int | None = None,
    anchor=None,
    anchor_value=None,
    weight: Callable[[np.ndarray], np.ndarray] | None = None,
    constraint_points=None,
    constraint_gradients=None,
    enforce: bool = True,
) -> PhaseField:
    """Least-squares phase fields ``phi_j ~ int k_j`` on the box ``[lo, hi]``.

    Parameters
    ----------
    target : callable
        ``target(x)`` with ``x`` of shape (N, 3) returns shape (N, 3, 3), row ``j``
        being the wanted gradient ``k_j(x)``. For a lattice basis ``A(x)`` whose
        columns are the translation vectors this is ``A(x)^-1`` (= ``K(x)^T``).
    lo, hi : array_like, shape (3,)
        Box corners.
    h : float
        Mesh spacing (edge of the small boxes that are cut into six tetrahedra).
    order : {1, 2}
        Lagrange order.
    intorder : int, optional
        Quadrature order of the right-hand side; default ``order + 2``.
    anchor : array_like, shape (3,), optional
        Point at which the constant is fixed; default: zero integral mean.
    anchor_value : array_like, shape (3,), optional
        ``phi(anchor)``; default zeros.
    weight : callable, optional
        ``weight(x (N, 3)) -> (N,)``, positive: the fit minimises ``int c |grad phi - k|^2``.
    constraint_points : array_like, shape (M, 3), optional
        Points where ``grad phi`` is enforced exactly (Lagrange multipliers).
    constraint_gradients : array_like, shape (M, 3, 3), optional
        The enforced ``grad phi`` (row j = grad phi_j); default ``target(constraint_points)``.
    enforce : bool
        False: only measure the errors at ``constraint_points`` (plain or weighted fit).

    Returns
    -------
    PhaseField
        With ``fit`` (:class:`PhaseFit`) filled in.
    """
    if order not in _ELEMENTS:
        raise ValueError(f"order: {order!r} is not supported; use 1 (P1) or 2 (P2)")
    grid = box_tet_mesh(lo, hi, h)
    basis = Basis(grid.mesh, _ELEMENTS[order](), intorder=intorder or order + 2)

    xq = basis.mapping.F(basis.X)  # (3, nel, nqp)
    nel, nqp = xq.shape[1:]
    flat_x = xq.reshape(3, -1).T
    kq = np.asarray(target(flat_x), dtype=np.float64).reshape(nel, nqp, 3, 3)
    if weight is None:
        cq = np.ones((nel, nqp))
        A = asm(laplace, basis)
    else:
        cq = np.asarray(weight(flat_x), dtype=np.float64).reshape(nel, nqp)
        if not np.all(cq > 0):
            raise ValueError("weight: the fit weight must be > 0 everywhere")
        A = asm(_weighted_laplace, basis, c=cq)

    # Right-hand sides: b_j[i] = sum_q dx_q c_q k_j(x_q) . grad v_i(x_q), all three at once.
    dx = basis.dx  # (nel, nqp)
    cdx = cq * dx
    dofs = basis.element_dofs
    b = np.zeros((basis.N, 3))
    for i in range(dofs.shape[0]):
        gv = basis.basis[i][0].grad  # (3, nel, nqp)
        local = np.einsum("eqjd,deq,eq->ej", kq, gv, cdx)
        for j in range(3):
            b[:, j] += np.bincount(dofs[i], weights=local[:, j], minlength=basis.N)

    # Pure Neumann: pin dof 0 (the right-hand side is compatible because the constant
    # function integrates k . grad(1) = 0), factorise once, solve the three fields.
    # The reduced matrix is symmetric positive definite: no pivoting, symmetric mode,
    # our own nested-dissection ordering.
    ijk = np.rint((basis.doflocs.T[1:] - grid.lo) / (grid.h / 2)).astype(np.int64)
    perm = nested_dissection(ijk)
    Ar = A.tocsr()[1:, 1:][perm][:, perm].tocsc()
    lu = spla.splu(Ar, permc_spec="NATURAL", diag_pivot_thresh=0.0, options={"SymmetricMode": True})

    def solve(rhs: np.ndarray) -> np.ndarray:  # reduced system (dofs 1..N-1), any number of columns
        out = np.empty_like(rhs)
        out[perm] = lu.solve(np.ascontiguousarray(rhs[perm]))
        return out

    u = np.zeros((basis.N, 3))
    u[1:] = solve(b[1:])
    edofs = np.asarray(dofs, dtype=np.int64)
    G = None
    if constraint_points is not None:
        cp = np.asarray(constraint_points, dtype=np.float64).reshape(-1, 3)
        g = (np.asarray(target(cp), dtype=np.float64) if constraint_gradients is None
             else np.asarray(constraint_gradients, dtype=np.float64)).reshape(-1, 3, 3)
        G = gradient_operator(grid, order, edofs, cp)
    if G is not None and enforce:
        Br = G[:, 1:].toarray()  # (3M, N - 1): dof 0 is pinned to 0
        Z = solve(np.ascontiguousarray(Br.T))  # A^-1 B^T
        S = Br @ Z
        # g[m, j, l] = d phi_j / d x_l at point m -> constraint rows 3m + l, field j
        rhs = Br @ u[1:] - np.transpose(g, (0, 2, 1)).reshape(-1, 3)
        lam = np.linalg.lstsq(S, rhs, rcond=None)[0]
        u[1:] -= Z @ lam

    field = PhaseField(grid=grid, order=order, coeffs=u, element_dofs=edofs)
    if anchor is None:
        weights = asm(LinearForm(lambda v, w: v), basis)  # int N_i
        shift = -(weights @ u) / weights.sum()
    else:
        value = np.zeros(3) if anchor_value is None else np.asarray(anchor_value, dtype=np.float64)
        shift = value - field(np.asarray(anchor, dtype=np.float64).reshape(1, 3))[0]

    # fit measures: residual over the box, errors at the constrained points
    gq = np.stack([basis.interpolate(u[:, j]).grad for j in range(3)], axis=0)  # (3 fields, 3, nel, nqp)
    diff = np.transpose(gq, (2, 3, 0, 1)) - kq  # (nel, nqp, j, l)
    err2 = (diff**2).sum(axis=(2, 3))
    ref2 = (kq**2).sum(axis=(2, 3))
    residual = float(np.sqrt((err2 * dx).sum() / (ref2 * dx).sum()))
    weighted = float(np.sqrt((err2 * cdx).sum() / (ref2 * cdx).sum()))
    pg = pb = np.zeros(0)
    if G is not None:
        got = np.transpose((G @ u).reshape(-1, 3, 3), (0, 2, 1))  # [m, j, l]
        pg = np.linalg.norm(got - g, axis=(1, 2)) / np.linalg.norm(g, axis=(1, 2))
        gi = np.linalg.inv(g)
        pb = np.linalg.norm(np.linalg.inv(got) - gi, axis=(1, 2)) / np.linalg.norm(gi, axis=(1, 2))
    fit = PhaseFit(residual=residual, weighted_residual=weighted, point_gradient_error=pg, point_basis_error=pb)
    # Lagrange bases sum to one, so adding c to every dof adds c to the field.
    return PhaseField(grid=grid, order=order, coeffs=u + shift, element_dofs=edofs, fit=fit)
