"""The as-built local cell at a point of a graded lattice, and its FE stiffness.

At a point ``x`` the graded lattice is locally periodic with basis
``A_loc = (mu grad phi(x))^-1`` (the phase fields actually solved, not the blend A(x) they
approximate) and the superposed topology of all control points with the blended strut
diameters ``d_s(x)`` of SI Eq. 16; struts the build drops there (thinner than the
printable minimum or negligible) are left out. Homogenizing that periodic cell gives the
stiffness the part has around ``x``, to compare with the control point's own cell or
target.

:func:`superposed_local_cell` is the same model for any cells, weights and basis (the
closed-loop correction evaluates it for trial cells).
"""

from __future__ import annotations

import numpy as np

from ..fem import PeriodicGraph, homogenize
from ..topology import reference_graph
from .assemble import NEGLIGIBLE, blended_diameters, strut_membership

__all__ = ["local_cell", "local_stiffness", "superposed_local_cell"]


def superposed_local_cell(cells, weights: np.ndarray, basis: np.ndarray, cell_edge: float, min_diameter: float,
                          *, where: str = "x"):
    """Periodic local cell of the superposed topology of ``cells`` with blended diameters.

    Parameters
    ----------
    cells : sequence of graded.unitcell.UnitCell
        The control points' cells (their diameters are taken for ``cell_edge``).
    weights : ndarray, shape (k,)
        Blend weights ``N_i`` at the point.
    basis : ndarray, shape (3, 3)
        Local lattice basis (mm), columns = translation vectors.
    cell_edge : float
        Built cell edge (mm).
    min_diameter : float
        Printable minimum (mm); thinner struts are left out.
    where : str
        Names the point in the error message.

    Returns
    -------
    graph : graded.fem.PeriodicGraph
    basis : ndarray, shape (3, 3)
    diameters : ndarray, shape (M,), mm

    Raises
    ------
    RuntimeError
        No strut is left.
    """
    parts = tuple(dict.fromkeys(p for c in cells for p in c.topology))
    ref = reference_graph(parts)
    per = ref.periodic
    member = strut_membership(per.membership, ref.parts, [c.topology for c in cells])
    diam = np.array([c.diameter(cell_size=cell_edge) for c in cells])
    w = np.repeat(np.asarray(weights, dtype=np.float64).reshape(1, -1), per.n_bonds, axis=0)
    d = blended_diameters(w, member, diam)
    dmax = (member * diam[None, :]).max(axis=1)
    keep = (d >= min_diameter) & (d >= NEGLIGIBLE * dmax) & (d > 0)
    if not keep.any():
        raise RuntimeError(
            f"no strut of the lattice at {where} is printable "
            f"(all blended diameters < min_strut_diameter = {min_diameter:g} mm): there is no local cell to homogenize"
        )
    used = np.unique(per.bonds[keep])
    remap = np.full(per.n_nodes, -1, dtype=np.int64)
    remap[used] = np.arange(len(used))
    graph = PeriodicGraph(per.nodes[used], remap[per.bonds[keep]], per.offsets[keep])
    return graph, np.asarray(basis, dtype=np.float64), d[keep]


def local_cell(prepared, x, *, min_diameter: float | None = None):
    """Periodic graph, basis (mm) and per-bond diameters (mm) of the lattice at ``x``.

    Parameters
    ----------
    prepared : graded.grading.pipeline.Prepared
    x : array_like, shape (3,)
        Point (mm).
    min_diameter : float, optional
        Printable minimum (default: the spec's).

    Returns
    -------
    graph : graded.fem.PeriodicGraph
        Bonds that exist at x (nodes without bonds removed).
    basis : ndarray, shape (3, 3)
    diameters : ndarray, shape (M,)
    """
    spec = prepared.spec
    mind = spec.min_strut_diameter if min_diameter is None else min_diameter
    x = np.asarray(x, dtype=np.float64).reshape(1, 3)
    J = spec.mu * prepared.phase.gradient(x)[0]
    return superposed_local_cell(prepared.cells, prepared.field.weights(x)[0], np.linalg.inv(J), prepared.cell_edge,
                                 mind, where=f"{np.round(x[0], 3).tolist()} mm")


def local_stiffness(prepared, x, *, E: float = 1.0, nu: float | None = None,
                    min_diameter: float | None = None) -> np.ndarray:
    """FE stiffness (6, 6) of the as-built local cell at ``x`` (normalised for ``E = 1``)."""
    graph, basis, d = local_cell(prepared, x, min_diameter=min_diameter)
    nu = prepared.spec.material.nu if nu is None else nu
    return homogenize(graph, basis, d[None, :], E=E, nu=nu)
