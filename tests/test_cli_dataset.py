"""``graded dataset`` in-process."""

from __future__ import annotations

import json

import numpy as np
from click.testing import CliRunner

from graded.cli.main import cli
from graded.inverse.dataset import chunk_designs, load_dataset


def run(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_generate_then_resume(tmp_path):
    out = tmp_path / "ds"
    r = run("dataset", str(out), "--n", "5", "--seed", "3", "--chunk-size", "3", "--workers", "1", "--json")
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert (res["n_samples"], res["chunks"], res["computed_chunks"], res["skipped_chunks"]) == (5, 2, 2, 0)
    assert res["samples_per_second"] > 0
    ds = load_dataset(out)
    assert len(ds) == 5 and ds.meta["seed"] == 3
    # the designs are the documented ones: chunk k from SeedSequence(seed, spawn_key=(k,))
    assert np.array_equal(ds.rho[3:], chunk_designs(3, 1, 2).rho)

    (out / "chunk_00001.npz").unlink()
    r = run("dataset", str(out), "--n", "5", "--seed", "3", "--chunk-size", "3", "--workers", "1")
    assert r.exit_code == 0, r.output
    assert "1 computed, 1 already present" in r.output
    again = load_dataset(out)
    assert np.array_equal(again.C, ds.C) and np.array_equal(again.C_ort, ds.C_ort)


def test_refuses_other_arguments_on_an_existing_dataset(tmp_path):
    out = tmp_path / "ds"
    assert run("dataset", str(out), "--n", "2", "--chunk-size", "2", "--workers", "1", "--no-progress").exit_code == 0
    r = run("dataset", str(out), "--n", "2", "--seed", "5", "--chunk-size", "2", "--workers", "1")
    assert r.exit_code == 2
    assert "seed = 0, not 5" in r.output


def test_bad_arguments_exit_2(tmp_path):
    r = run("dataset", str(tmp_path / "x"), "--n", "0")
    assert r.exit_code == 2 and "n: 0 is not an integer >= 1" in r.output
    r = run("dataset", str(tmp_path / "y"), "--n", "3", "--workers", "0")
    assert r.exit_code == 2 and "workers" in r.output
    (tmp_path / "z").mkdir()
    (tmp_path / "z" / "mine.txt").write_text("x")
    r = run("dataset", str(tmp_path / "z"), "--n", "3")
    assert r.exit_code == 2 and "not empty" in r.output


def test_help_names_the_reproducing_command():
    r = run("dataset", "--help")
    assert r.exit_code == 0
    assert "graded dataset datasets/train --n 200000 --seed 0 --chunk-size 2000" in r.output
