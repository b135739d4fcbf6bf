"""evaluate_inverse: the report's figures are computed from FE of the designs it picks."""

import numpy as np
import pytest

from graded.inverse.dataset import shipped_test_set
from graded.inverse.evaluate import evaluate_inverse
from graded.inverse.library import build_library


def test_library_neighbours_can_only_improve_the_best_design(models, tmp_path):
    ds = shipped_test_set()
    lib = build_library(ds.subset(slice(100, 600)))  # disjoint from the 6 targets
    inv, fwd = models
    rep = evaluate_inverse(inv, fwd, ds, n_targets=6, n_draws=4, top_k=2, rank_by="mandel", refine=True,
                           n_library=2, library=lib, plot_dir=tmp_path)
    assert rep.r2_single_fe.shape == rep.r2_best_fe.shape == rep.r2_best_library.shape == (21,)
    assert np.all(rep.err_best_library <= rep.err_best_fe + 1e-12)
    assert np.all(rep.err_best_fe >= 0) and np.all(rep.err_single_fe >= 0)
    d = rep.to_dict()
    assert d["settings"]["n_library"] == 2 and "min_r2_best_library" in d and "err_best_fe" in d
    assert "+ library" in rep.table() and "relative error" in rep.table() and "polished against FE" in rep.table()
    assert len(rep.plots) == 3 and all((tmp_path / p.split("/")[-1]).exists() for p in rep.plots)


def test_exploration_temperature_changes_only_the_best_of_draws(models):
    """``tau_best`` sets the temperature of the best-of draws; the single draw keeps ``tau``."""
    ds = shipped_test_set()
    inv, fwd = models
    kw = dict(n_targets=5, n_draws=6, top_k=2, rank_by="mandel", seed=3)
    a = evaluate_inverse(inv, fwd, ds, tau_best=None, **kw)  # None: the single draw's tau
    b = evaluate_inverse(inv, fwd, ds, tau_best=0.02, **kw)  # near the posterior mode
    assert np.array_equal(a.r2_single_fe, b.r2_single_fe) and np.array_equal(a.err_single_fe, b.err_single_fe)
    assert not np.array_equal(a.err_best_fe, b.err_best_fe)
    assert a.settings["tau_best"] == 1.0 and b.settings["tau_best"] == 0.02
    assert "best of 6 draws at tau = 0.02, 2 verified by FE" in b.table()


def test_refine_steps_adds_refined_figures_and_keeps_the_network_figures(models, tmp_path):
    ds = shipped_test_set()
    inv, fwd = models
    kw = dict(n_targets=5, n_draws=6, top_k=2, rank_by="mandel", seed=2)
    a = evaluate_inverse(inv, fwd, ds, **kw)
    b = evaluate_inverse(inv, fwd, ds, refine_steps=5, plot_dir=tmp_path, **kw)
    assert [p.split("/")[-1] for p in b.plots[2:]] == ["inverse_single_gd5_fe.png", "inverse_best6_gd5_fe.png"]
    assert all((tmp_path / p.split("/")[-1]).exists() for p in b.plots)
    assert a.r2_single_refined_fe is None and "+GD" not in a.table() and "polished" not in a.table()
    for name in ("r2_single_fe", "err_single_fe", "r2_best_fe", "err_best_fe"):
        assert np.array_equal(getattr(a, name), getattr(b, name))
    # the refined best is the best by FE of the verified draws *and* their refined versions
    assert np.all(b.err_best_refined_fe <= b.err_best_fe + 1e-12)
    assert b.r2_single_refined_fe.shape == b.r2_best_refined_fe.shape == (21,)
    d = b.to_dict()
    assert d["settings"]["refine_steps"] == 5 and "min_r2_single_refined_fe" in d and "err_best_refined_fe" in d
    assert "after 5 gradient steps" in b.table() and "best+GD" in b.table()


@pytest.mark.parametrize("bad", [-1, 2.5, True])
def test_refine_steps_must_be_a_count(models, bad):
    inv, fwd = models
    with pytest.raises(ValueError, match="refine_steps: .* is not an integer >= 0"):
        evaluate_inverse(inv, fwd, shipped_test_set(), n_targets=3, n_draws=2, top_k=1, refine_steps=bad)


def test_gradient_refinement_of_a_single_draw_lowers_its_fe_error():
    """With the shipped models: 100 steps through the surrogate cut the FE error of single
    draws (measured on 1,000 targets: median 5.9 % -> 4.2 % at 200 steps)."""
    from graded.inverse.design import default_models

    inv, fwd = default_models()
    rep = evaluate_inverse(inv, fwd, shipped_test_set(), n_targets=40, n_draws=2, top_k=1, rank_by="mandel",
                           refine_steps=100)
    assert np.median(rep.err_single_refined_fe) < 0.9 * np.median(rep.err_single_fe)
    assert np.median(rep.err_single_refined_fe) < 0.06


def test_r2_error_sums_to_the_summed_one_minus_r2():
    """With weights 1/Var over the targets, the per-target errors add up to
    ``n * sum_c (1 - R^2_c)`` times the weights' normalisation (an identity)."""
    from graded.elastic import r2_score
    from graded.elastic.metrics import component_weights, r2_error

    rng = np.random.default_rng(5)
    T = rng.normal(size=(300, 21)) * rng.uniform(0.01, 1.0, 21)
    C = T + rng.normal(size=T.shape) * 0.1 * T.std(0)
    w = component_weights(T)
    k = w[0] * T.var(0)[0]  # component_weights is 1/Var up to this factor
    assert np.sum(r2_error(T, C, w)) == pytest.approx(k * len(T) * np.sum(1.0 - r2_score(T, C)), rel=1e-10)
    assert r2_error(T[:, None], C[:, None], w).shape == (300, 1)


def test_r2_selection_minimises_the_summed_one_minus_r2_of_the_verified_draws(models):
    """When every distinct draw is verified (top_k >= n_draws), picking the best by the
    ``"r2"`` criterion -- with a model that records no weights, the evaluated targets'
    1/Var -- gives the lowest summed 1 - R^2 of all choices, hence of "mandel" and "nmse"."""
    ds = shipped_test_set()
    inv, fwd = models
    assert not getattr(inv, "info", {}).get("component_weights")
    kw = dict(n_targets=12, n_draws=5, top_k=5, tau_best=30.0, seed=4)
    reps = {r: evaluate_inverse(inv, fwd, ds, rank_by=r, **kw) for r in ("r2", "mandel", "nmse")}
    loss = {r: np.sum(1.0 - rep.r2_best_fe) for r, rep in reps.items()}
    assert loss["r2"] <= min(loss["mandel"], loss["nmse"]) + 1e-12
    assert reps["r2"].settings["r2_weights_from"] == "evaluated targets"
    assert "r2_weights_from" not in reps["mandel"].settings
    assert "share of the summed 1 - R^2" in reps["r2"].table()
    # the single draw does not depend on the selection
    assert np.array_equal(reps["r2"].r2_single_fe, reps["mandel"].r2_single_fe)


def test_shipped_inverse_model_records_its_training_targets_component_weights():
    """The shipped sidecar carries the weights the "r2" selection uses: 1/Var of the 21
    constants over the 200k training targets, which the held-out targets match within 15 %."""
    from graded.elastic.metrics import component_weights
    from graded.inverse.design import default_models
    from graded.inverse.evaluate import selection_weights

    inv, _ = default_models()
    w, source = selection_weights(inv, shipped_test_set().C)
    assert source == "training targets" and w.shape == (21,)
    ratio = w / component_weights(shipped_test_set().C)
    assert np.all(np.abs(ratio - 1.0) < 0.15)


def test_r2_selection_refuses_malformed_recorded_weights(models, monkeypatch):
    """A sidecar whose weights are not 21 positive numbers is an error, not a silent fallback."""
    inv, fwd = models
    monkeypatch.setattr(inv, "info", {"component_weights": [1.0] * 20}, raising=False)
    with pytest.raises(ValueError, match=r"info.component_weights: .* 20 weights, not 21 positive ones"):
        evaluate_inverse(inv, fwd, shipped_test_set(), n_targets=3, n_draws=2, top_k=1, rank_by="r2")
