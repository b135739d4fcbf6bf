"""The lattice screen and the exhaustive search: every lattice once, starts per lattice,
never worse than the starts, results that are what FE says of their designs."""

from __future__ import annotations

import numpy as np
import pytest

from graded.elastic import from_21
from graded.elastic.metrics import relative_error
from graded.inverse.dataset import shipped_test_set
from graded.inverse.design import design_results
from graded.inverse.exhaustive import (
    exhaustive_design,
    known_optimum,
    record_optimum,
    target_key,
)
from graded.inverse.inverse_model import TOPOLOGY_TRIPLES
from graded.inverse.library import build_library
from graded.inverse.oracle import fe_stiffness
from graded.inverse.refine import DESIGN_KEYS
from graded.inverse.screen import best_per_cell, cell_index, distinct_cells, lattice_starts
from graded.inverse.select import cell_key
from graded.validation import ValidationError

#: FE of the same design twice: the periodic beam solve is deterministic to round-off.
FE_REPEAT = 1e-10


@pytest.fixture(scope="module")
def data():
    ds = shipped_test_set()
    return ds, build_library(ds.subset(slice(100, 1100)))


def test_distinct_cells_are_every_lattice_once():
    reps, of_triple = distinct_cells()
    assert len(of_triple) == len(TOPOLOGY_TRIPLES) == 560
    keys = [cell_key(t) for t in reps]
    assert len(set(keys)) == len(reps) == 236  # representatives are distinct lattices
    triples = np.stack([TOPOLOGY_TRIPLES // 7 + 1, TOPOLOGY_TRIPLES % 7 + 1], axis=-1)
    for i in range(0, 560, 7):  # each triple's lattice is the one of its representative
        assert cell_key(triples[i]) == keys[of_triple[i]]


def test_grouping_the_lattices_reports_progress_and_is_done_once(monkeypatch):
    """The first screen of a process groups the 560 triples (seconds): it reports every GROUP_STEP triples."""
    import graded.inverse.screen as screen

    monkeypatch.setattr(screen, "_DISTINCT", {})
    calls = []
    reps, of_triple = distinct_cells(lambda d, t, m: calls.append((d, t, m)))
    assert [d for d, _, _ in calls] == list(range(screen.GROUP_STEP, 561, screen.GROUP_STEP))
    assert all(t == 560 and "part triples grouped into lattices" in m for _, t, m in calls)
    assert len(reps) == 236
    again = []
    assert distinct_cells(lambda *a: again.append(a))[0] is reps and not again  # cached: no work, no calls


def test_cell_index_ignores_the_order_of_the_parts():
    ds = shipped_test_set()
    topo = np.asarray(ds.topology[:50])
    shuffled = topo[:, ::-1]
    idx = cell_index(topo)
    assert np.array_equal(idx, cell_index(shuffled))
    reps, _ = distinct_cells()
    assert all(cell_key(reps[c]) == cell_key(t) for c, t in zip(idx, topo))


def test_best_per_cell_groups_by_cell_best_cell_first():
    err = np.array([0.5, 0.1, 0.3, 0.2, 0.9, 0.05])
    cell = np.array([2, 1, 1, 2, 3, 2])
    assert best_per_cell(err, cell, 1).tolist() == [5, 1, 4]
    assert best_per_cell(err, cell, 2).tolist() == [5, 3, 1, 2, 4]


def test_nearest_per_group_is_the_brute_force_nearest_within_each_group(data):
    ds, lib = data
    target = from_21(ds.C[3])
    group = cell_index(lib.topology)
    nb = lib.nearest_per_group(target, group, 2)
    assert np.all(np.diff(nb["group"]) >= 0)
    _, counts = np.unique(nb["group"], return_counts=True)
    assert counts.max() <= 2
    every = lib.nearest(target[None], len(lib))
    for g in np.unique(nb["group"])[:20]:
        mine = nb["distance"][nb["group"] == g]
        theirs = np.sort(every["distance"][0][cell_index(every["topology"][0]) == g])[:2]
        assert np.allclose(mine, theirs, rtol=0, atol=1e-12)


def test_lattice_starts_cover_the_chosen_lattices_and_are_verified_by_fe(data, models):
    ds, lib = data
    inv, _ = models
    target = from_21(ds.C[5])
    cells = [0, 17, 101]
    st = lattice_starts(target, inv, n_library=2, library=lib, cells=cells)
    assert set(st["cell"].tolist()) == set(cells)
    assert np.sum(st["source"] == "model") == 3 * inv.config.n_heads
    assert np.all(cell_index(st["topology"]) == st["cell"])
    again = fe_stiffness(*(st[k] for k in DESIGN_KEYS))
    assert np.abs(again - st["C_fe"]).max() <= FE_REPEAT * np.abs(again).max()
    assert np.allclose(st["error"], relative_error(target, st["C_fe"]), rtol=0, atol=0)


@pytest.mark.parametrize("workers", [1, 2])
def test_exhaustive_search_is_never_worse_than_its_starts_and_honest(data, models, workers):
    ds, lib = data
    inv, fwd = models
    target = from_21(ds.C[7])
    cells = np.unique(np.concatenate([cell_index(ds.topology[7:8]), [3, 50]]))
    st = lattice_starts(target, inv, n_library=2, library=lib, cells=cells)
    res = exhaustive_design(target, models=(inv, fwd), library=lib, n_library=2, starts=2, final=2, cells=cells,
                            workers=workers, budget_s=120, with_design=False)
    assert res.complete and res.cells_polished == res.cells_total == len(cells)
    assert res.optimum <= st["error"].min() + 1e-15
    assert res.optimum == res.results[0].error_fe == min(r.error_fe for r in res.results)
    assert {int(c) for c in cell_index(np.array([_parts(r.topology) for r in res.results]))} <= set(cells.tolist())
    best = res.results[0]
    C = fe_stiffness(_parts(best.topology)[None], [best.rho], best.U[None], best.V[None], best.R1[None],
                     best.R2[None])[0]
    assert np.abs(C - best.C_fe).max() <= FE_REPEAT * np.abs(C).max()


def test_exhaustive_search_out_of_time_keeps_the_best_starts(data, models):
    ds, lib = data
    inv, fwd = models
    target = from_21(ds.C[9])
    cells = [4, 40]
    st = lattice_starts(target, inv, n_library=1, library=lib, cells=cells)
    res = exhaustive_design(target, models=(inv, fwd), library=lib, n_library=1, final=0, cells=cells, workers=1,
                            budget_s=1e-9, with_design=False)
    assert not res.complete and res.cells_polished == 0
    assert res.optimum == pytest.approx(st["error"].min(), rel=1e-12)
    with pytest.raises(ValidationError, match="cells"):
        exhaustive_design(target, models=(inv, fwd), library=lib, cells=[999], workers=1, with_design=False)


def test_recorded_optimum_is_found_again_for_the_same_target_only(data, models, tmp_path):
    ds, lib = data
    inv, fwd = models
    target = from_21(ds.C[11])
    res = exhaustive_design(target, models=(inv, fwd), library=lib, n_library=1, final=0, cells=[2], workers=1,
                            with_design=False)
    path = tmp_path / "optima.json"
    assert known_optimum(target, path) is None
    record_optimum(target, res, path)
    noisy = target * (1 + 1e-9)  # a CSV round trip
    got = known_optimum(noisy, path)
    assert got["optimum"] == res.optimum and got["topology"] == res.results[0].topology
    assert known_optimum(target * 1.01, path) is None
    assert target_key(target) == target_key(noisy) != target_key(target * 1.01)


def _parts(topology: str) -> np.ndarray:
    from graded.topology import parse_topology

    return np.array(parse_topology(topology), dtype=np.int8)


def test_design_results_builds_one_result_per_design(data):
    ds, _ = data
    target = from_21(ds.C[0])
    pick = {k: np.asarray(getattr(ds, k)[:2]) for k in DESIGN_KEYS}
    pick["C_pred"] = pick["C_fe"] = from_21(ds.C[:2])
    pick["nmse"] = pick["nmse_fe"] = np.zeros(2)
    pick["source"] = np.array(["model", "screen"], dtype=object)
    res = design_results(pick, np.zeros(2, dtype=bool), target, E=None, cell_size=None)
    assert [r.source for r in res] == ["model", "screen"] and res[0].error_fe == 0.0
