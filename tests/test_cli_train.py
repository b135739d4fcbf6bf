"""``graded train forward|inverse`` in-process: tiny networks on a tiny FE dataset."""

from __future__ import annotations

import json
import logging

from click.testing import CliRunner

from graded.cli.main import cli
from graded.inverse.weights import load_inverse, read_sidecar


def run(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_train_forward_then_inverse_records_the_recipe(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="graded")
    ds = tmp_path / "ds"
    assert run("dataset", str(ds), "--n", "24", "--seed", "4", "--workers", "1", "--no-progress").exit_code == 0
    r = run("train", "forward", str(ds), "--out", str(tmp_path / "f"), "--f1-widths", "8", "--f2-widths", "8",
            "--epochs", "1", "1", "--batch-size", "8", "--threads", "1", "--no-progress", "--json")
    assert r.exit_code == 0, r.output
    r = run("-v", "train", "inverse", str(ds), "--forward", str(tmp_path / "f"), "--out", str(tmp_path / "g"),
            "--g1-widths", "8", "--g2-widths", "8", "--epochs", "2", "--batch-size", "8", "--threads", "1",
            "--posterior-weight", "0.5", "--no-progress", "--json")
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert res["epochs"] == 2 and res["val_loss"] > 0
    # every epoch's losses are logged (-v), not only drawn into a terminal bar
    assert "G epoch 1: train" in caplog.text and "G epoch 2: train" in caplog.text
    side = read_sidecar(tmp_path / "g", kind="inverse")
    assert side["info"]["posterior_weight"] == 0.5
    assert side["info"]["forward_sha256"] == read_sidecar(tmp_path / "f", kind="forward")["sha256"]
    # the library's defaults: the shipped model's recipe
    assert side["info"]["metric"] == "r2" and side["info"]["size_weight"] == 2.0
    assert load_inverse(tmp_path / "g").config.n_heads == 4
    # existing weights are not replaced without --force; the check comes before any training
    stamp = (tmp_path / "g.safetensors").stat().st_mtime_ns
    r = CliRunner().invoke(cli, ["train", "inverse", str(ds), "--forward", str(tmp_path / "f"), "--out",
                                 str(tmp_path / "g"), "--epochs", "1", "--threads", "1", "--no-progress"])
    assert r.exit_code == 2 and "--out: " in r.output and "--force" in r.output
    assert (tmp_path / "g.safetensors").stat().st_mtime_ns == stamp
    r = run("train", "inverse", str(ds), "--forward", str(tmp_path / "f"), "--out", str(tmp_path / "g2"),
            "--g1-widths", "8", "--g2-widths", "8", "--epochs", "1", "--threads", "1", "--heads", "1",
            "--metric", "mandel", "--no-progress")
    assert r.exit_code == 0, r.output
    # widening a one-head model into several geometry heads records where it started
    r = run("train", "inverse", str(ds), "--forward", str(tmp_path / "f"), "--out", str(tmp_path / "g3"),
            "--init", str(tmp_path / "g2"), "--heads", "2", "--head-eps", "0.1", "--epochs", "1", "--threads", "1",
            "--no-progress")
    assert r.exit_code == 0, r.output
    assert load_inverse(tmp_path / "g3").config.n_heads == 2
    info = read_sidecar(tmp_path / "g3", kind="inverse")["info"]
    assert info["n_heads"] == 2 and info["head_eps"] == 0.1
    assert info["init"]["sha256"] == read_sidecar(tmp_path / "g2", kind="inverse")["sha256"]
    # a several-head model cannot be re-widened
    r = CliRunner().invoke(cli, ["train", "inverse", str(ds), "--forward", str(tmp_path / "f"), "--out",
                                 str(tmp_path / "g4"), "--init", str(tmp_path / "g3"), "--heads", "3",
                                 "--epochs", "1", "--threads", "1", "--no-progress"])
    assert r.exit_code == 2 and "n_heads: 3 differs from the model's 2" in r.output


def test_train_without_out_refuses_to_replace_the_shipped_weights():
    from graded.inverse.weights import WEIGHTS_DIR

    before = (WEIGHTS_DIR / "forward.safetensors").stat().st_mtime_ns
    for kind in ("forward", "inverse"):
        r = CliRunner().invoke(cli, ["train", kind, ".", "--no-progress"])
        assert r.exit_code == 2 and "(the shipped weights)" in r.output and "--force" in r.output, r.output
    assert (WEIGHTS_DIR / "forward.safetensors").stat().st_mtime_ns == before
