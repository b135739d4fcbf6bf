"""``graded design``: targets as 21 constants, a 6x6 or a CSV row; table, --json, --plot;
errors as one-line messages with exit code 2; warnings on stderr."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from graded.cli.main import cli
from graded.elastic import from_21
from graded.inverse.forward import ForwardConfig, ForwardModel
from graded.inverse.inverse_model import InverseConfig, InverseModel
from graded.inverse.scaling import MinMax
from graded.inverse.weights import save_weights

BONE_CSV = Path(__file__).resolve().parents[1] / "examples" / "data" / "trabecular_bone_stiffness.csv"
BONE_A = [0.573, 0.234, 0.219, -0.006, -0.015, 0.004, 0.64, 0.253, -0.005, -0.016, 0.006, 1.26,
          -0.017, 0.023, -0.003, 0.317, -0.017, -0.002, 0.246, 0.052, 0.224]


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> str:
    """Small untrained models saved like the shipped ones (the CLI machinery is under test)."""
    d = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    f = ForwardModel(ForwardConfig(f1_widths=[16], f2_widths=[16],
                                   f1_label=MinMax(np.full(9, 0.05), np.full(9, 0.5)),
                                   f2_label=MinMax(np.full(21, -0.05), np.full(21, 0.4))))
    g = InverseModel(InverseConfig(g1_widths=[16], g2_widths=[16]))
    save_weights(f, d / "forward", kind="forward", config=f.config.to_dict())
    save_weights(g, d / "inverse", kind="inverse", config=g.config.to_dict())
    return str(d)


def _run(*args):
    return CliRunner().invoke(cli, ["design", *args])


def test_21_constants_table_output(weights):
    r = _run(*map(str, BONE_A), "--weights", weights, "--draws", "200", "--top", "3", "--cell-size", "5")
    assert r.exit_code == 0, r.output
    assert "NMSE FE" in r.output and "best design vs target (GPa; FE)" in r.output
    lines = [ln for ln in r.output.splitlines() if ln[:3].strip() in ("1", "2", "3")]
    assert len(lines) == 3


def test_comma_separated_and_6x6_give_the_same_json(weights):
    a = _run(",".join(map(str, BONE_A)), "--weights", weights, "--draws", "100", "--top", "2", "--no-verify",
             "--json")
    six = from_21(np.array(BONE_A)).ravel()
    b = _run(*map(str, six), "--weights", weights, "--draws", "100", "--top", "2", "--no-verify", "--json")
    assert a.exit_code == 0 and b.exit_code == 0, a.output + b.output
    ja, jb = json.loads(a.stdout), json.loads(b.stdout)
    assert ja["designs"] == jb["designs"]
    assert ja["target"]["E_GPa"] == 114.0 and ja["designs"][0]["nmse_fe"] is None
    assert ja["target"]["normalized"]["C33"] == pytest.approx(1.26 / 114)


def test_csv_row_by_name_and_index_and_plot(weights, tmp_path):
    png = tmp_path / "surf.png"
    a = _run(str(BONE_CSV), "--row", "B", "--weights", weights, "--draws", "100", "--top", "2", "--json",
             "--plot", str(png))
    assert a.exit_code == 0, a.output
    assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    b = _run(str(BONE_CSV), "--row", "1", "--weights", weights, "--draws", "100", "--top", "2", "--json")
    assert json.loads(a.stdout)["designs"] == json.loads(b.stdout)["designs"]
    assert json.loads(a.stdout)["target"]["label"].endswith(":B")


def test_csv_with_several_rows_needs_row(weights):
    r = _run(str(BONE_CSV), "--weights", weights)
    assert r.exit_code == 2 and "--row" in r.output and "'A'" in r.output


def test_wrong_count_unit_mixup_and_inadmissible_are_usage_errors(weights):
    r = _run("0.1", "0.2", "0.3", "--weights", weights)
    assert r.exit_code == 2 and "TARGET: has 3 values" in r.output
    r = _run(*map(str, np.array(BONE_A) * 10), "--units", "normalized", "--weights", weights)
    assert r.exit_code == 2 and "look like GPa" in r.output
    # the message speaks the command's options, not the library's keywords
    assert "--units GPa" in r.output and "units='GPa'" not in r.output
    r = _run(*map(str, BONE_A), "--draws", "0", "--weights", weights)
    assert r.exit_code == 2 and "--draws:" in r.output and "n_draws" not in r.output
    bad = list(BONE_A)
    bad[1] = 5.0  # C12 far above sqrt(C11 C22)
    r = _run(*map(str, bad), "--weights", weights)
    assert r.exit_code == 2 and "not positive definite" in r.output


def test_out_of_reach_warning_goes_to_stderr_and_json(weights):
    iso = np.zeros((6, 6))
    iso[:3, :3] = 30.0
    iso[[0, 1, 2], [0, 1, 2]] = 90.0
    iso[[3, 4, 5], [3, 4, 5]] = 30.0
    r = _run(*map(str, iso.ravel()), "--weights", weights, "--draws", "50", "--top", "1", "--no-verify", "--json")
    assert r.exit_code == 0, r.output
    assert "TargetOutOfReachWarning" in r.stderr
    assert any("stiffer than any lattice" in w for w in json.loads(r.stdout)["warnings"])


def test_progress_goes_to_stderr_and_rank_by_is_reported(weights):
    import logging

    logging.getLogger("graded").setLevel(logging.INFO)
    try:
        r = _run(*map(str, BONE_A), "--weights", weights, "--draws", "100", "--top", "2", "--no-verify",
                 "--rank-by", "nmse", "--json")
    finally:
        logging.getLogger("graded").setLevel(logging.NOTSET)
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)  # stdout is the JSON alone: the progress bar writes to stderr
    assert out["settings"]["rank_by"] == "nmse"
    assert "designing" in r.stderr
    nm = [d["nmse_pred"] for d in out["designs"] if d["distinct"]]
    assert nm == sorted(nm)


def test_tampered_weights_are_an_error_not_a_crash(weights, tmp_path):
    import shutil

    d = tmp_path / "w"
    shutil.copytree(weights, d)
    p = d / "forward.safetensors"
    raw = bytearray(p.read_bytes())
    raw[-3] ^= 0x55
    p.write_bytes(bytes(raw))
    r = _run(*map(str, BONE_A), "--weights", str(d))
    assert r.exit_code == 2 and "SHA-256 does not match" in r.output


def test_design_says_how_far_it_is_from_a_recorded_optimum(weights, tmp_path, monkeypatch):
    from graded.inverse.design import parse_target
    from graded.inverse.exhaustive import ExhaustiveResult, known_optimum, record_optimum

    monkeypatch.setenv("GRADED_CACHE_DIR", str(tmp_path))
    args = [*map(str, BONE_A), "--weights", weights, "--draws", "20", "--top", "2", "--no-refine", "--screen", "0",
            "--library", "0", "--no-progress"]
    before = _run(*args)
    assert before.exit_code == 0, before.output
    assert "reachable optimum" not in before.output
    target = parse_target(BONE_A, E=114.0, units="GPa")
    first = json.loads(_run(*args, "--json").stdout)
    assert first["reachable_optimum"] is None
    best = first["designs"][0]
    stub = type("R", (), {"topology": best["topology"]})()
    record_optimum(target, ExhaustiveResult(results=[stub], optimum=0.01, cells_total=236, cells_polished=236,
                                            complete=True))
    assert known_optimum(target)["optimum"] == 0.01
    after = _run(*args)
    gap = 100 * (best["error_fe"] - 0.01)
    assert f"reachable optimum (exhaustive search, all lattices): 1.00 % ({best['topology']}); this design is " \
           f"{gap:+.2f} points from it" in after.output
    assert json.loads(_run(*args, "--json").stdout)["reachable_optimum"]["optimum"] == 0.01


@pytest.mark.slow
def test_exhaustive_option_records_the_optimum_within_its_budget(weights, tmp_path, monkeypatch):
    """A budget too small for any polish: the best verified start of the 236 lattices is
    reported and recorded as an incomplete search."""
    monkeypatch.setenv("GRADED_CACHE_DIR", str(tmp_path))
    res = _run(*map(str, BONE_A), "--weights", weights, "--exhaustive", "--budget", "0.001", "--workers", "1",
               "--top", "3", "--no-progress")
    assert res.exit_code == 0, res.output
    assert "exhaustive search: 0 of 236 lattices polished by FE (budget of 0.001 s spent)" in res.output
    rec = json.loads((tmp_path / "optima.json").read_text()).popitem()[1]
    assert rec["cells_total"] == 236 and rec["complete"] is False and rec["cells_polished"] == 0
    assert f"reachable optimum: {100 * rec['optimum']:.2f} % ({rec['topology']}; 0 of 236 lattices searched)" \
        in res.output


def test_max_error_says_the_truss_falls_short_and_offers_the_best_spinodoid(weights, tmp_path, monkeypatch):
    monkeypatch.setenv("GRADED_CACHE_DIR", str(tmp_path))
    args = [*map(str, BONE_A), "--weights", weights, "--draws", "20", "--top", "2", "--no-refine", "--screen", "0",
            "--library", "0", "--no-progress", "--realisations", "1"]
    doc = json.loads(_run(*args, "--max-error", "1e-6", "--json").stdout)
    verdict = doc["truss"]["max_error"]
    assert verdict["short"] is True and verdict["threshold"] == pytest.approx(1e-8)
    assert verdict["best_truss"] == pytest.approx(doc["truss"]["designs"][0]["error_fe"])
    assert doc["spinodoid"]["designs"] and doc["comparison"]["closer"] in ("truss", "spinodoid")
    # a threshold the best truss meets: no spinodoid, the verdict recorded
    loose = 100 * verdict["best_truss"] * 1.01
    assert loose < 100  # the small untrained models still land within 100 % after the FE polish
    ok = json.loads(_run(*args, "--max-error", f"{loose:.6g}", "--json").stdout)
    assert ok["max_error"]["short"] is False and "spinodoid" not in ok
    text = _run(*args, "--max-error", "1e-6")
    assert text.exit_code == 0, text.output
    assert (f"the best truss is {100 * verdict['best_truss']:.2f} % from the target, above --max-error 1e-06 %; "
            "`--exhaustive` tells whether any truss does. The best spinodoid for the same target:") in text.output
    assert "best spinodoid vs target" in text.output and "comparison: best truss" in text.output
    for extra, message in ((["--max-error", "0"], "--max-error: must be a percentage in (0, 100), not 0"),
                           (["--max-error", "5", "--family", "spinodoid"], "--max-error: applies to truss designs"),
                           (["--max-error", "5", "--no-verify"], "--max-error: compares the FE-verified best truss")):
        bad = _run(*args, *extra)
        assert bad.exit_code == 2 and message in bad.output
