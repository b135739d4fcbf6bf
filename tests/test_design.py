"""``graded.inverse.design``: target parsing and refusals, reach warnings, seeded
reproducibility, ranking and distinctness, FE verification, diameters, refinement."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from graded.elastic import from_21, rotate_voigt, to_21
from graded.elastic.metrics import relative_error
from graded.inverse.design import (
    DesignResult,
    PoorMatchWarning,
    TargetOutOfReachWarning,
    design,
    parse_target,
    rank_results,
)
from graded.inverse.sampling import random_rotations
from graded.inverse.select import cell_key
from graded.validation import ValidationError

#: Bone specimen A (GPa), examples/data/trabecular_bone_stiffness.csv
BONE_A = np.array([0.573, 0.234, 0.219, -0.006, -0.015, 0.004, 0.64, 0.253, -0.005, -0.016, 0.006, 1.26,
                   -0.017, 0.023, -0.003, 0.317, -0.017, -0.002, 0.246, 0.052, 0.224])


def _iso(scale: float) -> np.ndarray:
    lam, mu = 0.5 * scale, 0.3 * scale
    C = np.zeros((6, 6))
    C[:3, :3] = lam
    C[[0, 1, 2], [0, 1, 2]] = lam + 2 * mu
    C[[3, 4, 5], [3, 4, 5]] = mu
    return C


def _quiet(**kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PoorMatchWarning)
        return design(**kw)


# ---- parsing and refusals ------------------------------------------------------------


def test_21_constants_and_6x6_give_the_same_target():
    a = parse_target(BONE_A, E=114, units="GPa")
    b = parse_target(from_21(BONE_A), E=114, units="GPa")
    assert np.array_equal(a, b)
    assert np.isclose(a[2, 2], 1.26 / 114)


@pytest.mark.parametrize("n", [20, 22, 9, 35])
def test_wrong_number_of_constants_is_refused(n):
    with pytest.raises(ValidationError, match=f"target: has {n} values"):
        parse_target(np.ones(n) * 0.01)


def test_gpa_values_without_E_are_refused():
    with pytest.raises(ValidationError, match="E: is required"):
        parse_target(BONE_A, units="GPa")


def test_gpa_values_passed_as_normalised_are_caught():
    with pytest.raises(ValidationError, match="look like GPa"):
        parse_target(BONE_A * 10)  # C33 = 12.6 > 1: not a normalised stiffness


def test_unknown_units_are_refused():
    with pytest.raises(ValidationError, match="units"):
        parse_target(BONE_A, E=114, units="MPa")


def test_asymmetric_target_is_refused():
    C = _iso(0.01)
    C[0, 3] = 0.001
    with pytest.raises(ValidationError, match="target: is not symmetric"):
        parse_target(C)


def test_indefinite_target_is_refused_with_the_reason():
    C = from_21(BONE_A) / 114
    C[0, 1] = C[1, 0] = 0.02  # |C12| > sqrt(C11 C22)
    with pytest.raises(ValidationError, match="target: is not positive definite.*smallest eigenvalue"):
        parse_target(C)


def test_invalid_options_are_refused(models):
    for kw, field in (({"n_draws": 0}, "n_draws"), ({"top_k": 1.5}, "top_k"), ({"tau": -1.0}, "tau"),
                      ({"cell_size": -2.0}, "cell_size"), ({"n_library": -1}, "n_library")):
        with pytest.raises(ValidationError, match=field):
            design(BONE_A, E=114, units="GPa", verify=False, models=models, **kw)


# ---- reach warnings ------------------------------------------------------------------


def test_too_stiff_target_warns_with_the_achievable_scale(models):
    with pytest.warns(TargetOutOfReachWarning, match=r"stiffer than any lattice.*reaches .* GPa"):
        _quiet(target=_iso(0.2) * 114, E=114, units="GPa", n_draws=20, top_k=2, verify=False, models=models)


def test_too_soft_target_warns(models):
    with pytest.warns(TargetOutOfReachWarning, match="softer than any lattice"):
        _quiet(target=_iso(1e-5), n_draws=20, top_k=2, verify=False, models=models)


def test_reachable_target_gives_no_reach_warning(models):
    with warnings.catch_warnings():
        warnings.simplefilter("error", TargetOutOfReachWarning)
        _quiet(target=BONE_A, E=114, units="GPa", n_draws=20, top_k=2, verify=False, models=models)


# ---- results -------------------------------------------------------------------------


def test_fixed_seed_gives_identical_designs(models):
    kw = dict(target=BONE_A, E=114, units="GPa", n_draws=300, top_k=5, tau=5.0, verify=False, models=models)
    a, b, c = _quiet(seed=3, **kw), _quiet(seed=3, **kw), _quiet(seed=4, **kw)
    for x, y in zip(a, b):
        assert x.topology == y.topology and x.rho == y.rho
        assert np.array_equal(x.R1, y.R1) and np.array_equal(x.R2, y.R2) and np.array_equal(x.C_pred, y.C_pred)
    assert [x.rho for x in a] != [x.rho for x in c]


def test_ranking_distinct_cells_first_by_relative_error_and_fe_verification(models):
    res = _quiet(target=BONE_A, E=114, units="GPa", n_draws=400, top_k=4, tau=20.0, cell_size=5.0, seed=1,
                 refine=False, models=models, screen=0)
    assert [r.source for r in res].count("library") == 2  # n_library=5, at most half of top_k
    assert [r.rank for r in res] == list(range(len(res)))
    flags = [r.distinct for r in res]
    assert flags == sorted(flags, reverse=True)  # all distinct ones come first
    distinct = [r for r in res if r.distinct]
    assert len({cell_key(r.topology) for r in distinct}) == len(distinct)
    # ranked by the FE relative Mandel-norm error (the default), which is what error_fe holds
    assert [r.error_fe for r in distinct] == sorted(r.error_fe for r in distinct)
    target = parse_target(BONE_A, E=114, units="GPa")
    for r in res:
        assert r.error_fe == pytest.approx(float(relative_error(target, r.C_fe)), rel=1e-12)
    by_nmse = _quiet(target=BONE_A, E=114, units="GPa", n_draws=400, top_k=4, tau=20.0, seed=1, refine=False,
                     models=models, rank_by="nmse")
    nm = [r.nmse_fe for r in by_nmse if r.distinct]
    assert nm == sorted(nm)
    best = res[0]
    assert isinstance(best, DesignResult)
    # the verified stiffness is the FE stiffness of the returned cell
    C_fe = best.cell.stiffness()
    assert np.abs(best.C_fe - C_fe).max() / np.abs(C_fe).max() < 1e-9
    nz = target != 0
    assert np.isclose(best.nmse_fe, np.sum((target[nz] - C_fe[nz]) ** 2 / target[nz] ** 2))
    # strut diameter for the given cell size, and parameters in Table S1
    assert np.isclose(best.diameter, best.cell.diameter(cell_size=5.0))
    assert 0.002 <= best.rho <= 0.1 and np.all((best.U >= 0.5) & (best.U <= 2.0))
    d = best.to_dict()
    assert d["C_fe_GPa"]["C11"] == pytest.approx(114 * best.C_fe[0, 0])
    assert len(d["R1_axis_angle"]) == 3 and d["diameter"] == best.diameter


def test_cell_key_is_the_lattice_not_the_part_list():
    """Parts in another order, repeated, or covered by the others make the same lattice;
    a different elementary topology does not."""
    same = ["2x1+2x2", "2x2+2x1", "2x1+2x2+2x2", "2x1+2x1+2x2", "1x1+2x1+2x2", "1x2+2x1+2x2"]
    assert len({cell_key(t) for t in same}) == 1
    assert cell_key("1x7+2x1+2x2") != cell_key("2x1+2x2")
    assert cell_key(np.array([[2, 2], [2, 1], [2, 2]])) == cell_key("2x1+2x2")


def test_rank_results_keeps_one_of_a_repeated_cell():
    """Two designs of one lattice with the same stiffness (e.g. two starts polished into
    one optimum) are one cell: only the better is kept; one with another stiffness stays,
    marked as not distinct."""
    target = parse_target(BONE_A, E=114, units="GPa")

    def result(topology, C):
        return DesignResult(rank=0, topology=topology, rho=0.03, U=np.ones(3), V=np.ones(3), R1=np.eye(3),
                            R2=np.eye(3), C_pred=C, nmse_pred=0.0, C_fe=C, nmse_fe=0.0)

    near, far = 1.01 * target, 1.2 * target
    res = rank_results([result("2x1+2x2+2x2", near * (1 + 1e-5)), result("1x1+2x1+2x2", near),
                        result("2x1+2x2", far), result("1x7+2x1+2x2", far)], target)
    assert [r.topology for r in res] == ["1x1+2x1+2x2", "1x7+2x1+2x2", "2x1+2x2"]
    assert [r.distinct for r in res] == [True, True, False] and [r.rank for r in res] == [0, 1, 2]


def test_draws_are_evaluated_in_batches_with_progress_and_the_same_designs(models, monkeypatch):
    """Batching the forward evaluation of the draws (for progress) does not change a design
    (beyond float32 round-off)."""
    import graded.inverse.draw as draw
    from graded.inverse.inverse_model import InverseConfig, InverseModel

    C = parse_target(BONE_A, E=114, units="GPa")
    torch.manual_seed(1)
    inv, fwd = InverseModel(InverseConfig(g1_widths=[16], g2_widths=[16], n_heads=3)).eval(), models[1]
    whole = draw.draw_designs(inv, fwd, np.stack([C, 0.5 * C]), 35, generator=torch.Generator().manual_seed(3))
    monkeypatch.setattr(draw, "DRAW_BATCH", 10)
    calls = []
    batched = draw.draw_designs(inv, fwd, np.stack([C, 0.5 * C]), 35, generator=torch.Generator().manual_seed(3),
                                progress=lambda d, t, m: calls.append((d, t, m)))
    assert [d for d, _, _ in calls] == [20, 40, 60, 70]  # both targets in one chunk, 10 draws each a batch
    assert all(t == 70 for _, t, _ in calls) and calls[-1][2] == "70 of 70 draws"
    assert np.array_equal(whole["topology"], batched["topology"])
    for k in whole:  # float32 networks: batches of another size may round differently
        assert np.allclose(whole[k], batched[k], rtol=1e-5, atol=1e-6), k


def test_rotated_target_gives_rotated_draws(models):
    """Draws are equivariant (R_II -> Q R_II); the Eq. 8 ranking is not (it divides by
    the target's entries, which change with the frame), so draws are compared."""
    from graded.inverse.draw import draw_designs

    Q = random_rotations(1, np.random.default_rng(2))[0]
    C = parse_target(BONE_A, E=114, units="GPa")
    inv, fwd = models
    a = draw_designs(inv, fwd, C[None], 50, generator=torch.Generator().manual_seed(7))
    b = draw_designs(inv, fwd, rotate_voigt(C, Q)[None], 50, generator=torch.Generator().manual_seed(7))
    assert np.array_equal(a["topology"], b["topology"])
    # float32 networks: equal to single precision
    assert np.allclose(a["rho"], b["rho"], rtol=1e-5)
    assert np.allclose(b["R2"], Q @ a["R2"], atol=1e-5)
    expected = rotate_voigt(a["C_pred"], Q)
    assert np.abs(b["C_pred"] - expected).max() / np.abs(expected).max() < 1e-5


def test_refinement_never_makes_a_design_worse(models):
    from graded.elastic.metrics import relative_error

    kw = dict(target=BONE_A, E=114, units="GPa", n_draws=100, top_k=2, seed=2, models=models)
    plain = _quiet(verify=True, refine=False, n_library=0, **kw)
    refined = _quiet(verify=True, refine=True, n_library=0, **kw)
    t = parse_target(BONE_A, E=114, units="GPa")
    assert min(relative_error(t, r.C_fe) for r in refined) <= min(relative_error(t, r.C_fe) for r in plain) + 1e-12
    assert to_21(refined[0].C_fe).shape == (21,)


def test_shipped_models_design_bone_target_quickly():
    """Bone A with the shipped weights: the FE-verified design is within 20 % of the target
    in the rotation-invariant Mandel norm (measured 12 %); Eq. 8's NMSE is far larger
    because it divides by near-zero entries such as C46 = -0.002 GPa."""
    from graded.elastic.metrics import relative_error

    res = _quiet(target=BONE_A, E=114, units="GPa", n_draws=2000, top_k=3, verify=True, refine=False, n_library=0)
    assert len(res) == 3
    target = parse_target(BONE_A, E=114, units="GPa")
    assert float(relative_error(target, res[0].C_fe)) < 0.2
    # refinement (surrogate, then FE polish) never makes it worse by FE; with the library
    # neighbours it reaches 8 % (measured), the model draws alone 10-11 %
    ref = _quiet(target=BONE_A, E=114, units="GPa", n_draws=2000, top_k=4, verify=True)
    errs = [float(relative_error(target, r.C_fe)) for r in ref]
    assert min(errs) <= float(relative_error(target, res[0].C_fe)) + 1e-12
    assert min(errs) < 0.12
    assert len(ref) <= 4 and {r.source for r in ref} <= {"model", "library", "screen"}


def test_surrogate_refinement_in_float32_matches_float64():
    """Gradient refinement through the shipped forward model lowers the predicted error,
    and float32 (the fast path for many designs) ends where float64 does."""
    from graded.elastic.metrics import relative_error
    from graded.inverse.dataset import shipped_test_set
    from graded.inverse.design import default_models
    from graded.inverse.draw import draw_designs
    from graded.inverse.refine import refine_designs

    inv, fwd = default_models()
    T = from_21(shipped_test_set().C[:30])
    d = draw_designs(inv, fwd, T, 1, generator=torch.Generator().manual_seed(4))
    cand = {k: d[k][:, 0] for k in ("topology", "rho", "U", "V", "R1", "R2")}
    r64 = refine_designs(fwd, T, cand, steps=40, loss="mandel")
    r32 = refine_designs(fwd, T, cand, steps=40, loss="mandel", dtype=torch.float32)
    e0 = relative_error(T, d["C_pred"][:, 0])
    e64, e32 = relative_error(T, r64["C_pred"]), relative_error(T, r32["C_pred"])
    assert np.median(e64) < 0.7 * np.median(e0)  # measured: 6.4 % -> 3.2 %
    # float32 round-off perturbs the Adam path only slightly (measured: at most 6e-5 in the error)
    assert np.max(np.abs(e32 - e64)) < 1e-3
    assert r32["rho"].dtype == np.float64 and np.allclose(r32["rho"], r64["rho"], rtol=1e-3)
    for R in (r32["R1"], r32["R2"]):
        assert np.allclose(R @ np.swapaxes(R, -1, -2), np.eye(3), atol=1e-12)


def test_forward_head_choice_takes_the_nearest_head_of_each_draw():
    """``heads="forward"``: every draw's design is the geometry head whose forward-model
    stiffness is nearest the target (Mandel norm); the topology draws are those of
    ``heads="posterior"`` with the same seed, and no draw is farther than the posterior's
    head."""
    from graded.elastic.metrics import relative_error
    from graded.inverse.dataset import shipped_test_set
    from graded.inverse.design import default_models
    from graded.inverse.draw import draw_designs
    from graded.inverse.forward import topology_onehot
    from graded.inverse.inverse_model import pick_head

    inv, fwd = default_models()
    T = from_21(shipped_test_set().C[:40])
    a = draw_designs(inv, fwd, T, 5, generator=torch.Generator().manual_seed(3), heads="forward")
    b = draw_designs(inv, fwd, T, 5, generator=torch.Generator().manual_seed(3), heads="posterior")
    assert np.array_equal(a["topology"], b["topology"])
    ea, eb = relative_error(T[:, None], a["C_pred"]), relative_error(T[:, None], b["C_pred"])
    assert np.all(ea <= eb + 1e-6)  # float32 forward model
    assert np.median(ea) < 0.95 * np.median(eb)  # measured on 1,000 targets by FE: 5.0 % against 5.8 %
    # the chosen head is the nearest of all K heads, recomputed here head by head
    K = inv.config.n_heads
    inv32, fwd32 = inv.float().eval(), fwd.float().eval()
    with torch.no_grad():
        x, Q, _, _ = inv32.scaled_features(torch.as_tensor(T))
        z = topology_onehot(a["topology"], torch.float32)
        geom, _ = inv32.geometry_heads(x[:, None].expand(40, 5, x.shape[-1]), z)
        per_head = []
        for h in range(K):
            g = pick_head(geom, torch.full((40, 5), h))
            per_head.append(fwd32(z, *g[:4], Q[:, None] @ g[4]).double().numpy())
    e_all = relative_error(T[:, None, None], np.stack(per_head, 2))
    assert np.allclose(ea, e_all.min(-1), rtol=1e-4, atol=1e-7)
    with pytest.raises(ValidationError, match="heads"):
        draw_designs(inv, fwd, T[:1], 1, heads="best")


def test_shipped_model_accuracy_by_fe():
    """The shipped models on the first 500 held-out targets, designs homogenized by FE.

    Single draw (measured, seed 0: min R^2 over the 21 constants 0.955, relative error
    median 4.9 %; on all 1,000 targets, seeds 0-2: 0.959-0.961) and best of 100 draws at
    tau 6, the 10 best verified, chosen by their share of the summed 1 - R^2 (measured:
    0.9844, median 4.0 %; on 1,000 targets, seeds 0-2: 0.9845-0.9848). The bounds leave
    room for round-off in the float32 networks, not for a worse model."""
    from graded.inverse.dataset import shipped_test_set
    from graded.inverse.design import default_models
    from graded.inverse.evaluate import evaluate_inverse

    inv, fwd = default_models()
    rep = evaluate_inverse(inv, fwd, shipped_test_set(), n_targets=500, n_draws=100, top_k=10, tau_best=6.0,
                           rank_by="r2", seed=0)
    assert rep.r2_single_fe.min() > 0.945
    assert np.median(rep.err_single_fe) < 0.053
    assert rep.r2_best_fe.min() > 0.98
    assert np.median(rep.err_best_fe) < 0.042


def test_design_returns_no_exact_repeats():
    """A cold posterior draws one topology over and over; the forward model's head choice
    then gives the same design every time, and ``design`` returns it once, not ``top_k``
    times."""
    from graded.inverse.dataset import shipped_test_set

    target = from_21(shipped_test_set().C[0])
    res = design(target, n_draws=40, tau=1e-3, top_k=6, n_library=0, verify=False, refine=False, seed=2)
    ids = {(r.topology, round(r.rho, 12)) for r in res}
    assert len(ids) == len(res) >= 1
    assert len(res) < 6
    wide = design(target, n_draws=400, tau=2.0, top_k=6, n_library=0, verify=False, refine=False, seed=2)
    assert len(wide) == 6 and len({(r.topology, round(r.rho, 12)) for r in wide}) == 6


def test_screen_adds_candidates_and_top_k_bounds_what_is_returned(models):
    """The lattice screen adds designs of other lattices; the list returned stays within top_k."""
    kw = dict(target=BONE_A, E=114, units="GPa", n_draws=50, top_k=3, seed=0, refine=False, n_library=0,
              models=models)
    res = _quiet(screen=4, **kw)
    assert len(res) <= 3 and all(r.error_fe is not None for r in res)
    wide = _quiet(screen=4, **(kw | {"top_k": 20}))
    assert sum(r.source == "screen" for r in wide) >= 1
    assert min(r.error_fe for r in wide) <= min(r.error_fe for r in _quiet(screen=0, **(kw | {"top_k": 20}))) + 1e-12
