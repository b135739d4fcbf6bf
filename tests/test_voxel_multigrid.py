"""The multigrid preconditioner of the voxel FE (graded.fem.voxel_multigrid)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from graded.fem.voxel import OFFSETS, _Operator, homogenize_voxels
from graded.fem.voxel_multigrid import VoxelMultigrid, _prolong, _restrict
from graded.spinodoid import SpinodoidDesign, generate_cell

#: Two solves of the same system to rtol 1e-11 (stiffness error quadratic in it).
SAME_PROBLEM = 1e-9
TIGHT = 1e-11
#: Round-off of float64 products of a few hundred terms.
ROUND_OFF = 1e-12

LAMELLAR = SpinodoidDesign(rho=0.3, theta=(0.0, 0.0, 30.0))


def rel(a, b) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


@settings(max_examples=25, deadline=None)
@given(st.tuples(*[st.sampled_from([2, 3, 4, 6]) for _ in range(3)]), st.integers(0, 2**31 - 1))
def test_restriction_is_the_transpose_of_prolongation(m, seed):
    g = torch.Generator().manual_seed(seed)
    u = torch.randn((2, *m), generator=g, dtype=torch.float64)
    f = torch.randn((2, *(2 * k for k in m)), generator=g, dtype=torch.float64)
    lhs = float((_prolong(u) * f).sum())
    rhs = float((u * _restrict(f)).sum())
    assert lhs == pytest.approx(rhs, rel=ROUND_OFF, abs=ROUND_OFF)


def test_prolongation_interpolates_linear_fields_and_keeps_constants():
    x = torch.arange(4, dtype=torch.float64)[:, None, None].expand(4, 4, 4)
    fine = _prolong(x)
    # inside the period the interpolant of a linear field is the field at the fine nodes
    assert torch.allclose(fine[:7, 1, 2], torch.arange(7, dtype=torch.float64) / 2)
    ones = torch.ones((1, 3, 2, 5, 4), dtype=torch.float64)
    assert torch.equal(_prolong(ones), torch.ones((1, 3, 4, 10, 8), dtype=torch.float64))


def _random_cell(n: int, seed: int) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    E = rng.uniform(0.2, 1.0, (1, n, n, n)) * (rng.random((1, n, n, n)) < 0.6)
    return torch.as_tensor(E)


def _hierarchy(E: torch.Tensor, periodic: bool = True):
    solid = (E > 0).to(torch.float64)
    touch = sum(torch.roll(solid, shifts=tuple(int(o) for o in off), dims=(1, 2, 3)) for off in OFFSETS)
    mask = (touch > 0).reshape(1, 1, 1, *E.shape[1:]).to(torch.float64)
    op = _Operator(E, 0.3, mask, 1 << 28, periodic=periodic)
    mg = VoxelMultigrid(op.apply, E, op.K0_cm, mask, not periodic, torch.Generator().manual_seed(0),
                        dtype=torch.float64)
    return op, mg, mask


def test_coarse_voxel_matrices_are_the_galerkin_product():
    # P^T K P applied to a coarse field, with P the trilinear prolongation, against the coarse
    # grid's own element matrices, on two levels of a cell with void and varying moduli
    E = _random_cell(16, 3)
    op, mg, _ = _hierarchy(E)
    assert [lvl.shape for lvl in mg.levels] == [(16, 16, 16), (8, 8, 8), (4, 4, 4)]
    g = torch.Generator().manual_seed(1)
    uc = torch.randn((1, 2, 3, 8, 8, 8), generator=g, dtype=torch.float64)
    galerkin = _restrict(op.apply(_prolong(uc)))
    coarse = mg.levels[1]._apply(uc)
    assert rel(coarse.numpy(), galerkin.numpy()) < ROUND_OFF
    ucc = torch.randn((1, 2, 3, 4, 4, 4), generator=g, dtype=torch.float64)
    twice = _restrict(_restrict(op.apply(_prolong(_prolong(ucc)))))
    assert rel(mg.levels[2]._apply(ucc).numpy(), twice.numpy()) < ROUND_OFF


@pytest.mark.parametrize("periodic", [True, False])
def test_v_cycle_is_symmetric_positive_definite(periodic):
    E = _random_cell(16, 5)
    op, mg, mask = _hierarchy(E, periodic)
    if not periodic:
        mask = mg.levels[0].mask
    g = torch.Generator().manual_seed(2)

    def vec():
        v = torch.randn((1, 1, 3, 16, 16, 16), generator=g, dtype=torch.float64) * mask
        return op._project(v) if periodic else v

    a, b = vec(), vec()
    ab = float((mg(a) * b).sum())
    ba = float((a * mg(b)).sum())
    assert ab == pytest.approx(ba, rel=1e-10)
    assert float((mg(a) * a).sum()) > 0


@pytest.mark.parametrize("bc", ["periodic", "affine"])
def test_multigrid_and_fft_solve_the_same_problem(bc):
    cell = generate_cell(SpinodoidDesign(rho=0.4, theta=(0.0, 30.0, 30.0)), 16, np.random.default_rng(4))
    a = homogenize_voxels(cell.solid, bc=bc, rtol=TIGHT, preconditioner="multigrid")
    b = homogenize_voxels(cell.solid, bc=bc, rtol=TIGHT, preconditioner="fft")
    assert a.converged.all() and b.converged.all()
    assert rel(a.C[0], b.C[0]) < SAME_PROBLEM


def test_multigrid_laminate_to_closed_form_precision():
    # two solids in layers along z: the FFT path matches the closed form to 1e-10 (test_voxel)
    E = np.ones((8, 8, 8))
    E[:, :, 3:] = 0.1
    a = homogenize_voxels(E, rtol=TIGHT, preconditioner="multigrid")
    b = homogenize_voxels(E, rtol=TIGHT, preconditioner="fft")
    assert rel(a.C[0], b.C[0]) < 1e-10


def test_multigrid_iterations_do_not_grow_with_resolution_and_beat_fft_on_thin_walls():
    # measured: 16^3 / 32^3 lamellar cells 96 / 143 iterations with multigrid, 503 with FFT at 32^3
    its = {}
    for n in (16, 32):
        cell = generate_cell(LAMELLAR, n, np.random.default_rng(0))
        its[n] = int(homogenize_voxels(cell.solid, preconditioner="multigrid").iterations[0])
    fft = int(homogenize_voxels(generate_cell(LAMELLAR, 32, np.random.default_rng(0)).solid,
                                preconditioner="fft").iterations[0])
    assert its[32] < 1.6 * its[16]
    assert its[32] < fft / 3


def test_preconditioner_is_checked():
    with pytest.raises(ValueError, match="^preconditioner: 'amg' is not one of"):
        homogenize_voxels(np.ones((4, 4, 4)), preconditioner="amg")
    with pytest.raises(ValueError, match="^preconditioner: 'multigrid' needs every side"):
        homogenize_voxels(np.ones((6, 6, 6)), preconditioner="multigrid")
