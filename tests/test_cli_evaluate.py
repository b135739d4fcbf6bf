"""``graded evaluate inverse``: the report as a table and as --json; bad counts are one-line
errors with exit code 2."""

from __future__ import annotations

import json
from importlib import resources

import pytest
from click.testing import CliRunner

from graded.cli.main import cli


@pytest.fixture(scope="module")
def testset() -> str:
    with resources.as_file(resources.files("graded.inverse") / "data" / "testset") as p:
        return str(p)


def test_evaluate_inverse_reports_network_and_refined_figures(testset):
    args = ["evaluate", "inverse", testset, "--targets", "4", "--draws", "3", "--top-k", "1", "--rank-by", "mandel",
            "--refine-steps", "4", "--no-progress", "--threads", "1", "--bone-targets", "0"]
    res = CliRunner().invoke(cli, args + ["--json"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    assert d["n"] == 4 and d["settings"]["refine_steps"] == 4 and d["settings"]["tau_best"] == 6.0
    assert set(d["r2_single_refined_fe"]) == set(d["r2_single_fe"]) and len(d["r2_best_refined_fe"]) == 21
    assert d["err_best_refined_fe"]["median"] <= d["err_best_fe"]["median"] + 1e-12
    assert d["settings"]["heads"] == "forward"
    table = CliRunner().invoke(cli, args)
    assert table.exit_code == 0 and "1 draw+GD, FE" in table.output and "after 4 gradient steps" in table.output
    assert "the one the forward model puts nearest the target" in table.output
    post = CliRunner().invoke(cli, args + ["--heads", "posterior"])
    assert post.exit_code == 0 and "drawn from G2's head posterior" in post.output


def test_evaluate_inverse_refuses_a_negative_step_count(testset):
    res = CliRunner().invoke(cli, ["evaluate", "inverse", testset, "--targets", "3", "--refine-steps", "-2",
                                   "--no-progress", "--bone-targets", "0"])
    assert res.exit_code == 2
    assert "refine_steps: -2 is not an integer >= 0" in res.output and "Traceback" not in res.output


def test_evaluate_inverse_r2_selection_uses_the_shipped_training_weights(testset):
    res = CliRunner().invoke(cli, ["evaluate", "inverse", testset, "--targets", "4", "--draws", "3", "--top-k", "2",
                                   "--rank-by", "r2", "--no-progress", "--threads", "1", "--json",
                                   "--bone-targets", "0"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    assert d["settings"]["rank_by"] == "r2" and d["settings"]["r2_weights_from"] == "training targets"
    bad = CliRunner().invoke(cli, ["evaluate", "inverse", testset, "--rank-by", "frobenius", "--no-progress"])
    assert bad.exit_code == 2 and "frobenius" in bad.output


@pytest.mark.slow
def test_evaluate_inverse_also_reports_graded_design_on_the_bone_like_set():
    """No TESTSET: the shipped one; --bone-targets 1 designs the first bone-like target with
    `graded design` (here with few draws) and reports its FE error beside the random set."""
    from graded.inverse.bone import shipped_bone_targets

    args = ["evaluate", "inverse", "--targets", "2", "--draws", "2", "--top-k", "1", "--rank-by", "mandel",
            "--no-progress", "--threads", "1", "--bone-targets", "1", "--bone-draws", "50", "--json"]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    assert d["n"] == 2 and d["bone"]["n"] == 1 and d["bone"]["settings"] == {"n_draws": 50, "seed": 0}
    row = d["bone"]["per_target"][0]
    assert row["name"] == shipped_bone_targets().names[0]
    assert 0 < row["error_fe"] == d["bone"]["error_fe"]["max"] < 0.5
    bad = CliRunner().invoke(cli, args[:-6] + ["--bone-targets=-1"])
    assert bad.exit_code == 2 and "--bone-targets" in bad.output


def test_design_report_table_and_json_carry_every_target():
    import numpy as np

    from graded.inverse.report import DesignReport

    rep = DesignReport(n=3, names=["a", "b", "c"], error_fe=np.array([0.02, 0.05, 0.03]), nmse_fe=np.ones(3),
                       topology=["1x1+1x1+1x1"] * 3, source=["model", "library", "screen"], seconds=np.ones(3),
                       settings={"n_draws": 50}, label="bone-like targets")
    d = rep.to_dict()
    assert d["error_fe"] == {"median": 0.03, "p90": pytest.approx(0.046), "max": 0.05}
    assert [r["source"] for r in d["per_target"]] == ["model", "library", "screen"]
    t = rep.table()
    assert "on 3 bone-like targets" in t and "median 3.00 %" in t and "max 5.00 %" in t and "n_draws=50" in t
