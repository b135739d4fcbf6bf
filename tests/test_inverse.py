"""Inverse model G = (G1, G2): canonical frame, exact rotation equivariance, Gumbel-softmax
straight-through sampling, output ranges, and seeded training through a frozen F."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from graded.elastic import from_21, rotate_voigt
from graded.elastic import torch as et
from graded.inverse.forward import ForwardConfig, ForwardModel, N_PARTS
from graded.inverse.inverse_model import InverseConfig, InverseModel, canonical_frame, gumbel_softmax_st
from graded.inverse.sampling import random_rotations
from graded.inverse.scaling import MinMax
from graded.validation import ValidationError

#: float64 round-off of the eigen-decomposition and a few 6x6 products.
EXACT = 1e-9


def _stiffness(n: int, seed: int) -> np.ndarray:
    """Random anisotropic positive-definite stiffnesses of lattice magnitude."""
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n, 6, 6))
    return 0.01 * (A @ np.swapaxes(A, 1, 2) + 2 * np.eye(6))


def _inverse(seed: int = 0) -> InverseModel:
    torch.manual_seed(seed)
    cfg = InverseConfig(g1_widths=[32], g2_widths=[32], features=MinMax(np.full(22, -1.0), np.ones(22)))
    return InverseModel(cfg).double().eval()


def test_canonical_frame_is_exactly_rotation_invariant():
    C = _stiffness(10, 0)
    Q = random_rotations(10, np.random.default_rng(1))
    C_rot = rotate_voigt(C, Q)
    Q0, Cc0 = canonical_frame(torch.as_tensor(C))
    Q1, Cc1 = canonical_frame(torch.as_tensor(C_rot))
    scale = float(np.abs(C).max())
    assert float((Cc0 - Cc1).abs().max()) / scale < EXACT
    # C = K(Q) C_can K(Q)^T and the frame of the rotated target is Q_rot @ Q
    assert np.abs(rotate_voigt(Cc0.numpy(), Q0.numpy()) - C).max() / scale < EXACT
    assert np.abs(Q1.numpy() - Q @ Q0.numpy()).max() < EXACT
    assert np.allclose(np.linalg.det(Q0.numpy()), 1.0)
    # the dilatational tensor is diagonal (descending) in the canonical frame
    d = Cc0[..., :, :3].sum(-1).numpy()
    assert np.abs(d[:, 3:]).max() / scale < EXACT
    assert np.all(d[:, 0] >= d[:, 1]) and np.all(d[:, 1] >= d[:, 2])


def test_designs_rotate_exactly_with_the_target():
    m = _inverse()
    C = torch.as_tensor(_stiffness(6, 2))
    Q = torch.as_tensor(random_rotations(6, np.random.default_rng(3)))
    with torch.no_grad():
        a = m(C, sample=False)
        b = m(et.rotate_voigt(C, Q), sample=False)
    for k in ("z", "rho", "U", "V", "R1", "R2_can"):
        assert float((getattr(a, k) - getattr(b, k)).abs().max()) < 1e-8, k
    assert float((b.R2 - Q @ a.R2).abs().max()) < 1e-8


def test_predicted_stiffness_of_a_rotated_target_is_the_rotated_prediction():
    torch.manual_seed(4)
    f = ForwardModel(ForwardConfig(f1_widths=[16], f2_widths=[16])).double().eval()
    m = _inverse(4)
    C = torch.as_tensor(_stiffness(4, 5))
    Q = torch.as_tensor(random_rotations(4, np.random.default_rng(6)))
    with torch.no_grad():
        a, b = m(C, sample=False), m(et.rotate_voigt(C, Q), sample=False)
        Ca = f(a.z, a.rho, a.U, a.V, a.R1, a.R2)
        Cb = f(b.z, b.rho, b.U, b.V, b.R1, b.R2)
    expected = et.rotate_voigt(Ca, Q)
    assert float((Cb - expected).abs().max() / expected.abs().max()) < 1e-8


def test_gumbel_softmax_is_one_hot_straight_through_and_follows_the_tempered_posterior():
    logits = torch.tensor([[2.0, 0.0, -1.0, 0.5]], requires_grad=True)
    gen = torch.Generator().manual_seed(0)
    z = gumbel_softmax_st(logits.expand(20000, 4), 1.0, generator=gen)
    assert torch.all((z == 0) | (z == 1)) and torch.all(z.sum(-1) == 1)
    freq = z.detach().mean(0)
    p = torch.softmax(logits.detach()[0], -1)
    # 20000 draws: binomial standard error <= 0.0036
    assert float((freq - p).abs().max()) < 0.015
    (z * torch.arange(4.0)).sum().backward()
    assert logits.grad is not None and float(logits.grad.abs().sum()) > 0
    # tau flattens the posterior: argmax frequencies approach uniform
    zt = gumbel_softmax_st(logits.detach().expand(20000, 4), 100.0, generator=gen)
    assert float((zt.mean(0) - 0.25).abs().max()) < 0.02
    # no noise: the mode
    z0 = gumbel_softmax_st(logits.detach(), 1.0, sample=False)
    assert int(z0.argmax()) == 0
    with pytest.raises(ValidationError, match="tau"):
        gumbel_softmax_st(logits, 0.0)


def test_same_generator_seed_gives_identical_draws():
    m = _inverse(7)
    C = torch.as_tensor(_stiffness(5, 8))
    with torch.no_grad():
        a = m(C, 3.0, generator=torch.Generator().manual_seed(11))
        b = m(C, 3.0, generator=torch.Generator().manual_seed(11))
        c = m(C, 3.0, generator=torch.Generator().manual_seed(12))
    assert torch.equal(a.z, b.z) and torch.equal(a.rho, b.rho) and torch.equal(a.R2, b.R2)
    assert not (torch.equal(a.z, c.z) and torch.equal(a.rho, c.rho))


def test_geometry_stays_in_table_s1_and_rotations_are_proper():
    m = _inverse(9)
    with torch.no_grad():
        for layer in m.g2:
            if isinstance(layer, torch.nn.Linear):
                layer.weight.mul_(1e3)  # drive the sigmoids into saturation
        s = m(torch.as_tensor(_stiffness(50, 10)))
    assert s.z.shape == (50, 3, N_PARTS)
    assert float(s.rho.min()) >= 0.002 and float(s.rho.max()) <= 0.1
    for v in (s.U, s.V):
        assert float(v.min()) >= 0.5 and float(v.max()) <= 2.0
    for R in (s.R1, s.R2):
        assert torch.allclose(R @ R.transpose(-1, -2), torch.eye(3, dtype=R.dtype).expand_as(R), atol=1e-10)
        assert torch.allclose(torch.linalg.det(R), torch.ones(50, dtype=R.dtype), atol=1e-10)


def test_inverse_training_is_seeded_and_lowers_the_reconstruction_loss():
    from graded.inverse.dataset import LatticeDataset, label_designs
    from graded.inverse.sampling import sample_designs
    from graded.inverse.train import train_forward, train_inverse

    d = sample_designs(40, np.random.default_rng(12))
    ds = LatticeDataset(d.topology, d.rho, d.U, d.V, d.R1, d.R2, **label_designs(d))
    f, _ = train_forward(ds, f1_widths=(16,), f2_widths=(16,), epochs=(3, 3), batch_size=16, seed=0)
    kw = dict(g1_widths=(16,), g2_widths=(16,), epochs=8, batch_size=8, val_fraction=0.2, seed=5, lr=3e-3)
    g1, h1 = train_inverse(ds, f, **kw)
    g2, _ = train_inverse(ds, f, **kw)
    for (k, a), b in zip(g1.state_dict().items(), g2.state_dict().values()):
        assert torch.equal(a, b), k
    assert min(h1.train_loss[1:]) < h1.train_loss[0]
    # the forward model stays frozen and trainable flags are restored
    assert all(p.requires_grad for p in f.parameters())
    lo, hi = g1.config.reach
    assert 0 < lo < hi


@pytest.mark.parametrize("joint", [False, True])
def test_posterior_weight_teaches_g1_the_dataset_topologies(joint):
    """With the data-posterior term, G1 puts far more probability on each training target's
    own topology than the reconstruction loss alone does (same seed, same budget)."""
    from graded.inverse.dataset import LatticeDataset, label_designs
    from graded.inverse.forward import part_index
    from graded.inverse.sampling import sample_designs
    from graded.inverse.train import train_forward, train_inverse

    d = sample_designs(40, np.random.default_rng(13))
    ds = LatticeDataset(d.topology, d.rho, d.U, d.V, d.R1, d.R2, **label_designs(d))
    f, _ = train_forward(ds, f1_widths=(16,), f2_widths=(16,), epochs=(2, 2), batch_size=16, seed=0)
    kw = dict(g1_widths=(32,), g2_widths=(16,), epochs=25, batch_size=8, val_fraction=0.1, seed=5, lr=1e-2,
              warmup_epochs=0, patience=100, joint_topology=joint)
    parts = torch.as_tensor(part_index(ds.topology))

    def log_p_true(model):
        with torch.no_grad():
            x, *_ = model.scaled_features(torch.as_tensor(from_21(ds.C)))
            return -float(model.topology_nll(model.posterior_logits(x), model.topology_labels(parts)))

    plain, _ = train_inverse(ds, f, **kw)
    post, _ = train_inverse(ds, f, posterior_weight=1.0, **kw)
    # uniform guessing gives 3 log(1/14) = -7.9; memorising the 36 training topologies gives 0
    assert log_p_true(post) > -3.0
    assert log_p_true(post) > log_p_true(plain) + 5.0


def test_joint_topology_classes_are_the_sorted_part_triples():
    from graded.inverse.inverse_model import TOPOLOGY_TRIPLES, topology_class

    assert TOPOLOGY_TRIPLES.shape == (560, 3)  # multisets of 3 from 14: C(16, 3)
    assert np.all(np.diff(TOPOLOGY_TRIPLES, axis=1) >= 0)
    assert np.array_equal(topology_class(TOPOLOGY_TRIPLES), np.arange(560))
    # slot order does not matter
    assert np.array_equal(topology_class(TOPOLOGY_TRIPLES[:, ::-1]), np.arange(560))


def test_joint_topology_draws_are_one_hot_blocks_of_sorted_triples():
    from graded.inverse.forward import onehot_to_topology, part_index
    from graded.inverse.inverse_model import TOPOLOGY_TRIPLES

    torch.manual_seed(3)
    cfg = InverseConfig(g1_widths=[16], g2_widths=[16], features=MinMax(np.full(22, -1.0), np.ones(22)),
                        joint_topology=True)
    m = InverseModel(cfg).double().eval()
    C = torch.as_tensor(_stiffness(64, 4))
    s = m(C, 5.0, generator=torch.Generator().manual_seed(0))
    assert s.logits.shape == (64, 560) and s.z.shape == (64, 3, N_PARTS)
    assert torch.equal(s.z.sum(-1), torch.ones(64, 3, dtype=s.z.dtype))
    k = part_index(onehot_to_topology(s.z))
    assert np.array_equal(np.sort(s.z.argmax(-1).numpy(), -1), k)
    assert len({tuple(r) for r in k}) > 20  # tau = 5 explores many of the 560 classes
    assert {tuple(r) for r in k} <= {tuple(r) for r in TOPOLOGY_TRIPLES}
    # the straight-through gradient reaches G1 through the joint draw
    out = m(C, 1.0, generator=torch.Generator().manual_seed(1))
    (out.z * torch.arange(N_PARTS, dtype=out.z.dtype)).sum().backward()
    assert float(m.g1[0].weight.grad.abs().sum()) > 0
