"""Forward model F = F1 -> Bond(R_I) -> F2 -> Bond(R_II): exactness of the physics layers,
invariances of the topology encoding, differentiability, the FE-exactness of the F2
augmentation, and a training smoke test on real FE labels."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from graded.elastic import from_9, from_21, rotate_voigt, to_21
from graded.elastic import torch as et
from graded.inverse.forward import (
    CUBE_ROTATIONS,
    N_PARTS,
    ForwardConfig,
    ForwardModel,
    onehot_to_topology,
    part_index,
    presence,
    topology_onehot,
)
from graded.inverse.sampling import random_rotations, sample_designs
from graded.inverse.scaling import MinMax, stiffness_scale, stiffness_scale_9
from graded.validation import ValidationError

#: float64 round-off of a few 6x6 products: relative exactness demanded of the Bond layers.
EXACT = 1e-10


def _model(seed: int = 0) -> ForwardModel:
    torch.manual_seed(seed)
    cfg = ForwardConfig(f1_widths=[32, 32], f2_widths=[32, 32],
                        f1_label=MinMax(np.zeros(9), np.full(9, 0.5)),
                        f2_label=MinMax(np.full(21, -0.2), np.ones(21)))
    return ForwardModel(cfg).double().eval()


def _inputs(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    d = sample_designs(n, rng)
    t = lambda a: torch.as_tensor(a, dtype=torch.float64)  # noqa: E731
    return topology_onehot(d.topology, torch.float64), t(d.rho), t(d.U), t(d.V), t(d.R1), t(d.R2), rng


def test_rotating_R2_rotates_output_by_bond_matrix_exactly():
    m = _model()
    z, rho, U, V, R1, R2, rng = _inputs(16)
    Q = torch.as_tensor(random_rotations(16, rng))
    with torch.no_grad():
        C = m(z, rho, U, V, R1, R2)
        C_rot = m(z, rho, U, V, R1, Q @ R2)
    K = et.bond_matrix(Q)
    expected = K @ C @ K.transpose(-1, -2)
    rel = float((C_rot - expected).abs().max() / expected.abs().max())
    assert rel < EXACT


def test_R1_stage_is_the_exact_bond_rotation_of_f1_output():
    m = _model(1)
    z, rho, U, V, R1, R2, _ = _inputs(8, seed=1)
    with torch.no_grad():
        st = m.stages(z, rho, U, V, R1, R2)
    expected = rotate_voigt(from_9(st["c_ort"].numpy()), R1.numpy())  # numpy implementation as oracle
    assert np.abs(st["C_tilde"].numpy() - expected).max() / np.abs(expected).max() < EXACT
    C_expected = rotate_voigt(st["C_hat"].numpy(), R2.numpy())
    assert np.abs(st["C"].numpy() - C_expected).max() / np.abs(C_expected).max() < EXACT


def test_output_is_symmetric_and_identity_rotations_give_orthotropic_stage():
    m = _model(2)
    z, rho, U, V, R1, R2, _ = _inputs(4, seed=2)
    with torch.no_grad():
        st = m.stages(z, rho, U, V, torch.eye(3, dtype=torch.float64).expand(4, 3, 3), R2)
    # with R_I = I the rotated stage is exactly the orthotropic matrix of F1
    assert torch.equal(st["C_tilde"], et.from_9(st["c_ort"]))
    C = st["C"]
    assert torch.allclose(C, C.transpose(-1, -2), rtol=0, atol=1e-15 * float(C.abs().max()))


def test_slot_order_and_duplicate_parts_do_not_change_the_prediction():
    m = _model(3)
    topo = np.array([[[1, 2], [2, 5], [1, 7]]], dtype=np.int8)
    perm = topo[:, [2, 0, 1]]
    dup = np.array([[[1, 2], [2, 5], [2, 5]]], dtype=np.int8)
    dup2 = np.array([[[2, 5], [1, 2], [1, 2]]], dtype=np.int8)
    args = [torch.tensor([0.05], dtype=torch.float64), torch.tensor([[1.2, 0.7, 1.9]], dtype=torch.float64),
            torch.tensor([[0.6, 1.5, 1.0]], dtype=torch.float64), torch.eye(3, dtype=torch.float64)[None],
            torch.eye(3, dtype=torch.float64)[None]]
    with torch.no_grad():
        a = m(topology_onehot(topo, torch.float64), *args)
        b = m(topology_onehot(perm, torch.float64), *args)
        c = m(topology_onehot(dup, torch.float64), *args)
        d = m(topology_onehot(dup2, torch.float64), *args)
    assert torch.equal(a, b)
    assert torch.equal(c, d)
    assert presence(topology_onehot(dup, torch.float64)).sum() == 2.0


def test_part_encoding_round_trip_and_validation():
    rng = np.random.default_rng(4)
    d = sample_designs(50, rng)
    z = topology_onehot(d.topology)
    assert z.shape == (50, 3, N_PARTS)
    assert np.array_equal(onehot_to_topology(z), d.topology)  # dataset parts are sorted
    assert part_index(np.array([[1, 1], [2, 7], [1, 7]]))[1] == 13
    with pytest.raises(ValidationError, match="topology"):
        part_index(np.array([[3, 1], [1, 1], [1, 1]]))


def test_gradients_reach_every_design_parameter():
    m = _model(5)
    z, rho, U, V, R1, R2, _ = _inputs(3, seed=5)
    a1 = torch.randn(3, 6, dtype=torch.float64, requires_grad=True)
    a2 = torch.randn(3, 6, dtype=torch.float64, requires_grad=True)
    for t in (z, rho, U, V):
        t.requires_grad_(True)
    C = m(z, rho, U, V, et.rotation_from_6d(a1), et.rotation_from_6d(a2))
    (C * torch.randn(6, 6, dtype=torch.float64)).sum().backward()
    for name, t in (("z", z), ("rho", rho), ("U", U), ("V", V), ("R1", a1), ("R2", a2)):
        assert t.grad is not None and torch.isfinite(t.grad).all(), name
        assert float(t.grad.abs().max()) > 0, name


def test_cube_rotations_are_the_24_proper_signed_permutations():
    P = CUBE_ROTATIONS
    assert P.shape == (24, 3, 3)
    assert np.allclose(P @ np.swapaxes(P, 1, 2), np.eye(3))
    assert np.allclose(np.linalg.det(P), 1.0)
    assert len({tuple(p.ravel()) for p in P}) == 24
    V = np.array([0.6, 1.3, 1.9])
    for p in P:
        perm = np.abs(p).argmax(-1)
        assert np.allclose(p @ np.diag(V) @ p.T, np.diag(V[perm]))


def test_f2_augmentation_is_exact_under_fe():
    """The cell P V R_I U X = diag(V[perm]) (P R_I) U X has stiffness K(P) C_hat K(P)^T."""
    from graded.unitcell import homogenize_designs

    rng = np.random.default_rng(6)
    U, V = np.array([1.3, 0.8, 1.1]), np.array([0.7, 1.6, 1.2])
    R1 = random_rotations(1, rng)[0]
    P = CUBE_ROTATIONS[7]
    perm = np.abs(P).argmax(-1)
    base = np.diag(V) @ R1 @ np.diag(U)
    aug = np.diag(V[perm]) @ (P @ R1) @ np.diag(U)
    C = homogenize_designs("1x1+1x2+2x5", [0.03, 0.03], np.stack([base, aug]))
    expected = rotate_voigt(C[0], P)
    assert np.abs(C[1] - expected).max() / np.abs(expected).max() < 1e-9


def test_scales_are_rotation_invariant_and_minmax_round_trips():
    rng = np.random.default_rng(7)
    A = rng.standard_normal((6, 6))
    C = A @ A.T + 6 * np.eye(6)
    R = random_rotations(1, rng)[0]
    assert np.isclose(stiffness_scale(to_21(C)), stiffness_scale(to_21(rotate_voigt(C, R))), rtol=1e-12)
    C9 = to_21(C)[[0, 1, 2, 6, 7, 11, 15, 18, 20]]
    assert np.isclose(stiffness_scale_9(C9), stiffness_scale(to_21(from_9(C9))))
    y = rng.uniform(-3, 5, size=(100, 4))
    s = MinMax.fit(y)
    assert np.allclose(s.scale(y).min(0), -1) and np.allclose(s.scale(y).max(0), 1)
    assert np.allclose(s.unscale(s.scale(y)), y, rtol=0, atol=1e-12)
    assert np.allclose(MinMax.from_dict(s.to_dict()).lo, s.lo)


def test_training_on_fe_labels_is_seeded_and_reduces_the_loss():
    from graded.inverse.dataset import LatticeDataset, label_designs
    from graded.inverse.train import train_forward

    d = sample_designs(48, np.random.default_rng(8))
    ds = LatticeDataset(d.topology, d.rho, d.U, d.V, d.R1, d.R2, **label_designs(d))
    kw = dict(f1_widths=(16,), f2_widths=(16,), epochs=(6, 6), batch_size=16, val_fraction=0.25, seed=3)
    m1, h1 = train_forward(ds, **kw)
    m2, _ = train_forward(ds, **kw)
    for (k, a), b in zip(m1.state_dict().items(), m2.state_dict().values()):
        assert torch.equal(a, b), k
    for part in ("f1", "f2"):
        assert h1[part].train_loss[-1] < h1[part].train_loss[0]
    C = m1.predict(ds.topology, ds.rho, ds.U, ds.V, ds.R1, ds.R2)
    assert C.shape == (48, 6, 6) and np.all(np.isfinite(C))
    assert np.allclose(from_21(to_21(C)), C)
