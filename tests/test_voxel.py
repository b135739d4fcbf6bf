"""Voxel homogenization (graded.fem.voxel) against closed forms, bounds and an independent FE."""

from __future__ import annotations

import numpy as np
import pytest

from graded.fem.voxel import hex8_stiffness, homogenize_voxels, isotropic_stiffness

#: Laminates are represented exactly by hex8 on layer-aligned voxels: only CG round-off is left.
LAMINATE_TOL = 1e-10
#: Tight solver tolerance for the exact checks (stiffness error is quadratic in it).
TIGHT = 1e-11
#: Relative agreement of two discretisations of the same problem solved to TIGHT.
SAME_PROBLEM = 1e-9

VOIGT = [(0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1)]


def voigt_index(i: int, j: int) -> int:
    return VOIGT.index((min(i, j), max(i, j)))


def laminate(Cs: list[np.ndarray], fractions: list[float], normal: int) -> np.ndarray:
    """Closed-form stiffness of a laminate of phases Cs (Voigt) stacked along axis `normal`.

    The strains in the plane of the layers and the tractions on them are continuous:
    C_nn = <C_nn^-1>^-1, C_tn = <C_tn C_nn^-1> C_nn, C_tt = <C_tt - C_tn C_nn^-1 C_nt> + C_tn C_nn^-1 C_nt.
    """
    others = [a for a in range(3) if a != normal]
    n = [voigt_index(normal, normal), voigt_index(others[0], normal), voigt_index(others[1], normal)]
    t = [voigt_index(others[0], others[0]), voigt_index(others[1], others[1]), voigt_index(*others)]
    inv_nn = sum(f * np.linalg.inv(C[np.ix_(n, n)]) for C, f in zip(Cs, fractions))
    Cnn = np.linalg.inv(inv_nn)
    Ctn_inv = sum(f * C[np.ix_(t, n)] @ np.linalg.inv(C[np.ix_(n, n)]) for C, f in zip(Cs, fractions))
    Ctn = Ctn_inv @ Cnn
    Ctt = sum(
        f * (C[np.ix_(t, t)] - C[np.ix_(t, n)] @ np.linalg.inv(C[np.ix_(n, n)]) @ C[np.ix_(n, t)])
        for C, f in zip(Cs, fractions)
    ) + Ctn_inv @ Cnn @ Ctn_inv.T
    out = np.zeros((6, 6))
    out[np.ix_(n, n)] = Cnn
    out[np.ix_(t, n)] = Ctn
    out[np.ix_(n, t)] = Ctn.T
    out[np.ix_(t, t)] = Ctt
    return out


def permuted(C: np.ndarray, p) -> np.ndarray:
    """Voigt stiffness in coordinates x'_k = x_{p[k]} (np.transpose(cell, p))."""
    idx = [voigt_index(p[i], p[j]) for i, j in VOIGT]
    return C[np.ix_(idx, idx)]


def rel(a, b) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


def test_element_matrix_is_symmetric_with_six_rigid_modes():
    K0, Bc = hex8_stiffness(0.3)
    assert np.abs(K0 - K0.T).max() < 1e-15
    eig = np.linalg.eigvalsh(K0)
    assert np.sum(np.abs(eig) < 1e-12) == 6 and eig.min() > -1e-12
    # a linear field has the same strain at the centre as everywhere (mean strain matrix)
    x = np.array([[a & 1, (a >> 1) & 1, (a >> 2) & 1] for a in range(8)], float)
    G = np.random.default_rng(0).standard_normal((3, 3))
    eps = Bc @ (x @ G.T).reshape(-1)
    S = 0.5 * (G + G.T)
    assert np.allclose(eps, [S[0, 0], S[1, 1], S[2, 2], 2 * S[1, 2], 2 * S[0, 2], 2 * S[0, 1]], atol=1e-14)


@pytest.mark.parametrize("bc", ["periodic", "affine"])
def test_full_cell_gives_the_solid(bc):
    r = homogenize_voxels(np.ones((4, 5, 3), bool), bc=bc, nu=0.25)
    assert np.abs(r.C[0] - isotropic_stiffness(1.0, 0.25)).max() < 1e-14
    assert r.converged.all()


@pytest.mark.parametrize("normal", [0, 1, 2])
def test_laminate_matches_closed_form(normal):
    shape = [2, 2, 2]
    shape[normal] = 7
    E = np.ones(shape)
    sl = [slice(None)] * 3
    sl[normal] = slice(1, 4)  # 3 of 7 layers are the soft phase
    E[tuple(sl)] = 0.05
    r = homogenize_voxels(E, rtol=TIGHT)
    C_ref = laminate([isotropic_stiffness(1.0), isotropic_stiffness(0.05)], [4 / 7, 3 / 7], normal)
    assert np.abs(r.C[0] - C_ref).max() < LAMINATE_TOL


def test_laminate_with_void_layers_keeps_in_plane_stiffness():
    # solid plates parallel to x1-x2, separated by void: plane-stress plates in-plane, nothing normal
    E = np.zeros((2, 2, 5))
    E[:, :, :2] = 1.0
    r = homogenize_voxels(E, rtol=TIGHT)
    nu = 0.3
    plate = 1.0 / (1 - nu**2)
    expect = np.zeros((6, 6))
    expect[:2, :2] = 0.4 * plate * np.array([[1, nu], [nu, 1]])
    expect[5, 5] = 0.4 / (2 * (1 + nu))
    assert np.abs(r.C[0] - expect).max() < LAMINATE_TOL


def random_cell(shape, rho, seed, soft=None):
    rng = np.random.default_rng(seed)
    solid = rng.random(shape) < rho
    if soft is None:
        return solid
    return np.where(solid, 1.0, soft)


def test_symmetric_positive_and_permutation_covariant():
    cell = random_cell((6, 7, 8), 0.7, 1)
    C = homogenize_voxels(cell, rtol=TIGHT).C[0]
    assert np.abs(C - C.T).max() < 1e-10 * np.abs(C).max()
    assert np.linalg.eigvalsh(C).min() > 0
    for p in [(1, 0, 2), (2, 0, 1), (0, 2, 1)]:
        Cp = homogenize_voxels(np.transpose(cell, p), rtol=TIGHT).C[0]
        assert rel(Cp, permuted(C, p)) < SAME_PROBLEM


def blocky_cell(rho, seed, soft=None, block=3):
    """Random 4^3 phase pattern, each phase voxel resolved by block^3 FE voxels.

    Single-voxel checkerboards are where hex8 is least accurate (over-stiff by several per cent,
    enough to cross the Hashin-Shtrikman bound); resolved features stay inside it.
    """
    solid = np.kron(np.random.default_rng(seed).random((4, 4, 4)) < rho, np.ones((block,) * 3, bool))
    return solid if soft is None else np.where(solid, 1.0, soft)


def test_voigt_reuss_and_hashin_shtrikman_bounds():
    soft = 0.1
    cell = blocky_cell(0.5, 2, soft=soft)
    f = float((cell == 1.0).mean())
    C = homogenize_voxels(cell).C[0]
    C1, C2 = isotropic_stiffness(1.0), isotropic_stiffness(soft)
    voigt = f * C1 + (1 - f) * C2
    reuss = np.linalg.inv(f * np.linalg.inv(C1) + (1 - f) * np.linalg.inv(C2))
    assert np.linalg.eigvalsh(voigt - C).min() > -1e-10
    assert np.linalg.eigvalsh(C - reuss).min() > -1e-10
    # Hashin-Shtrikman bulk bounds hold for any microstructure on the hydrostatic energy
    k1, k2 = 1.0 / (3 * (1 - 2 * 0.3)), soft / (3 * (1 - 2 * 0.3))
    g1, g2 = 1.0 / (2 * 1.3), soft / (2 * 1.3)
    k_hi = k1 + (1 - f) / (1 / (k2 - k1) + 3 * f / (3 * k1 + 4 * g1))
    k_lo = k2 + f / (1 / (k1 - k2) + 3 * (1 - f) / (3 * k2 + 4 * g2))
    k_eff = C[:3, :3].sum() / 9
    assert k_lo < k_eff < k_hi


def test_porous_cell_below_hashin_shtrikman_upper_bulk_bound():
    cell = blocky_cell(0.7, 3)
    f = float(cell.mean())
    C = homogenize_voxels(cell).C[0]
    k1, g1 = 1.0 / (3 * (1 - 2 * 0.3)), 1.0 / (2 * 1.3)
    k_hi = 4 * f * k1 * g1 / (3 * (1 - f) * k1 + 4 * g1)
    assert 0 < C[:3, :3].sum() / 9 < k_hi


def test_affine_stiffer_than_periodic():
    cell = random_cell((8, 8, 8), 0.7, 4)
    per = homogenize_voxels(cell, rtol=TIGHT).C[0]
    aff = homogenize_voxels(cell, bc="affine", rtol=TIGHT).C[0]
    assert np.linalg.eigvalsh(aff - per).min() > -1e-10
    assert np.trace(aff - per) > 1e-3 * np.trace(per)


def test_soft_void_converges_to_removed_void():
    cell = random_cell((8, 8, 8), 0.7, 5)
    removed = homogenize_voxels(cell, rtol=TIGHT)
    soft = homogenize_voxels(cell, contrast=1e-6, rtol=TIGHT)
    assert rel(soft.C[0], removed.C[0]) < 1e-4
    assert np.all(soft.C[0].diagonal() >= removed.C[0].diagonal())


def test_batch_equals_single_cells():
    cells = np.stack([random_cell((6, 6, 6), 0.75, s) for s in range(3)])
    batch = homogenize_voxels(cells, batch=3, rtol=TIGHT)
    for k in range(3):
        single = homogenize_voxels(cells[k], rtol=TIGHT)
        assert rel(batch.C[k], single.C[0]) < SAME_PROBLEM
    assert batch.density == pytest.approx(cells.reshape(3, -1).mean(axis=1))


def _skfem_stiffness(E: np.ndarray, nu: float, bc: str) -> np.ndarray:
    """Independent reference: scikit-fem hex mesh, assembled sparse matrix, direct solve."""
    import scipy.sparse as sp
    from scipy.sparse.linalg import spsolve
    from skfem import Basis, BilinearForm, ElementHex1, ElementVector, MeshHex, asm
    from skfem.helpers import ddot, sym_grad, trace

    n1, n2, n3 = E.shape
    mesh = MeshHex.init_tensor(np.arange(n1 + 1.0), np.arange(n2 + 1.0), np.arange(n3 + 1.0))
    basis = Basis(mesh, ElementVector(ElementHex1()))
    mid = np.floor(mesh.p[:, mesh.t].mean(axis=1)).astype(int)
    e_field = np.repeat(E[mid[0], mid[1], mid[2]][:, None], basis.X.shape[-1], axis=1)  # (elements, points)
    lam, mu = nu / ((1 + nu) * (1 - 2 * nu)), 1 / (2 * (1 + nu))

    @BilinearForm
    def form(u, v, w):
        eu, ev = sym_grad(u), sym_grad(v)
        return w["E"] * (lam * trace(eu) * trace(ev) + 2 * mu * ddot(eu, ev))

    K = asm(form, basis, E=e_field)
    X = mesh.p.T
    Ua = np.zeros((basis.N, 6))
    for c, (i, j) in enumerate(VOIGT):
        G = np.zeros((3, 3))
        G[i, j] = G[j, i] = 1.0 if i == j else 0.5
        for comp in range(3):
            Ua[basis.nodal_dofs[comp], c] = X @ G[comp]
    idx = np.rint(X).astype(int)
    if bc == "periodic":
        node = np.ravel_multi_index((idx[:, 0] % n1, idx[:, 1] % n2, idx[:, 2] % n3), (n1, n2, n3))
        rows = basis.nodal_dofs.T.reshape(-1)
        cols = (3 * node[:, None] + np.arange(3)).reshape(-1)
        P = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(basis.N, 3 * n1 * n2 * n3))
        free = np.arange(3, P.shape[1])  # pin the translation of node 0
        P = P[:, free]
    else:
        interior = np.all((idx > 0) & (idx < [n1, n2, n3]), axis=1)
        dofs = basis.nodal_dofs[:, interior].reshape(-1)
        P = sp.csr_matrix((np.ones(len(dofs)), (dofs, np.arange(len(dofs)))), shape=(basis.N, len(dofs)))
    Kf = (P.T @ K @ P).tocsc()
    W = spsolve(Kf, -(P.T @ K @ Ua))
    U = Ua + P @ W.reshape(-1, 6)
    return U.T @ (K @ U) / E.size


@pytest.mark.parametrize("bc", ["periodic", "affine"])
def test_matches_scikit_fem_hex_mesh(bc):
    E = random_cell((4, 5, 3), 0.6, 6, soft=0.2)
    ours = homogenize_voxels(E, bc=bc, rtol=TIGHT).C[0]
    ref = _skfem_stiffness(E, 0.3, bc)
    assert rel(ours, ref) < SAME_PROBLEM


def test_converges_with_resolution():
    # a cylindrical hole (radius 0.3 of the cell) through the solid, extruded: n x n x 1 grids
    C = {}
    for n in (16, 32, 64, 128):
        x = (np.arange(n) + 0.5) / n - 0.5
        solid = (x[:, None] ** 2 + x[None, :] ** 2 > 0.3**2)[:, :, None]
        r = homogenize_voxels(solid)
        assert r.converged.all()
        C[n] = r.C[0]
    err = {n: rel(C[n], C[128]) for n in (16, 32, 64)}
    # measured: 5.0e-2, 7.3e-3, 3.6e-3 (staircase error of the voxelised circle)
    assert err[16] > err[32] > err[64]
    assert err[64] < 0.01
    # the transversely isotropic symmetry of the geometry survives voxelisation
    assert C[128][0, 0] == pytest.approx(C[128][1, 1], rel=1e-8)


def test_bad_input_is_refused_with_the_field_named():
    with pytest.raises(ValueError, match="^bc:"):
        homogenize_voxels(np.ones((2, 2, 2)), bc="kinematic")
    with pytest.raises(ValueError, match="^cells:"):
        homogenize_voxels(np.ones((2, 2)))
    with pytest.raises(ValueError, match="^cells:"):
        homogenize_voxels(-np.ones((2, 2, 2)))
    with pytest.raises(ValueError, match="^contrast:"):
        homogenize_voxels(np.ones((2, 2, 2)), contrast=2.0)
