"""The voxel-cell FE dataset (graded.inverse.voxelcell.dataset): the same bits for any number of
workers and on Dask, resume, temporary files, regenerated cells, labels, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from graded.cli.main import cli
from graded.inverse.spinodoid.dataset import load_spinodoid_dataset
from graded.inverse.voxelcell.dataset import (
    FAMILY_CODES,
    expand_octants,
    generate_voxel_dataset,
    load_voxel_dataset,
    pack_octants,
    regenerate_cell,
    sample_rng,
    unpack_octants,
    voxel_bounds,
)
from graded.validation import ValidationError
from graded.voxelcell import GeneratorSettings, cubic_labels, generate_cell

N, CHUNK, SEED = 6, 3, 5  # two chunks of three
#: 16^3 keeps the FE fast; volume fractions from 0.35 are accepted in a few draws there.
RES = 16
SETTINGS = GeneratorSettings(rho_range=(0.35, 0.6))
BOUNDS = voxel_bounds(SETTINGS, RES)
ARRAYS = ("octants", "values", "family", "iterations", "converged", "rejected")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Small grids solve fastest on one thread (more only contend on a shared machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    path = tmp_path_factory.mktemp("ref") / "data"
    generate_voxel_dataset(path, N, SEED, chunk_size=CHUNK, workers=1, bounds=BOUNDS)
    return path


@pytest.fixture(scope="module")
def reference(written):
    return load_voxel_dataset(written)


def _same(a, b) -> bool:
    return all(np.array_equal(getattr(a, k), getattr(b, k)) for k in ARRAYS)


def _generate(path, **kwargs):
    return generate_voxel_dataset(path, N, SEED, chunk_size=CHUNK, bounds=BOUNDS, **kwargs)


def test_dataset_holds_what_the_format_says(written, reference):
    ds = reference
    assert len(ds) == N and ds.resolution == RES
    assert ds.octants.shape == (N, RES // 2, RES // 2, RES // 2) and ds.octants.dtype == bool
    assert ds.values.shape == (N, 4) and ds.values.dtype == np.float64
    assert ds.family.dtype == np.int8 and set(ds.family_names) <= set(FAMILY_CODES)
    assert ds.converged.all() and (ds.iterations > 0).all() and (ds.rejected >= 0).all()
    assert ds.meta["format"] == "graded-voxel-dataset" and ds.meta["format_version"] == 1
    assert ds.meta["bounds"] == BOUNDS and ds.meta["fe"]["load_cases"] == [0, 3]
    assert (ds.values[:, 3] >= 0.35 - 24 / RES**3).all()
    # on disk the octants are bit-packed, h^3 / 8 bytes per sample
    with np.load(written / "chunk_00001.npz") as npz:
        assert npz["octant"].shape == (CHUNK, (RES // 2) ** 3 // 8) and npz["octant"].dtype == np.uint8
        assert npz["header"].tolist() == [1, SEED, 1, CHUNK, CHUNK]
        assert np.array_equal(unpack_octants(npz["octant"], RES // 2), ds.octants[CHUNK:])


def test_one_or_two_workers_and_dask_give_the_same_bits(reference, tmp_path):
    s = _generate(tmp_path / "pool", workers=2)
    assert (s.computed, s.workers) == (2, 2)
    assert _same(load_voxel_dataset(tmp_path / "pool"), reference)
    pytest.importorskip("distributed")
    s = _generate(tmp_path / "dask", workers=2, scheduler="local")
    assert s.computed == 2 and s.scheduler.startswith("tcp://")
    assert _same(load_voxel_dataset(tmp_path / "dask"), reference)


def test_resume_recomputes_only_the_missing_chunk(written, reference, tmp_path):
    out = tmp_path / "d"
    out.mkdir()
    for p in written.iterdir():
        (out / p.name).write_bytes(p.read_bytes())
    (out / "chunk_00001.npz").unlink()
    before = (out / "chunk_00000.npz").stat().st_mtime_ns
    s = _generate(out, workers=1)
    assert (s.computed, s.skipped, s.computed_samples) == (1, 1, CHUNK)
    assert (out / "chunk_00000.npz").stat().st_mtime_ns == before
    assert _same(load_voxel_dataset(out), reference)
    with pytest.raises(ValidationError, match="holds a dataset with bounds"):
        generate_voxel_dataset(out, N, SEED, chunk_size=CHUNK, workers=1, bounds=voxel_bounds(resolution=RES))


def test_temporary_and_half_written_chunks_are_never_read(written, reference, tmp_path):
    out = tmp_path / "d"
    out.mkdir()
    (out / "meta.json").write_bytes((written / "meta.json").read_bytes())
    (out / "chunk_00000.npz").write_bytes((written / "chunk_00000.npz").read_bytes())
    # a killed writer's temporary file holding a whole, valid chunk: still not a chunk
    (out / ".tmp-chunk_00001.npz.partial").write_bytes((written / "chunk_00001.npz").read_bytes())
    with pytest.raises(ValidationError, match=r"chunk 1 \(chunk_00001.npz\) is missing"):
        load_voxel_dataset(out)
    # a chunk cut off mid-write under its final name is refused, not read
    (out / "chunk_00001.npz").write_bytes((written / "chunk_00001.npz").read_bytes()[:200])
    with pytest.raises(ValidationError, match="chunk 1 .* cannot be read"):
        load_voxel_dataset(out)
    s = _generate(out, workers=1)
    assert (s.computed, s.skipped) == (1, 1)
    assert not [p for p in out.iterdir() if p.name.startswith(".tmp-")]
    assert _same(load_voxel_dataset(out), reference)


def test_every_sample_is_regenerated_from_seed_chunk_and_index(reference):
    ds = reference
    for i in range(N):
        k, j = ds.location(i)
        assert (k, j) == divmod(i, CHUNK)
        cell = regenerate_cell(SEED, k, j, BOUNDS)
        assert np.array_equal(cell.octant, ds.octants[i])
        assert FAMILY_CODES[ds.family[i]] == cell.family and ds.rejected[i] == len(cell.rejected)
        assert ds.values[i, 3] == cell.volume_fraction
    # the documented generator: SeedSequence(seed, spawn_key=(k, j))
    rng = np.random.default_rng(np.random.SeedSequence(SEED, spawn_key=(1, 2)))
    assert np.array_equal(generate_cell(RES, rng, SETTINGS).solid, ds.solids(5)[0])
    assert np.array_equal(ds.cell(4).solid, generate_cell(RES, sample_rng(SEED, 1, 1), SETTINGS).solid)
    with pytest.raises(ValidationError, match="i: 6 is not below the 6 samples"):
        ds.location(N)


def test_labels_are_the_cubic_labels_of_the_expanded_cells(reference):
    ds = reference
    solids = ds.solids()
    assert solids.shape == (N, RES, RES, RES)
    labels = cubic_labels(solids)
    np.testing.assert_array_equal(labels.values, ds.values)
    np.testing.assert_array_equal(labels.iterations, ds.iterations)
    assert np.array_equal(ds.labels.C44, ds.values[:, 2])
    sub = ds.subset(ds.family == ds.family[0])
    assert len(sub) == int((ds.family == ds.family[0]).sum()) and sub.meta is ds.meta


def test_octant_packing_round_trips_and_refuses_bad_input():
    rng = np.random.default_rng(0)
    octants = rng.random((3, 6, 6, 6)) < 0.5
    assert np.array_equal(unpack_octants(pack_octants(octants), 6), octants)
    odd = rng.random((2, 5, 5, 5)) < 0.5  # 125 bits: padded to 16 bytes
    assert pack_octants(odd).shape == (2, 16) and np.array_equal(unpack_octants(pack_octants(odd), 5), odd)
    with pytest.raises(ValidationError, match="octants"):
        pack_octants(octants.astype(np.uint8))
    with pytest.raises(ValidationError, match="packed"):
        unpack_octants(pack_octants(octants), 8)
    with pytest.raises(ValidationError, match="octant"):
        expand_octants(octants)  # not permutation-symmetric


def test_bad_bounds_and_foreign_directories_are_refused(written, tmp_path):
    with pytest.raises(ValidationError, match="bounds.resolution: 15 voxels per edge is odd"):
        generate_voxel_dataset(tmp_path / "a", 1, 0, bounds={**BOUNDS, "resolution": 15})
    with pytest.raises(ValidationError, match="bounds.rho_range"):
        generate_voxel_dataset(tmp_path / "b", 1, 0, bounds={**BOUNDS, "rho_range": [0.5, 1.5]})
    with pytest.raises(ValidationError, match="bounds: has the keys"):
        generate_voxel_dataset(tmp_path / "c", 1, 0, bounds={"resolution": 16})
    with pytest.raises(ValidationError, match="not a graded spinodoid dataset"):
        load_spinodoid_dataset(written)


def test_cli_family_voxel(tmp_path):
    out = tmp_path / "cli"
    args = ["dataset", str(out), "--family", "voxel", "--resolution", str(RES), "--n", "2", "--seed", "3",
            "--chunk-size", "2", "--workers", "1", "--no-progress", "--json"]
    r = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert (res["n_samples"], res["chunks"], res["computed_chunks"], res["skipped_chunks"]) == (2, 1, 1, 0)
    assert res["samples_per_second"] > 0 and res["workers"] == 1 and res["scheduler"] is None
    ds = load_voxel_dataset(out)
    assert len(ds) == 2 and ds.meta["seed"] == 3 and ds.meta["bounds"] == voxel_bounds(resolution=RES)
    assert np.array_equal(ds.cell(1).octant, ds.octants[1])
    r = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert r.exit_code == 0 and json.loads(r.stdout)["skipped_chunks"] == 1


def test_cli_refusals(tmp_path):
    def run(*args):
        return CliRunner().invoke(cli, ["dataset", str(tmp_path / "x"), "--n", "1", *args])

    r = run("--family", "voxel", "--resolution", "15")
    assert r.exit_code == 2 and "--resolution: 15 voxels per edge is odd" in r.output
    r = run("--resolution", "16")
    assert r.exit_code == 2 and "--resolution: applies to --family voxel only" in r.output
    r = run("--device", "cpu")
    assert r.exit_code == 2 and "--device: applies to --family spinodoid and voxel only" in r.output
    assert not (tmp_path / "x").exists()
    r = CliRunner().invoke(cli, ["dataset", "--help"])
    assert "graded dataset datasets/voxel-train --family voxel" in r.output
