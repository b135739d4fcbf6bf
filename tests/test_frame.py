"""Non-periodic Timoshenko frame FE against closed forms and invariances (graded.fem.frame)."""

import numpy as np
import pytest

from graded.fem.frame import (
    assemble_frame,
    rigid_body_modes,
    solve_frame,
    strut_end_forces,
    strut_stresses,
)
from graded.fem.homogenize import beam_stiffness, shear_correction

#: The element is exact for end-loaded prismatic beams: only round-off remains.
EXACT = 1e-9
#: CG stops at a relative residual of 1e-8; displacements then agree to ~1e-6.
ITERATIVE = 1e-5

E, NU = 1000.0, 0.3


def cantilever(n=6, L=10.0, d=0.8, axis=(1.0, 2.0, -0.5)):
    e = np.asarray(axis) / np.linalg.norm(axis)
    nodes = np.linspace(0.0, L, n + 1)[:, None] * e
    struts = np.stack([np.arange(n), np.arange(1, n + 1)], 1)
    return nodes, struts, np.full(n, d), e


def section(d):
    r = d / 2
    A = np.pi * r**2
    inertia = np.pi * r**4 / 4
    return A, inertia, 2 * inertia, E / (2 * (1 + NU))


@pytest.mark.parametrize("solver", ["direct", "amg"])
def test_cantilever_tip_load_matches_timoshenko_closed_form(solver):
    nodes, struts, dia, e = cantilever()
    L, P = 10.0, 2.5
    p = np.cross(e, [0.0, 0.0, 1.0])
    p /= np.linalg.norm(p)
    f = np.zeros((len(nodes), 6))
    f[-1, :3] = P * p
    res = solve_frame(nodes, struts, dia, E=E, nu=NU, prescribed=np.arange(6), forces=f, solver=solver)
    A, inertia, _, G = section(dia[0])
    k = shear_correction(NU)
    # bending plus shear deflection, and the end-section rotation (PL^2 / 2EI)
    delta = P * L**3 / (3 * E * inertia) + P * L / (k * G * A)
    tol = EXACT if solver == "direct" else ITERATIVE
    np.testing.assert_allclose(res.displacement[-1, :3] @ p, delta, rtol=tol)
    np.testing.assert_allclose(np.linalg.norm(res.displacement[-1, 3:]), P * L**2 / (2 * E * inertia), rtol=tol)
    # deflection along the beam: v(x) = P x^2 (3L - x) / 6EI + P x / kGA
    x = np.linspace(0, L, len(nodes))
    v = P * x**2 * (3 * L - x) / (6 * E * inertia) + P * x / (k * G * A)
    np.testing.assert_allclose(res.displacement[:, :3] @ p, v, rtol=tol, atol=tol * delta)
    # the root reaction carries the load, the root moment is P L
    np.testing.assert_allclose(res.reaction[0, :3], -P * p, rtol=tol, atol=tol * P)
    np.testing.assert_allclose(np.linalg.norm(res.reaction[0, 3:]), P * L, rtol=tol)
    st = strut_stresses(nodes, struts, dia, strut_end_forces(nodes, struts, dia, res.displacement, E, NU))
    np.testing.assert_allclose(st["bending_moment"], P * (L - x[:-1]), rtol=ITERATIVE)
    np.testing.assert_allclose(st["bending_stress"][0], P * L * (dia[0] / 2) / inertia, rtol=ITERATIVE)
    assert np.abs(st["axial_force"]).max() < ITERATIVE * P


def test_cantilever_axial_and_torsion_closed_forms():
    nodes, struts, dia, e = cantilever()
    L, P, T = 10.0, 3.0, 0.7
    f = np.zeros((len(nodes), 6))
    f[-1, :3] = P * e
    f[-1, 3:] = T * e
    res = solve_frame(nodes, struts, dia, E=E, nu=NU, prescribed=np.arange(6), forces=f, solver="direct")
    A, _, J, G = section(dia[0])
    np.testing.assert_allclose(res.displacement[-1, :3] @ e, P * L / (E * A), rtol=EXACT)
    np.testing.assert_allclose(res.displacement[-1, 3:] @ e, T * L / (G * J), rtol=EXACT)
    st = strut_stresses(nodes, struts, dia, strut_end_forces(nodes, struts, dia, res.displacement, E, NU))
    np.testing.assert_allclose(st["axial_force"], P, rtol=EXACT)
    np.testing.assert_allclose(st["torque"], T, rtol=EXACT)
    r = dia[0] / 2
    np.testing.assert_allclose(st["von_mises"], np.sqrt((P / A) ** 2 + 3 * (T * r / J) ** 2), rtol=1e-8)


def random_frame(seed=0, n=40):
    """A connected random frame: a chain through all nodes plus random chords."""
    rng = np.random.default_rng(seed)
    nodes = rng.random((n, 3)) * 10
    chain = np.stack([np.arange(n - 1), np.arange(1, n)], 1)
    chords = rng.integers(0, n, (3 * n, 2))
    chords = chords[chords[:, 0] != chords[:, 1]]
    struts = np.concatenate([chain, chords])
    return nodes, struts, rng.uniform(0.2, 0.6, len(struts)), rng


def test_assembly_equals_element_by_element_sum():
    nodes, struts, dia, _ = random_frame(n=12)
    K = assemble_frame(nodes, struts, dia, E, NU).toarray()
    ref = np.zeros_like(K)
    for (i, j), d in zip(struts, dia):
        dofs = np.r_[6 * i + np.arange(6), 6 * j + np.arange(6)]
        ref[np.ix_(dofs, dofs)] += beam_stiffness(nodes[j] - nodes[i], d / 2, E, NU)
    np.testing.assert_allclose(K, ref, rtol=0, atol=1e-12 * np.abs(ref).max())
    # the six rigid-body modes are its null space
    R = rigid_body_modes(nodes)
    assert np.abs(K @ R).max() < 1e-10 * np.abs(K).max() * 10


@pytest.mark.parametrize("solver", ["direct", "amg"])
def test_rigid_body_motion_gives_zero_stress(solver):
    nodes, struts, dia, rng = random_frame(seed=1)
    t, w = rng.normal(size=3), 1e-3 * rng.normal(size=3)
    rigid = np.concatenate([t + np.cross(w, nodes), np.broadcast_to(w, nodes.shape)], axis=1)  # (N, 6)
    held = np.arange(0, len(nodes), 7)  # a few nodes carry the motion, translations only
    pres = (6 * held[:, None] + np.arange(3)).reshape(-1)
    res = solve_frame(nodes, struts, dia, E=E, nu=NU, prescribed=pres, values=rigid[held, :3].reshape(-1),
                      solver=solver)
    tol = EXACT if solver == "direct" else ITERATIVE
    np.testing.assert_allclose(res.displacement, rigid, atol=tol * np.abs(rigid).max())
    st = strut_stresses(nodes, struts, dia, strut_end_forces(nodes, struts, dia, res.displacement, E, NU))
    # a unit-order strain would give stresses ~E * |t| / L ~ 100; rigid motion gives round-off
    assert st["von_mises"].max() < tol * E * np.abs(rigid).max()
    assert np.abs(res.reaction).max() < tol * E * np.abs(rigid).max()


def test_reactions_balance_applied_forces_and_moments():
    nodes, struts, dia, rng = random_frame(seed=2)
    f = rng.normal(size=(len(nodes), 6))
    pres = np.r_[np.arange(6), 6 * 5 + np.arange(3)]
    for solver in ("direct", "amg"):
        res = solve_frame(nodes, struts, dia, E=E, nu=NU, prescribed=pres, forces=f, solver=solver)
        tot = f + res.reaction  # forces at held dofs go straight into the supports
        force = tot[:, :3].sum(axis=0)
        moment = (np.cross(nodes, tot[:, :3]) + tot[:, 3:]).sum(axis=0)
        scale = np.abs(f).sum()
        tol = EXACT if solver == "direct" else ITERATIVE
        assert np.abs(force).max() < tol * scale
        assert np.abs(moment).max() < tol * scale * 10


def test_direct_and_amg_agree_on_a_lattice_block():
    from graded.build import build

    g = build({"body": {"box": {"size": [8.0, 8.0, 8.0]}}, "cell_size": 2.0,
               "control_points": [{"position": [1, 1, 1], "cell": {"topology": "1x2", "rho": 0.05}}]}).graph
    z = g.nodes[:, 2]
    bot, top = np.flatnonzero(z < 1e-6), np.flatnonzero(z > 8 - 1e-6)
    pres = np.r_[(6 * bot[:, None] + np.arange(3)).reshape(-1), 6 * top + 2]
    vals = np.r_[np.zeros(3 * len(bot)), np.full(len(top), -0.01)]
    a = solve_frame(g.nodes, g.struts, g.diameters, E=E, nu=NU, prescribed=pres, values=vals, solver="direct")
    b = solve_frame(g.nodes, g.struts, g.diameters, E=E, nu=NU, prescribed=pres, values=vals, solver="amg")
    assert b.iterations > 0 and b.residual < 1e-7
    np.testing.assert_allclose(b.displacement, a.displacement, atol=ITERATIVE * 0.01)
    np.testing.assert_allclose(b.reaction[top, 2].sum(), a.reaction[top, 2].sum(), rtol=ITERATIVE)
    # one assembly serves several load cases: the same solve
    K = assemble_frame(g.nodes, g.struts, g.diameters, E, NU)
    c = solve_frame(g.nodes, g.struts, g.diameters, E=E, nu=NU, prescribed=pres, values=vals, solver="direct",
                    stiffness=K)
    np.testing.assert_allclose(c.displacement, a.displacement, rtol=0, atol=EXACT * np.abs(a.displacement).max())
    with pytest.raises(ValueError, match="stiffness: has shape"):
        solve_frame(g.nodes, g.struts, g.diameters, prescribed=pres, values=vals, stiffness=K.tocsr()[:6, :6])


def test_under_constrained_frame_is_refused():
    nodes, struts, dia, _ = random_frame(seed=3)
    # two nodes held in translation leave the rotation about the line through them free
    pres = np.r_[np.arange(3), 6 * 4 + np.arange(3)]
    with pytest.raises(ValueError, match="1 rigid-body mode"):
        solve_frame(nodes, struts, dia, E=E, nu=NU, prescribed=pres)
    with pytest.raises(ValueError, match="solver"):
        solve_frame(nodes, struts, dia, prescribed=np.arange(6), solver="cholesky")
