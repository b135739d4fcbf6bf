"""One control point: the graded lattice is exactly the periodic (affine) lattice."""

import numpy as np
import pytest
from scipy.spatial import cKDTree

from graded.build import build_graph
from graded.grading.pipeline import prepare
from graded.grading.placement import locate_cells, tau_prime
from graded.spec import parse_spec
from graded.topology import reference_graph

L = 2.0
TOPOLOGY = "2x1+1x3+2x5"


def _spec(cell, size=(14.0, 12.0, 12.0)):
    return parse_spec({
        "body": {"box": {"size": list(size), "origin": [1.0, -2.0, 0.5]}},
        "cell_size": L,
        "control_points": [{"position": [5.0, 2.0, 5.0], "cell": cell}],
    })


CELLS = {
    "cubic": {"topology": TOPOLOGY, "rho": 0.05},
    "sheared": {"topology": TOPOLOGY, "rho": 0.03, "U": [1.2, 0.9, 1.1], "V": [1.0, 1.3, 0.8],
                "R1": [0.3, 0.6, 0.0], "R2": [0.5, 0.0, 0.6]},
}


@pytest.mark.parametrize("name", sorted(CELLS))
def test_single_point_reproduces_the_periodic_lattice(name):
    spec = _spec(CELLS[name])
    prep = prepare(spec)
    graph = build_graph(spec)
    F = L * prep.cells[0].basis
    lo = np.array(spec.body.box.origin)
    ref = reference_graph(prep.cells[0].topology)
    per = ref.periodic

    # every node is an affine lattice node lo + F (n + xi) to 1e-9 of a cell
    X = np.linalg.solve(F, (graph.nodes - lo).T).T
    frac = X - np.floor(X + 1e-7)
    frac[frac > 1 - 1e-7] -= 1.0
    dist, cls = cKDTree(per.nodes).query(frac)
    exact = lo + (np.floor(X + 1e-7) + per.nodes[cls]) @ F.T
    assert np.max(np.linalg.norm(graph.nodes - exact, axis=1)) / L < 1e-9
    assert dist.max() < 1e-9

    # no duplicate nodes (distinct lattice nodes are >= 1/12 of a cell apart)
    assert cKDTree(graph.nodes).query(graph.nodes, k=2)[0][:, 1].min() > 0.05 * L

    # interior nodes (one cell diagonal away from the faces) have the periodic degree
    deg_p = np.bincount(per.bonds.ravel(), minlength=per.n_nodes)
    deg = np.bincount(graph.struts.ravel(), minlength=graph.n_nodes)
    reach = np.linalg.norm(per.bond_vectors(F), axis=1).max() + 1e-6
    hi = lo + np.array(spec.body.box.size)
    interior = np.all((graph.nodes > lo + reach) & (graph.nodes < hi - reach), axis=1)
    assert interior.sum() > 5
    assert np.array_equal(deg[interior], deg_p[cls[interior]])

    # one diameter everywhere: the cell's own, from its relative density
    assert np.allclose(graph.diameters, prep.cells[0].diameter(cell_size=L), rtol=1e-12)
    # every strut is an image of a periodic bond: same length set
    bond_len = np.linalg.norm(per.bond_vectors(F), axis=1)
    assert np.all(np.min(np.abs(graph.lengths[:, None] - bond_len[None]), axis=1) < 1e-9 * L)


def test_aligned_box_is_filled_with_whole_cells():
    # a 10 x 8 x 8 mm box of 2 mm cubic cells anchored at its corner: 5 x 4 x 4 cells
    spec = _spec(CELLS["cubic"], size=(10.0, 8.0, 8.0))
    graph = build_graph(spec)
    ref = reference_graph(TOPOLOGY)
    per = ref.periodic
    # struts of 80 cells: 80 periodic cells' bonds plus the bonds on the 3 outer faces
    # counted by direct enumeration of the cube representation
    lo = np.array(spec.body.box.origin)
    cells = np.array([[i, j, k] for i in range(5) for j in range(4) for k in range(4)])
    ends = ((cells[:, None, None, :] + ref.nodes[ref.struts][None]) * L + lo).reshape(-1, 3)
    pts, pid = np.unique(np.round(ends * 1e6).astype(np.int64), axis=0, return_inverse=True)
    expected = np.unique(np.sort(pid.reshape(-1, 2), axis=1), axis=0)
    assert graph.n_struts == len(expected)
    assert graph.n_nodes == len(pts)
    built = np.unique(np.round(graph.nodes * 1e6).astype(np.int64), axis=0)
    assert np.array_equal(built, pts)
    assert graph.bounds() == pytest.approx(np.stack([lo, lo + [10, 8, 8]]), abs=1e-9)
    assert per.n_bonds * 80 < len(expected)  # the outer faces add struts


def test_cell_centres_are_minima_of_tau_prime():
    spec = _spec(CELLS["sheared"])
    prep = prepare(spec)
    cells = locate_cells(prep.phase, 1.0, prep.body.lo, prep.body.hi)
    # unique integer indices, centres where tau' = 0 with zero gradient
    assert len(np.unique(cells.index, axis=0)) == len(cells.index)
    phi, J = prep.phase.evaluate(cells.centre)
    assert np.abs(tau_prime(phi)).max() < 1e-20
    assert np.allclose(phi, cells.index + 0.5, atol=1e-10)
    # every cell whose centre lies in the body was found: compare with the affine count
    F = L * prep.cells[0].basis
    lo, hi = prep.body.lo, prep.body.hi
    corners = np.array([[a, b, c] for a in (lo[0], hi[0]) for b in (lo[1], hi[1]) for c in (lo[2], hi[2])])
    n_lo = np.floor(np.linalg.solve(F, (corners - lo).T).T.min(0)) - 1
    n_hi = np.ceil(np.linalg.solve(F, (corners - lo).T).T.max(0)) + 1
    grid = np.stack(np.meshgrid(*[np.arange(a, b + 1) for a, b in zip(n_lo, n_hi)], indexing="ij"), -1).reshape(-1, 3)
    centres = lo + (grid + 0.5) @ F.T
    inside = np.all((centres >= lo) & (centres <= hi), axis=1)
    found = {tuple(n) for n in cells.index.tolist()}
    assert all(tuple(n) in found for n in grid[inside].astype(int).tolist())


@pytest.mark.parametrize("mu, order", [(2.0, 2), (1.0, 1)])
def test_mu_refines_the_lattice_and_p1_phase_fields_work(mu, order):
    # mu = 2 halves the built cell edge (diameter follows, so rho is kept); P1 phase
    # fields reproduce the affine lattice just as well (the solution is linear)
    spec = parse_spec({
        "body": {"box": {"size": [6.0, 6.0, 6.0]}}, "cell_size": L, "mu": mu, "phase": {"order": order},
        "control_points": [{"position": [3.0, 3.0, 3.0], "cell": CELLS["cubic"]}],
    })
    prep = prepare(spec)
    g = build_graph(spec)
    edge = L / mu
    X = g.nodes / edge
    per = reference_graph(TOPOLOGY).periodic
    dist, _ = cKDTree(per.nodes).query(X - np.floor(X + 1e-7) + 0.0)
    assert dist.max() < 1e-9
    assert np.allclose(g.diameters, prep.cells[0].diameter(cell_size=edge), rtol=1e-12)
    assert g.bounds() == pytest.approx(np.array([[0, 0, 0], [6, 6, 6]]), abs=1e-9)
    assert len(np.unique(np.floor(X[np.all(X < 6 / edge - 1e-6, axis=1)] + 1e-7), axis=0)) == round(6 / edge) ** 3
