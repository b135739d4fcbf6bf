"""Inverse model G = (G1, G2): canonical frame, exact rotation equivariance, Gumbel-softmax
straight-through sampling, output ranges, and seeded training through a frozen F."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from graded.elastic import from_21, rotate_voigt
from graded.elastic import torch as et
from graded.inverse.forward import N_PARTS, ForwardConfig, ForwardModel
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


def test_posterior_weight_teaches_g1_the_dataset_topologies():
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
              warmup_epochs=0, patience=100)
    parts = torch.as_tensor(part_index(ds.topology))

    def log_p_true(model):
        with torch.no_grad():
            x, *_ = model.scaled_features(torch.as_tensor(from_21(ds.C)))
            return -float(model.topology_nll(model.posterior_logits(x), model.topology_labels(parts)))

    plain, _ = train_inverse(ds, f, posterior_weight=0.0, **kw)
    post, _ = train_inverse(ds, f, posterior_weight=1.0, **kw)
    # uniform guessing gives log(1/560) = -6.3; memorising the 36 training topologies gives 0
    assert log_p_true(post) > -3.0
    assert log_p_true(post) > log_p_true(plain) + 5.0


def test_joint_topology_classes_are_the_sorted_part_triples():
    from graded.inverse.inverse_model import TOPOLOGY_TRIPLES, topology_class

    assert TOPOLOGY_TRIPLES.shape == (560, 3)  # multisets of 3 from 14: C(16, 3)
    assert np.all(np.diff(TOPOLOGY_TRIPLES, axis=1) >= 0)
    assert np.array_equal(topology_class(TOPOLOGY_TRIPLES), np.arange(560))
    # slot order does not matter
    assert np.array_equal(topology_class(TOPOLOGY_TRIPLES[:, ::-1]), np.arange(560))


def test_triple_blocks_are_the_one_hot_parts_of_each_triple():
    from graded.inverse.inverse_model import TOPOLOGY_TRIPLES

    blocks = InverseModel(InverseConfig(g1_widths=[16], g2_widths=[16])).triple_blocks
    want = torch.nn.functional.one_hot(torch.as_tensor(TOPOLOGY_TRIPLES), N_PARTS).float().flatten(1)
    assert blocks.dtype == torch.float32 and torch.equal(blocks, want)


def test_joint_topology_draws_are_one_hot_blocks_of_sorted_triples():
    from graded.inverse.forward import onehot_to_topology, part_index
    from graded.inverse.inverse_model import TOPOLOGY_TRIPLES

    torch.manual_seed(3)
    cfg = InverseConfig(g1_widths=[16], g2_widths=[16], features=MinMax(np.full(22, -1.0), np.ones(22)))
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


# ---------------------------------------------------------------------------
# several geometry heads
# ---------------------------------------------------------------------------


def test_with_heads_copies_head_zero_and_rotates_r1_of_the_others_exactly():
    """Widening a one-head model: head 0 is the old G2 exactly; head k > 0 is the old G2
    with R_I -> M_k R_I for one fixed rotation M_k by the requested angle (the 6D map is
    equivariant), everything else unchanged."""
    m = _inverse(21)
    wide = m.with_heads(3, angle=0.7, generator=torch.Generator().manual_seed(2))
    C = torch.as_tensor(_stiffness(8, 22))
    with torch.no_grad():
        a = m(C, sample=False)
        x, *_ = wide.scaled_features(C)
        geom, head_logits = wide.geometry_heads(x, a.z)
    assert head_logits.shape == (8, 3)
    rho, U, V, R1, R2 = geom
    for k in range(3):
        assert torch.equal(rho[:, k], a.rho) and torch.equal(U[:, k], a.U) and torch.equal(V[:, k], a.V)
        assert float((R2[:, k] - a.R2_can).abs().max()) < EXACT
        M = R1[:, k] @ a.R1.transpose(-1, -2)  # the same M_k for every target
        assert float((M - M[:1]).abs().max()) < EXACT
        angle = float(torch.arccos(((M[0].trace() - 1) / 2).clamp(-1, 1)))
        assert angle == pytest.approx(0.0 if k == 0 else 0.7, abs=1e-7)
    with pytest.raises(ValidationError, match="n_heads: the model already has 3 heads"):
        wide.with_heads(4)


def test_n_heads_is_validated():
    with pytest.raises(ValidationError, match="n_heads: 0 is not an integer in 1..64"):
        InverseModel(InverseConfig(g1_widths=[8], g2_widths=[8], n_heads=0))
    with pytest.raises(ValidationError, match="n_heads"):
        InverseConfig.from_dict(InverseConfig(g1_widths=[8], g2_widths=[8]).to_dict() | {"n_heads": "four"})


def test_one_head_draws_use_no_head_noise():
    """A one-head model takes head 0 and draws no noise for it, so its draws are those of
    the paper's G2 (and of models saved before heads existed)."""
    m = _inverse(23)
    C = torch.as_tensor(_stiffness(5, 24))
    g = torch.Generator().manual_seed(3)
    state = g.get_state()
    with torch.no_grad():
        s = m(C, generator=g)
        x, *_ = m.scaled_features(C)
        direct = m._decode(m.g2(torch.cat([x, s.z.flatten(-2)], -1)))
    assert torch.equal(s.head, torch.zeros(5, dtype=torch.int64)) and s.head_logits is None
    for got, want in zip((s.rho, s.U, s.V, s.R1, s.R2_can), direct):
        assert torch.equal(got, want)
    g2 = torch.Generator().manual_seed(3)
    g2.set_state(state)
    with torch.no_grad():
        m.sample_topology(m.posterior_logits(x), 1.0, generator=g2)
    assert torch.equal(g.get_state(), g2.get_state())  # only the topology consumed noise


def test_multi_head_draws_follow_the_head_posterior():
    m = _inverse(25).with_heads(3, generator=torch.Generator().manual_seed(4)).double()
    with torch.no_grad():
        last = m.g2_select[-1]
        last.weight.zero_()
        last.bias.copy_(torch.tensor([0.0, 2.0, -30.0], dtype=torch.float64))
    C = torch.as_tensor(_stiffness(1, 26)).expand(4000, 6, 6)
    with torch.no_grad():
        s = m(C, generator=torch.Generator().manual_seed(5))
        mode = m(C[:3], sample=False)
    freq = torch.bincount(s.head, minlength=3).double() / 4000
    p = torch.softmax(torch.tensor([0.0, 2.0, -30.0], dtype=torch.float64), 0)
    assert torch.allclose(freq, p, atol=0.03)  # 3 sigma of a 4,000-draw frequency is ~0.02
    assert torch.equal(mode.head, torch.ones(3, dtype=torch.int64))
    x, *_ = m.scaled_features(C[:3])
    with torch.no_grad():
        geom, _ = m.geometry_heads(x, mode.z)
    assert torch.equal(mode.R1, geom[3][:, 1])


def test_multiple_choice_loss_weights_the_winner_and_labels_it():
    from graded.inverse.train import multiple_choice_loss

    err = torch.tensor([[1.0, 2.0, 4.0], [3.0, 0.5, 1.0]], requires_grad=True)
    logits = torch.zeros(2, 3, requires_grad=True)
    rec, ce = multiple_choice_loss(err, logits, eps=0.1)
    # winners 0 and 1 get 0.9, the two losers 0.05 each
    assert float(rec.detach()) == pytest.approx(0.5 * ((0.9 * 1 + 0.05 * 6) + (0.9 * 0.5 + 0.05 * 4)), rel=1e-6)
    assert float(ce.detach()) == pytest.approx(np.log(3.0), rel=1e-6)
    rec.backward()
    assert torch.allclose(err.grad, torch.tensor([[0.45, 0.025, 0.025], [0.025, 0.45, 0.025]]))
    # pure winner-takes-all: losers get no gradient; weights scale the samples
    err2 = err.detach().clone().requires_grad_(True)
    rec2, _ = multiple_choice_loss(err2, logits, eps=0.0, sample_weight=torch.tensor([2.0, 0.0]))
    rec2.backward()
    assert float(rec2.detach()) == pytest.approx(1.0)
    assert torch.equal(err2.grad, torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]))


def test_multi_head_training_is_seeded_and_teaches_the_head_posterior():
    """Training a widened model: seeded, and its head posterior picks the head with the
    lowest reconstruction error far more often than chance."""
    from graded.inverse.dataset import LatticeDataset, label_designs
    from graded.inverse.sampling import sample_designs
    from graded.inverse.train import mandel_error, train_forward, train_inverse

    d = sample_designs(48, np.random.default_rng(14))
    ds = LatticeDataset(d.topology, d.rho, d.U, d.V, d.R1, d.R2, **label_designs(d))
    f, _ = train_forward(ds, f1_widths=(16,), f2_widths=(16,), epochs=(2, 2), batch_size=16, seed=0)
    kw = dict(g1_widths=(16,), g2_widths=(16,), epochs=2, batch_size=8, val_fraction=0.1, seed=5, lr=3e-3,
              warmup_epochs=0, n_heads=1, metric="mandel", size_weight=0.0, posterior_weight=0.0)
    base, _ = train_inverse(ds, f, **kw)
    kw |= dict(n_heads=3, epochs=40, lr=1e-2, patience=100, posterior_weight=1.0)
    g1, h1 = train_inverse(ds, f, model=copy.deepcopy(base), **kw)
    g2, _ = train_inverse(ds, f, model=copy.deepcopy(base), **kw)
    assert g1.config.n_heads == 3
    for (k, a), b in zip(g1.state_dict().items(), g2.state_dict().values()):
        assert torch.equal(a, b), k
    from graded.inverse.forward import topology_onehot

    with torch.no_grad():
        x, _, Cc, s = g1.scaled_features(torch.as_tensor(from_21(ds.C)))
        z = topology_onehot(ds.topology, torch.float32)
        geom, head_logits = g1.geometry_heads(x, z)
        zk = z.unsqueeze(1).expand(-1, 3, -1, -1)
        err = mandel_error(et.to_21(f(zk, *geom)), et.to_21(Cc)[:, None], s[:, None])
    agree = float((head_logits.argmax(-1) == err.argmin(-1)).double().mean())
    assert agree > 0.6  # chance is 1/3


def test_component_weights_turn_the_error_sum_into_the_r2_deficit():
    """With ``component_weights`` and the size weight ``(s / mean s)^2`` the mean error of a
    set of designs is ``sum_c (1 - R^2_c)`` over the 21 constants, up to the constant
    ``1 / (mean(s)^2 sum_c 1 / Var_c)`` -- an identity, so round-off tight."""
    from graded.elastic import r2_score, to_21
    from graded.elastic.metrics import MANDEL_W21, component_weights
    from graded.inverse.scaling import stiffness_scale
    from graded.inverse.train import mandel_error

    rng = np.random.default_rng(3)
    true = to_21(_stiffness(300, 8))
    pred = true + 1e-3 * rng.standard_normal(true.shape) * rng.uniform(0.2, 3.0, 21)
    w = component_weights(true)
    assert w.shape == (21,) and np.isclose(w.sum(), MANDEL_W21.sum())
    s = stiffness_scale(true)
    err = mandel_error(torch.as_tensor(pred), torch.as_tensor(true), torch.as_tensor(s), w).numpy()
    mean = float(np.mean(err * (s / s.mean()) ** 2))
    deficit = float(np.sum(1.0 - r2_score(true, pred)))
    assert mean * s.mean() ** 2 * np.sum(1.0 / true.var(0)) == pytest.approx(deficit, rel=1e-10)
    with pytest.raises(ValidationError, match="C21: a component is constant"):
        component_weights(np.ones((10, 21)))


def test_r2_metric_training_is_seeded_and_lowers_the_weighted_error():
    from graded.inverse.dataset import LatticeDataset, label_designs
    from graded.inverse.sampling import sample_designs
    from graded.inverse.train import train_forward, train_inverse

    d = sample_designs(40, np.random.default_rng(12))
    ds = LatticeDataset(d.topology, d.rho, d.U, d.V, d.R1, d.R2, **label_designs(d))
    f, _ = train_forward(ds, f1_widths=(16,), f2_widths=(16,), epochs=(3, 3), batch_size=16, seed=0)
    kw = dict(g1_widths=(16,), g2_widths=(16,), epochs=8, batch_size=8, val_fraction=0.2, seed=5, lr=3e-3,
              metric="r2", size_weight=2.0)
    g1, h1 = train_inverse(ds, f, **kw)
    g2, _ = train_inverse(ds, f, **kw)
    for (k, a), b in zip(g1.state_dict().items(), g2.state_dict().values()):
        assert torch.equal(a, b), k
    assert min(h1.train_loss[1:]) < h1.train_loss[0]
    with pytest.raises(ValidationError, match="metric: 'frobenius' is not one of"):
        train_inverse(ds, f, **(kw | {"metric": "frobenius"}))
    with pytest.raises(ValidationError, match="metric: 'r2' needs a canonical-frame model"):
        train_inverse(ds, f, **(kw | {"canonical": False}))
