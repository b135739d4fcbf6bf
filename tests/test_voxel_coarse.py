"""Aggregation coarse space of the voxel solver (graded.fem.voxel_coarse)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from graded.fem import voxel
from graded.fem.voxel import homogenize_voxels
from graded.fem.voxel_coarse import coarse_block
from graded.spinodoid import SpinodoidDesign, generate_cell

#: Exact identities (Galerkin product, coarse solve) hold to float64 round-off of sums over a few
#: thousand voxels.
EXACT = 1e-10
#: Two solves of the same problem to rtol 1e-11: the stiffness error is quadratic in the residual.
SAME_PROBLEM = 1e-9
TIGHT = 1e-11


class _OneLevel(voxel._Operator):
    """The voxel operator with the FFT preconditioner alone (no coarse space)."""

    def add_coarse_space(self) -> None:
        pass


def _operator(solid: np.ndarray, bc: str = "periodic") -> voxel._Operator:
    E = torch.as_tensor(solid[None], dtype=torch.float64)
    touch = sum(torch.roll(E, shifts=tuple(int(o) for o in off), dims=(1, 2, 3)) for off in voxel.OFFSETS) > 0
    if bc == "affine":
        touch[:, 0], touch[:, :, 0], touch[:, :, :, 0] = False, False, False
    mask = touch.reshape(1, 1, 1, *solid.shape).to(torch.float64)
    op = voxel._Operator(E, 0.3, mask, 1 << 28, periodic=bc == "periodic")
    op.add_coarse_space()
    return op


def _bridged_plates(n: int = 8) -> np.ndarray:
    """Two one-voxel plates normal to z (voxel layers 0 and 2) joined by one column of voxels."""
    solid = np.zeros((n, n, n), dtype=bool)
    solid[:, :, 0] = solid[:, :, 2] = True
    solid[0, 0, 1] = True
    return solid


def test_block_edge_scales_with_the_grid():
    assert [coarse_block((n, n, n)) for n in (8, 16, 32, 64, 96, 128)] == [4, 4, 4, 8, 12, 16]
    assert coarse_block((96, 80, 64)) == 12


def test_aggregates_follow_the_solid_not_the_blocks():
    # plates at voxel layers 0 and 2 put their nodes (z = 0, 1 and 2, 3) in the same block of
    # 4 nodes, but no voxel joins them: every block holds two aggregates
    solid = np.zeros((8, 8, 8), dtype=bool)
    solid[:, :, 0] = solid[:, :, 2] = True
    cs = _operator(solid).coarse[0]
    assert cs.count == 2 * 2 * 2  # 2 x 2 blocks in the plane of the plates, two plates each
    z = np.unravel_index(cs.nodes.numpy(), solid.shape)[2]
    for g in range(cs.count):
        layers = set(z[cs.aggregate.numpy() == g].tolist())
        assert layers in ({0, 1}, {2, 3})
    # two separate plates are two floating pieces: one aggregate of each is pinned
    assert (~cs.free).sum() == 2 * 3


@pytest.mark.parametrize("bc", ["periodic", "affine"])
def test_coarse_operator_is_the_galerkin_product(bc):
    solid = _bridged_plates()
    op = _operator(solid, bc)
    cs = op.coarse[0]
    rng = np.random.default_rng(3)
    # (K Z)^T against the operator applied to aggregate indicators
    for col in rng.choice(3 * cs.count, size=8, replace=False):
        y = torch.zeros((3 * cs.count, 1), dtype=torch.float64)
        y[col] = 1.0
        w = torch.zeros((1, 1, 3, *solid.shape), dtype=torch.float64)
        cs.prolong_add(y, w[0].reshape(1, 3, -1))
        Kw = op.apply(w).reshape(-1)
        row = cs.KZt.to_dense()[col]
        assert torch.allclose(row, Kw, rtol=0, atol=EXACT * float(Kw.abs().max()))
        assert float(Kw.abs().max()) > 0
    # the coarse solve inverts Z^T K Z on the free unknowns: Z^T K Z y -> y for y zero on the
    # pinned ones (the gauge the solve picks)
    y = torch.as_tensor(rng.standard_normal((3 * cs.count, 2)))
    y[~torch.as_tensor(cs.free)] = 0.0
    w = torch.zeros((1, 2, 3, *solid.shape), dtype=torch.float64)
    cs.prolong_add(y, w[0].reshape(2, 3, -1))
    back = cs.solve(cs.restrict(op.apply(w)[0].reshape(2, 3, -1)))
    # one piece: periodic pins one aggregate (its translation), the fixed boundary holds it
    assert (~cs.free).sum() == (3 if bc == "periodic" else 0)
    assert torch.allclose(back, y, rtol=0, atol=EXACT * float(y.abs().max()))


@pytest.mark.parametrize(
    "case",
    ["lamellar", "bridged plates", "separate plates", "affine", "soft void"],
)
def test_two_levels_give_the_one_level_stiffness(case, monkeypatch):
    kwargs = {"rtol": TIGHT}
    if case == "lamellar":
        cells = generate_cell(SpinodoidDesign(rho=0.3, theta=(0.0, 0.0, 30.0)), 16, np.random.default_rng(1)).solid
    elif case == "bridged plates":
        cells = _bridged_plates()
    elif case == "separate plates":
        cells = _bridged_plates()
        cells[0, 0, 1] = False
    elif case == "affine":
        cells = generate_cell(SpinodoidDesign(rho=0.4, theta=(0.0, 30.0, 30.0)), 16, np.random.default_rng(2)).solid
        kwargs["bc"] = "affine"
    else:
        cells = generate_cell(SpinodoidDesign(rho=0.4, theta=(0.0, 30.0, 30.0)), 16, np.random.default_rng(2)).solid
        kwargs["contrast"] = 1e-3
    monkeypatch.setattr(voxel, "COARSE_AT_ONCE", 0)  # both levels from the start on any grid
    two = homogenize_voxels(cells, **kwargs)
    monkeypatch.setattr(voxel, "_Operator", _OneLevel)
    one = homogenize_voxels(cells, **kwargs)
    assert two.converged.all() and one.converged.all()
    assert np.abs(two.C - one.C).max() <= SAME_PROBLEM * np.abs(one.C).max()


@pytest.mark.parametrize("at_once", [True, False])
def test_coarse_space_cuts_lamellar_iterations(at_once, monkeypatch):
    # thin plates sliding on one another: the soft mode the uniform-solid FFT preconditioner
    # misses. Measured at 32^3: 428 iterations without the coarse space, 99 with it from the
    # start, 111 when the probe of the first iterations switches it on
    cell = generate_cell(SpinodoidDesign(rho=0.3, theta=(0.0, 0.0, 30.0)), 24, np.random.default_rng(0)).solid
    monkeypatch.setattr(voxel, "COARSE_AT_ONCE", 0 if at_once else 10**9)
    two = homogenize_voxels(cell)
    monkeypatch.setattr(voxel, "_Operator", _OneLevel)
    one = homogenize_voxels(cell)
    assert two.iterations[0] < 0.4 * one.iterations[0]
    assert np.abs(two.C - one.C).max() <= 1e-6 * np.abs(one.C).max()


def test_fast_cells_stay_on_one_level(monkeypatch):
    # an isotropic spinodoid converges in about 40 iterations with the FFT step alone: the probe
    # keeps it there (the coarse level would cost about what it saves)
    built = []
    original = voxel._Operator.add_coarse_space

    def spy(self):
        built.append(True)
        original(self)

    monkeypatch.setattr(voxel._Operator, "add_coarse_space", spy)
    cell = generate_cell(SpinodoidDesign(rho=0.5, theta=(90.0, 90.0, 90.0)), 24, np.random.default_rng(0)).solid
    iso = homogenize_voxels(cell)
    assert not built and iso.converged.all() and iso.iterations[0] < voxel.COARSE_WORTH
    lam = generate_cell(SpinodoidDesign(rho=0.3, theta=(0.0, 0.0, 30.0)), 24, np.random.default_rng(0)).solid
    homogenize_voxels(lam)
    assert built
