"""Linear static FE of a (non-periodic) 3D frame of Timoshenko beams.

Every strut of a lattice is one two-node Timoshenko beam with its own circular section
(the element of :func:`graded.fem.homogenize.beam_stiffness`: exact for end-loaded
prismatic beams, so one element per strut loses nothing). Nodes carry six dofs, the
displacement ``u`` (mm) and the small rotation ``theta`` (rad); joints are rigid.

The global stiffness is assembled directly in 6x6 block (BSR) form, one block per node
pair, by summing the element blocks of every strut with ``np.bincount``. Prescribed
dofs are eliminated symmetrically (their rows and columns are replaced by the identity
and the right-hand side corrected), which keeps the block structure for the algebraic
multigrid solver.

Two solvers:

* ``"direct"``: SuperLU (:func:`scipy.sparse.linalg.splu`), robust, memory grows fast
  with the part size;
* ``"amg"``: conjugate gradients preconditioned by pyamg smoothed aggregation built on
  the six rigid-body modes of the frame, after symmetric diagonal scaling (rotations and
  translations have different units).

``"auto"`` picks the direct solver up to :data:`DIRECT_MAX_DOFS` dofs and AMG above
(crossover measured by ``benchmarks/simulate.py``).

Units are whatever the caller uses consistently; graded uses mm, N and MPa.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from scipy import sparse
from scipy.sparse.linalg import splu

from .homogenize import beam_stiffness

__all__ = [
    "FrameResult",
    "assemble_frame",
    "rigid_body_modes",
    "solve_frame",
    "strut_end_forces",
    "strut_stresses",
    "DIRECT_MAX_DOFS",
    "CG_RTOL",
    "RIGID_MODE_RANK_TOL",
]

#: Above this many dofs ``solver="auto"`` uses AMG-preconditioned CG instead of SuperLU.
#: Measured on a 2-core machine (``benchmarks/simulate.py``): SuperLU wins below ~6e3
#: dofs (no setup cost) and its fill-in makes it slower and far heavier above.
DIRECT_MAX_DOFS = 6_000
#: Relative residual ||K u - f|| / ||f|| at which CG stops. 1e-8 leaves displacements
#: and reactions accurate to ~1e-6 even at the condition numbers of slender struts
#: (kappa ~ (L / r)^4 ~ 1e6-1e8).
CG_RTOL = 1e-8
#: Maximum CG iterations before the solver gives up.
CG_MAXITER = 5000
#: A singular value of the constrained rigid-body-mode matrix below this fraction of the
#: largest is a rigid-body mode left free (under-constrained load case).
RIGID_MODE_RANK_TOL = 1e-9
#: Struts per chunk when element matrices are formed (12 x 12 doubles: ~58 MB per chunk).
_CHUNK = 50_000


@dataclass
class FrameResult:
    """Solution of a frame.

    Attributes
    ----------
    displacement : ndarray, shape (N, 6), float64
        Nodal displacements (length unit) and rotations (rad).
    reaction : ndarray, shape (N, 6)
        Forces and moments the supports exert at prescribed dofs (zero at free dofs).
    solver : str
        ``"direct"`` or ``"amg"``.
    iterations : int
        CG iterations (0 for the direct solver).
    residual : float
        Relative residual ``||K u - f|| / ||f||`` over the free dofs.
    timings : dict
        Seconds of ``assemble_s``, ``setup_s`` (factorisation / AMG hierarchy), ``solve_s``.
    """

    displacement: np.ndarray
    reaction: np.ndarray
    solver: str
    iterations: int
    residual: float
    timings: dict = field(default_factory=dict)


def _block_pattern(n_nodes: int, struts: np.ndarray):
    """Unique 6x6 block slots of the assembled matrix and the slot of every element block."""
    i, j = struts[:, 0], struts[:, 1]
    br = np.stack([i, i, j, j], axis=1).reshape(-1)  # (4M,) blocks (ii, ij, ji, jj)
    bc = np.stack([i, j, i, j], axis=1).reshape(-1)
    diag = np.arange(n_nodes)
    key = np.concatenate([br * n_nodes + bc, diag * n_nodes + diag])  # diagonal always present
    ukey, slot = np.unique(key, return_inverse=True)
    slot = slot.reshape(-1)[: 4 * len(struts)]
    rows, cols = ukey // n_nodes, ukey % n_nodes
    indptr = np.searchsorted(rows, np.arange(n_nodes + 1))
    return slot, cols, indptr, len(ukey)


def assemble_frame(nodes, struts, diameters, E: float = 1.0, nu: float = 0.3) -> sparse.bsr_matrix:
    """Global stiffness of a frame of circular Timoshenko beams.

    Parameters
    ----------
    nodes : ndarray, shape (N, 3)
    struts : ndarray, shape (M, 2), int
    diameters : ndarray, shape (M,)
    E, nu : float
        Base material (E in force / length^2).

    Returns
    -------
    scipy.sparse.bsr_matrix, shape (6N, 6N), blocksize (6, 6)
        Dof ``6 n + k``: node n, k = ux, uy, uz, theta_x, theta_y, theta_z.
    """
    nodes = np.asarray(nodes, dtype=np.float64)
    struts = np.asarray(struts, dtype=np.int64)
    dia = np.asarray(diameters, dtype=np.float64)
    N, M = len(nodes), len(struts)
    slot, cols, indptr, n_blocks = _block_pattern(N, struts)
    data = np.zeros((n_blocks, 36))
    slot = slot.reshape(M, 4)
    for lo in range(0, M, _CHUNK):
        hi = min(M, lo + _CHUNK)
        s = struts[lo:hi]
        Ke = beam_stiffness(nodes[s[:, 1]] - nodes[s[:, 0]], dia[lo:hi] / 2.0, E, nu)
        blocks = Ke.reshape(-1, 2, 6, 2, 6).transpose(0, 1, 3, 2, 4).reshape(-1, 36)  # (4c, 36)
        sl = slot[lo:hi].reshape(-1)
        for k in range(36):
            data[:, k] += np.bincount(sl, weights=blocks[:, k], minlength=n_blocks)
    return sparse.bsr_matrix((data.reshape(-1, 6, 6), cols, indptr), shape=(6 * N, 6 * N))


def rigid_body_modes(nodes: np.ndarray) -> np.ndarray:
    """The six rigid-body modes of a frame (translations, then rotations about the centroid).

    Returns
    -------
    ndarray, shape (6N, 6)
        Column k: dofs of the rigid motion; rotations give ``u = omega x (x - c)``,
        ``theta = omega``.
    """
    x = np.asarray(nodes, dtype=np.float64)
    x = x - x.mean(axis=0)
    N = len(x)
    R = np.zeros((N, 6, 6))
    R[:, 0:3, 0:3] = np.eye(3)
    for k in range(3):
        w = np.zeros(3)
        w[k] = 1.0
        R[:, 0:3, 3 + k] = np.cross(w, x)
        R[:, 3 + k, 3 + k] = 1.0
    return R.reshape(6 * N, 6)


def _amg_solve(A, b, B, progress):
    """CG with a smoothed-aggregation AMG preconditioner; returns (x, iterations, setup_s).

    Six near-null vectors per aggregate make the coarsest level several hundred to a few
    thousand dofs: it is factorised sparse (the default dense pseudo-inverse costs seconds).
    """
    import pyamg

    t0 = time.perf_counter()
    ml = pyamg.smoothed_aggregation_solver(
        A, B=B, symmetry="hermitian", strength=("symmetric", {"theta": 0.0}),
        smooth=("jacobi", {"omega": 4.0 / 3.0, "weighting": "local"}), max_coarse=500, coarse_solver="splu",
    )
    setup = time.perf_counter() - t0
    residuals: list[float] = []

    def cb(xk):
        if progress is not None and len(residuals) % 10 == 0:
            progress(len(residuals), CG_MAXITER, f"CG iteration {len(residuals)}")

    x = ml.solve(b, tol=CG_RTOL, maxiter=CG_MAXITER, accel="cg", residuals=residuals, callback=cb)
    return x, max(len(residuals) - 1, 0), setup


def solve_frame(
    nodes,
    struts,
    diameters,
    *,
    E: float = 1.0,
    nu: float = 0.3,
    prescribed: np.ndarray | None = None,
    values: np.ndarray | None = None,
    forces: np.ndarray | None = None,
    solver: str = "auto",
    progress=None,
    stiffness: sparse.spmatrix | None = None,
) -> FrameResult:
    """Static equilibrium ``K u = f`` of a frame with prescribed dofs.

    Parameters
    ----------
    nodes, struts, diameters, E, nu
        As in :func:`assemble_frame`.
    prescribed : ndarray of int, shape (P,)
        Global dof indices (``6 node + k``) whose values are prescribed.
    values : ndarray, shape (P,), optional
        Their values (default zero).
    forces : ndarray, shape (6N,) or (N, 6), optional
        External nodal forces and moments; at prescribed dofs they go straight into the
        supports (``reaction = K u - f`` there).
    solver : {"auto", "direct", "amg"}
    progress : callable, optional
        ``progress(done, total, message)``.
    stiffness : scipy.sparse matrix, shape (6N, 6N), optional
        ``assemble_frame(nodes, struts, diameters, E, nu)``, when several load cases share the
        frame (default: assembled here).

    Returns
    -------
    FrameResult

    Raises
    ------
    ValueError
        A prescribed dof out of range, or the prescribed dofs leave a rigid-body mode of
        a connected component free (the stiffness would be singular).
    RuntimeError
        CG did not converge.
    """
    if solver not in ("auto", "direct", "amg"):
        raise ValueError(f"solver: {solver!r} is not one of ['auto', 'direct', 'amg']")
    nodes = np.asarray(nodes, dtype=np.float64)
    struts = np.asarray(struts, dtype=np.int64)
    N = len(nodes)
    n = 6 * N
    pres = np.zeros(0, dtype=np.int64) if prescribed is None else np.asarray(prescribed, dtype=np.int64).reshape(-1)
    vals = np.zeros(len(pres)) if values is None else np.asarray(values, dtype=np.float64).reshape(-1)
    if len(vals) != len(pres):
        raise ValueError(f"values: {len(vals)} values for {len(pres)} prescribed dofs; give one per dof")
    if len(pres) and (pres.min() < 0 or pres.max() >= n):
        raise ValueError(f"prescribed: dof index out of range [0, {n})")
    f = np.zeros(n) if forces is None else np.asarray(forces, dtype=np.float64).reshape(-1).copy()
    if len(f) != n:
        raise ValueError(f"forces: {len(f)} values for {n} dofs; give (N, 6) or (6N,)")
    check_constrained(nodes, struts, pres)
    # nodes without struts have no stiffness: hold them where they are
    used = np.zeros(N, dtype=bool)
    used[struts.reshape(-1)] = True
    idle = (6 * np.flatnonzero(~used)[:, None] + np.arange(6)).reshape(-1)
    if len(idle):
        pres = np.concatenate([pres, idle])
        vals = np.concatenate([vals, np.zeros(len(idle))])

    t0 = time.perf_counter()
    if stiffness is None:
        K = assemble_frame(nodes, struts, diameters, E, nu)
    else:
        K = sparse.bsr_matrix(stiffness, blocksize=(6, 6))
        if K.shape != (n, n):
            raise ValueError(f"stiffness: has shape {K.shape}, expected ({n}, {n})")
    timings = {"assemble_s": time.perf_counter() - t0}
    u_c = np.zeros(n)
    u_c[pres] = vals
    is_p = np.zeros(n, dtype=bool)
    is_p[pres] = True
    b = f - K @ u_c
    b[is_p] = 0.0
    # symmetric elimination keeping the block pattern: zero rows/columns, unit diagonal
    keep = sparse.diags((~is_p).astype(np.float64))
    A = (keep @ K @ keep + sparse.diags(is_p.astype(np.float64))).tobsr(blocksize=(6, 6))
    use = solver if solver != "auto" else ("direct" if n <= DIRECT_MAX_DOFS else "amg")
    # symmetric Jacobi scaling: translations and rotations have different units
    dinv = 1.0 / np.sqrt(A.diagonal())
    D = sparse.diags(dinv)
    As = (D @ A @ D).tobsr(blocksize=(6, 6))
    bs = dinv * b
    t1 = time.perf_counter()
    if use == "direct":
        lu = splu(As.tocsc(), permc_spec="COLAMD")
        timings["setup_s"] = time.perf_counter() - t1
        t2 = time.perf_counter()
        y = lu.solve(bs)
        iterations = 0
    else:
        B = rigid_body_modes(nodes) / dinv[:, None]
        B[is_p] = 0.0
        y, iterations, setup = _amg_solve(As, bs, B, progress)
        timings["setup_s"] = setup
        t2 = t1 + setup
    timings["solve_s"] = time.perf_counter() - t2
    u = dinv * y
    u[pres] = vals
    r = K @ u - f
    bnorm = np.linalg.norm(np.where(is_p, 0.0, f - K @ u_c)) or 1.0
    residual = float(np.linalg.norm(r[~is_p]) / bnorm)
    if use == "amg" and residual > 1e3 * CG_RTOL:
        raise RuntimeError(
            f"the frame solve did not converge (relative residual {residual:.2e} after {iterations} CG "
            "iterations); try solver='direct'"
        )
    reaction = np.where(is_p, r, 0.0)
    return FrameResult(u.reshape(N, 6), reaction.reshape(N, 6), use, int(iterations), residual, timings)


def check_constrained(nodes: np.ndarray, struts: np.ndarray, prescribed: np.ndarray) -> None:
    """Raise ValueError if some connected component keeps a free rigid-body mode.

    For each component the rigid-body modes restricted to its prescribed dofs must have
    full rank six; otherwise ``K`` is singular there.
    """
    N = len(nodes)
    g = sparse.coo_matrix((np.ones(len(struts)), (struts[:, 0], struts[:, 1])), shape=(N, N))
    n_comp, comp = sparse.csgraph.connected_components(g, directed=False)
    used = np.zeros(N, dtype=bool)
    used[struts.reshape(-1)] = True
    is_p = np.zeros(6 * N, dtype=bool)
    is_p[prescribed] = True
    is_p = is_p.reshape(N, 6)
    for c in np.unique(comp[used]):
        members = np.flatnonzero(comp == c)
        R = rigid_body_modes(nodes[members]).reshape(len(members), 6, 6)[is_p[members]]
        s = np.linalg.svd(R, compute_uv=False) if len(R) else np.zeros(0)
        rank = int(np.sum(s > RIGID_MODE_RANK_TOL * (s.max() if len(s) else 1.0)))
        if rank < 6:
            raise ValueError(
                f"supports: {6 - rank} rigid-body mode(s) of a part of {len(members)} nodes are not "
                "restrained (the structure can move or turn freely)"
            )


def strut_end_forces(nodes, struts, diameters, displacement, E: float = 1.0, nu: float = 0.3) -> np.ndarray:
    """End forces and moments of every strut in global axes, ``K_e u_e``.

    Returns
    -------
    ndarray, shape (M, 12)
        Force (3) and moment (3) that the rest of the frame exerts on end 1, then end 2.
    """
    nodes = np.asarray(nodes, dtype=np.float64)
    struts = np.asarray(struts, dtype=np.int64)
    dia = np.asarray(diameters, dtype=np.float64)
    u = np.asarray(displacement, dtype=np.float64).reshape(-1, 6)
    out = np.empty((len(struts), 12))
    for lo in range(0, len(struts), _CHUNK):
        s = struts[lo:lo + _CHUNK]
        Ke = beam_stiffness(nodes[s[:, 1]] - nodes[s[:, 0]], dia[lo:lo + _CHUNK] / 2.0, E, nu)
        ue = np.concatenate([u[s[:, 0]], u[s[:, 1]]], axis=1)
        out[lo:lo + _CHUNK] = np.einsum("mij,mj->mi", Ke, ue)
    return out


def strut_stresses(nodes, struts, diameters, end_forces) -> dict:
    """Section forces and the peak stress of every strut (beam theory, circular section).

    Parameters
    ----------
    end_forces : ndarray, shape (M, 12)
        From :func:`strut_end_forces`.

    Returns
    -------
    dict of ndarray, shape (M,)
        ``axial_force`` (tension > 0), ``shear_force`` (magnitude), ``torque`` (magnitude),
        ``bending_moment`` (largest magnitude of the two ends), ``axial_stress``,
        ``bending_stress`` (outer fibre), ``von_mises`` (outer fibre at the more loaded
        end: ``sqrt((|N|/A + M r / I)^2 + 3 (T r / J)^2)``, an upper bound).
    """
    nodes = np.asarray(nodes, dtype=np.float64)
    struts = np.asarray(struts, dtype=np.int64)
    f = np.asarray(end_forces, dtype=np.float64)
    d = nodes[struts[:, 1]] - nodes[struts[:, 0]]
    e = d / np.linalg.norm(d, axis=1, keepdims=True)
    r = np.asarray(diameters, dtype=np.float64) / 2.0
    A = np.pi * r**2
    inertia = np.pi * r**4 / 4.0
    J = 2.0 * inertia

    def perp(v):
        return np.linalg.norm(v - np.sum(v * e, axis=1, keepdims=True) * e, axis=1)

    N = np.sum(f[:, 6:9] * e, axis=1)
    V = perp(f[:, 6:9])
    T = np.abs(np.sum(f[:, 9:12] * e, axis=1))
    Mb = np.maximum(perp(f[:, 3:6]), perp(f[:, 9:12]))
    s_ax = N / A
    s_b = Mb * r / inertia
    tau = T * r / J
    vm = np.sqrt((np.abs(s_ax) + s_b) ** 2 + 3.0 * tau**2)
    return {"axial_force": N, "shear_force": V, "torque": T, "bending_moment": Mb,
            "axial_stress": s_ax, "bending_stress": s_b, "von_mises": vm}
