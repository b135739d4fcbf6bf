"""Independent as-built check: the apparent stiffness of the real built graph around a point.

The as-built figure of :mod:`graded.grading.local` is a model: a periodic cell with the
local phase-field basis and the blended diameters. This module measures the part itself.
It cuts the built strut graph (nodes, struts, diameters as they will be printed: clipped,
merged, pruned, dissolved) along cell faces around the point -- a window of ``n x n x n``
cells in lattice coordinates ``q = mu phi(x)`` -- and computes the window's apparent
stiffness by Timoshenko-beam FE (:func:`graded.fem.homogenize.beam_stiffness`) under affine
(kinematic uniform) boundary conditions: every node on the window's faces gets
``u = eps (x - x_0)``, ``theta = 0``; the interior is free. With ``U_k`` the displacement
field of the unit Voigt strain ``e_k``,

    C_app = U^T K U / V,        V = sum over window cells of 1 / det(mu grad phi(centre)).

Struts lying in a window face count half (in an edge, a quarter): the neighbouring window
owns the other half, so a window of a uniform lattice has exactly the energy of ``n^3``
periodic cells. A strut that crosses a face (after collinear nodes were dissolved) is cut
where it crosses and the cut point is a boundary node.

**Bounds.** For a uniform lattice the kinematic field is admissible for the periodic
problem on the window (its fluctuation vanishes on the faces), so ``C_app >= C_per`` in the
sense of energies -- an upper bound of the periodic local-cell model -- with equality for
lattices whose periodic solution is affine (one node per primitive cell, e.g. simple
cubic). It tightens as the window grows.

The window is placed with the point's cell at its centre; where that window leaves the
body, the placement among all ``n^3`` positions of the point's cell that leaves the most
of it inside is taken, and ``complete`` says whether all of it is inside.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.sparse.linalg import splu

from ..fem.homogenize import beam_stiffness, strain_operator
from .placement import invert_phase

__all__ = ["WindowCheck", "window_stiffness", "check_point", "WINDOW_CELLS", "ON_FACE", "REGULARIZATION"]

#: Cells per side of the default window: 3 puts one ring of cells around the point's cell
#: (the smallest window whose interior nodes are all free of the boundary condition).
WINDOW_CELLS = 3
#: A node is on a window face when its lattice coordinate is this close to the face's
#: integer value (nodes are placed at ``mu phi = n + xi`` to 1e-11; merging moves them by
#: < 1e-3 of a cell only when two nodes nearly coincide).
ON_FACE = 1e-6
#: The completeness test samples the window's faces this far inside (cells): a window
#: face on the body's surface counts as inside, one a sliver beyond it does not.
WINDOW_SAMPLE_INSET = 1e-3
#: Added to the diagonal of the free-dof matrix, relative to its mean: removes the zero
#: energy of a node's spin about a single strut's axis without changing any energy
#: (1e-12 of a typical stiffness).
REGULARIZATION = 1e-12


@dataclass
class WindowCheck:
    """The independent as-built check at one control point (JSON-ready by :meth:`to_dict`).

    Attributes
    ----------
    index : int
        Control point.
    cells : int
        Window cells per side.
    offset : list of int
        Position of the point's cell in the window along each lattice direction (0-based).
    complete : bool
        The whole window lies inside the body.
    n_struts, n_boundary_nodes : int
    volume_mm3 : float
    C_window : ndarray, shape (6, 6)
        Apparent stiffness of the cut graph (normalised for E = 1).
    C_local : ndarray, shape (6, 6) or None
        The periodic local-cell model at the point.
    error_vs_local : float or None
        ``|C_window - C_local|_F / |C_local|_F``.
    upper_bound_margin : float or None
        Smallest eigenvalue of ``C_window - C_local`` over ``|C_local|_2``: >= 0 (up to
        round-off) when the window bounds the model from above, as it must for a uniform
        lattice.
    error_vs_reference : float or None
        ``|C_window - C_ref|_F / |C_ref|_F`` against the point's own cell or target.
    """

    index: int
    cells: int
    offset: list
    complete: bool
    n_struts: int
    n_boundary_nodes: int
    volume_mm3: float
    C_window: np.ndarray
    C_local: np.ndarray | None = None
    error_vs_local: float | None = None
    upper_bound_margin: float | None = None
    error_vs_reference: float | None = None

    def to_dict(self) -> dict:
        """JSON-ready (stiffness as 6x6 lists)."""
        out = dict(vars(self))
        out["C_window"] = np.asarray(self.C_window).tolist()
        out["C_local"] = None if self.C_local is None else np.asarray(self.C_local).tolist()
        return out


def _window_inside(x0, A_loc, q0, lo, n, contains) -> float:
    """Fraction of sample points of the window [lo, lo + n]^3 (lattice coords) inside the body."""
    t = np.linspace(WINDOW_SAMPLE_INSET, n - WINDOW_SAMPLE_INSET, 2 * n + 1)  # faces included
    q = np.stack(np.meshgrid(t, t, t, indexing="ij"), -1).reshape(-1, 3) + lo
    x = x0 + (q - q0) @ A_loc.T  # affine map around the point
    return float(contains(x).mean())


def window_stiffness(graph, phase, mu: float, x, *, cells: int = WINDOW_CELLS, nu: float = 0.3, contains=None,
                     region=None):
    """Apparent stiffness (6, 6) of the built graph in a window of cells around ``x``.

    Parameters
    ----------
    graph : graded.graph.LatticeGraph
        The built lattice (mm).
    phase : graded.fem.PhaseField
        The phase fields it was built from.
    mu : float
        Phase frequency (``q = mu phi``).
    x : array_like, shape (3,)
        The point (mm).
    cells : int
        Window cells per side.
    nu : float
        Poisson's ratio of the base material (E = 1).
    contains : callable, optional
        Inside test of the body, ``contains(x (N, 3)) -> (N,) bool``; default: all inside.
    region : callable, optional
        ``region(x (N, 3)) -> (N,) bool``: the nodes that ``phase`` describes (a lattice in
        grains: the point's grain); nodes outside it are never inside the window.

    Returns
    -------
    C : ndarray, shape (6, 6)
    info : dict
        ``offset``, ``complete``, ``n_struts``, ``n_boundary_nodes``, ``volume_mm3``.

    Raises
    ------
    RuntimeError
        The window holds no strut or no boundary node.
    """
    n = int(cells)
    if n < 1:
        raise ValueError("cells: the window needs at least one cell per side")
    x0 = np.asarray(x, dtype=np.float64).reshape(3)
    phi0, J0 = phase.evaluate(x0[None])
    q0, J0 = mu * phi0[0], mu * J0[0]
    A_loc = np.linalg.inv(J0)
    contains = (lambda p: np.ones(len(p), dtype=bool)) if contains is None else contains
    # every window of whole cells that holds the point (a point on a cell face is held by
    # the cells on both sides), the most central first
    first = np.ceil(q0 - n - ON_FACE).astype(np.int64)
    last = np.floor(q0 + ON_FACE).astype(np.int64)
    axes = [np.arange(first[a], last[a] + 1) for a in range(3)]
    cand = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    off_centre = np.abs(cand + n / 2.0 - q0).sum(axis=1)
    best, best_key = None, None
    for lo_c in cand[np.argsort(off_centre, kind="stable")]:
        frac = _window_inside(x0, A_loc, q0, lo_c, n, contains)
        if best_key is None or frac > best_key:
            best, best_key = lo_c, frac
        if frac == 1.0:
            break
    lo = best.astype(np.float64)
    hi = lo + n
    cell_of_point = np.clip(np.floor(q0).astype(np.int64), best, best + n - 1)

    # nodes near the window, their lattice coordinates
    reach = (n + 1) * np.linalg.norm(A_loc, 2) * np.sqrt(3.0)
    near = np.flatnonzero(np.linalg.norm(graph.nodes - x0, axis=1) <= reach)
    q = np.full((graph.n_nodes, 3), np.nan)
    q[near] = mu * phase(graph.nodes[near])
    inside = np.zeros(graph.n_nodes, dtype=bool)
    inside[near] = np.all((q[near] >= lo - ON_FACE) & (q[near] <= hi + ON_FACE), axis=1)
    if region is not None:
        inside[near] &= region(graph.nodes[near])
    a, b = graph.struts[:, 0], graph.struts[:, 1]
    both = inside[a] & inside[b]
    one = inside[a] ^ inside[b]
    pos = [graph.nodes]
    qs = [np.nan_to_num(q)]
    ends, diam, weight = [graph.struts[both]], [graph.diameters[both]], []
    qm = 0.5 * (q[a[both]] + q[b[both]])
    on = (np.abs(qm - lo) < ON_FACE) | (np.abs(qm - hi) < ON_FACE)
    weight.append(np.prod(np.where(on, 0.5, 1.0), axis=1))
    # struts crossing a face: cut at the crossing (q linear along the strut), new boundary node
    cut = np.flatnonzero(one)
    if len(cut):
        # a strut leaving from a node on a face has nothing inside the window
        qa = q[np.where(inside[a[cut]], a[cut], b[cut])]
        cut = cut[~np.any((np.abs(qa - lo) < ON_FACE) | (np.abs(qa - hi) < ON_FACE), axis=1)]
    if len(cut):
        ia = np.where(inside[a[cut]], a[cut], b[cut])
        ib = np.where(inside[a[cut]], b[cut], a[cut])
        qa, qb = q[ia], mu * phase(graph.nodes[ib])
        dq = qb - qa
        with np.errstate(divide="ignore", invalid="ignore"):
            t_hi = np.where(dq > 0, (hi - qa) / dq, np.inf)
            t_lo = np.where(dq < 0, (lo - qa) / dq, np.inf)
        t = np.clip(np.minimum(t_hi, t_lo).min(axis=1), 0.0, 1.0)
        xc = graph.nodes[ia] + t[:, None] * (graph.nodes[ib] - graph.nodes[ia])
        new = graph.n_nodes + np.arange(len(cut))
        pos.append(xc)
        qs.append(qa + t[:, None] * dq)
        ends.append(np.stack([ia, new], 1))
        diam.append(graph.diameters[cut])
        weight.append(np.ones(len(cut)))
    X = np.concatenate(pos)
    Q = np.concatenate(qs)
    forced = np.arange(len(X)) >= graph.n_nodes  # cut points are boundary nodes
    S = np.concatenate(ends)
    d = np.concatenate(diam)
    w = np.concatenate(weight)
    if len(S) == 0:
        raise RuntimeError(f"no strut of the built lattice lies in the window around {np.round(x0, 3).tolist()} mm")
    used = np.unique(S)
    remap = np.full(len(X), -1, dtype=np.int64)
    remap[used] = np.arange(len(used))
    X, Q, S, forced = X[used], Q[used], remap[S], forced[used]
    boundary = np.any((np.abs(Q - lo) < ON_FACE) | (np.abs(Q - hi) < ON_FACE), axis=1) | forced
    if not boundary.any():
        raise RuntimeError("the window around the point has no node on its faces")

    # assemble the beam stiffness (6 dofs per node: u, theta)
    Ke = beam_stiffness(X[S[:, 1]] - X[S[:, 0]], d / 2.0, E=1.0, nu=nu) * w[:, None, None]
    dof = (6 * S[:, :, None] + np.arange(6)[None, None, :]).reshape(-1, 12)
    nd = 6 * len(X)
    rows = np.repeat(dof, 12, axis=1).ravel()
    cols = np.tile(dof, (1, 12)).ravel()
    K = sparse.csr_matrix((Ke.ravel(), (rows, cols)), shape=(nd, nd))
    # prescribed: boundary translations affine, boundary rotations zero
    U = np.zeros((nd, 6))
    bidx = np.flatnonzero(boundary)
    Bop = strain_operator(X[bidx] - x0)  # (nb, 3, 6)
    for k in range(3):
        U[6 * bidx + k] = Bop[:, k, :]
    fixed = np.zeros(nd, dtype=bool)
    fixed[(6 * bidx[:, None] + np.arange(6)).ravel()] = True
    free = np.flatnonzero(~fixed)
    if len(free):
        Kff = K[free][:, free].tocsc()
        reg = REGULARIZATION * float(Kff.diagonal().mean())
        Kff = Kff + reg * sparse.identity(len(free), format="csc")
        # symmetric positive definite: symmetric minimum-degree ordering, no pivoting
        lu = splu(Kff, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0, options={"SymmetricMode": True})
        U[free] = lu.solve(-(K[free][:, np.flatnonzero(fixed)] @ U[fixed]))

    # window volume: cell centres by the inverse phase map, midpoint rule per cell
    idx = np.stack(np.meshgrid(*(np.arange(n),) * 3, indexing="ij"), -1).reshape(-1, 3) + lo
    target = idx + 0.5
    guess = x0 + (target - q0) @ A_loc.T
    xc, ok = invert_phase(phase, mu, target, guess)
    Jc = mu * phase.gradient(xc)
    vol_cells = np.where(ok, 1.0 / np.abs(np.linalg.det(Jc)), abs(np.linalg.det(A_loc)))
    V = float(vol_cells.sum())
    C = U.T @ (K @ U) / V
    C = 0.5 * (C + C.T)
    info = {"offset": (cell_of_point - best).tolist(), "complete": bool(best_key == 1.0), "n_struts": int(len(S)),
            "n_boundary_nodes": int(boundary.sum()), "volume_mm3": V}
    return C, info


def check_point(prep, graph, index: int, *, cells: int = WINDOW_CELLS, reference: np.ndarray | None = None,
                C_local: np.ndarray | None = None) -> WindowCheck:
    """The independent check at control point ``index`` of a build.

    Parameters
    ----------
    prep : graded.grading.pipeline.Prepared
    graph : graded.graph.LatticeGraph
        The built lattice of ``prep``.
    index : int
    cells : int
        Window cells per side.
    reference : ndarray, shape (6, 6), optional
        The stiffness asked for (own cell or target, normalised); compared when given.
    C_local : ndarray, shape (6, 6), optional
        The periodic local-cell model; computed when not given (None if it cannot be).
    """
    from .local import local_stiffness

    x = prep.spec.control_points[index].position
    nu = prep.spec.material.nu
    phase, contains, region = prep.phase, prep.body.contains, None
    if prep.grains is not None:  # the point's own grain: its phase fields, its region
        grains, own = prep.grains, int(prep.grains.group_of[index])
        phase = prep.phase.phases[own]

        def region(p):
            return grains.grain_of(p) == own

        def contains(p):
            return prep.body.contains(p) & region(p)
    C, info = window_stiffness(graph, phase, prep.spec.mu, x, cells=cells, nu=nu, contains=contains, region=region)
    if C_local is None:
        try:
            C_local = local_stiffness(prep, x, nu=nu)
        except RuntimeError:
            C_local = None
    out = WindowCheck(index=int(index), cells=int(cells), C_window=C, **info)
    if C_local is not None:
        out.C_local = C_local
        out.error_vs_local = float(np.linalg.norm(C - C_local) / np.linalg.norm(C_local))
        out.upper_bound_margin = float(np.linalg.eigvalsh(C - C_local).min() / np.linalg.norm(C_local, 2))
    if reference is not None:
        out.error_vs_reference = float(np.linalg.norm(C - reference) / np.linalg.norm(reference))
    return out
