"""Accuracy of the spinodoid models against our own voxel FE.

* :func:`evaluate_spinodoid_forward`: R^2 of the nine orthotropic constants on held-out FE
  labels (and of the 21 constants of randomly rotated cells, through the Bond matrix);
* :func:`evaluate_spinodoid_inverse`: inverse design of held-out FE stiffnesses, each rotated
  by a random rotation (so the frame search is tested too), every returned design verified by
  FE; the error of the best design per target (of the mean of its cells, and of its kept cell).

Two kinds of target (``targets=``): ``"cell"``, the orthotropic constants of one held-out FE
cell (a realisation, so the target carries that cell's own scatter of 5-20 %, which no design
can follow), and ``"mean"``, the mean of ``target_cells`` fresh FE cells of the held-out design
(:func:`expected_stiffness`; the design space's own, reachable stiffness, up to the standard
error of that mean).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from graded.elastic import NAMES_9, NAMES_21, from_9, from_21, rotate_voigt, to_21
from graded.elastic.metrics import MANDEL_W66, r2_score
from graded.validation import check_count, fail

from ..evaluate import format_r2_table
from .dataset import RESOLUTION, SpinodoidDataset
from .design import REALISATIONS, cell_stiffness, design_spinodoid
from .model import SpinodoidForward, SpinodoidInverse

__all__ = ["SpinodoidForwardReport", "SpinodoidInverseReport", "evaluate_spinodoid_forward",
           "evaluate_spinodoid_inverse", "expected_stiffness", "held_out_targets", "random_rotations",
           "TARGET_KINDS"]

#: Kinds of held-out target (module docstring).
TARGET_KINDS = ("cell", "mean")

Progress = Callable[[int, int, str], None]


def random_rotations(n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` Haar-uniform rotations (3, 3) from uniform unit quaternions."""
    q = rng.standard_normal((n, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    w, x, y, z = q.T
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
        np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
        np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
    ], -2)


def expected_stiffness(rho: float, theta, *, cells: int, seed: int, resolution: int = RESOLUTION) -> np.ndarray:
    """Mean periodic voxel-FE stiffness of ``cells`` realisations of one design (principal frame).

    Parameters
    ----------
    rho : float
        Relative density.
    theta : sequence of 3 float
        Cone half-angles in degrees.
    cells : int
        Realisations averaged (the wave set of cell ``j`` is drawn from ``SeedSequence(seed, (j,))``).
    seed : int
    resolution : int
        Voxels per cell edge.

    Returns
    -------
    ndarray, shape (6, 6), float64
        Normalised by E_s (nu_s = 0.3), symmetrised.
    """
    from graded.spinodoid import SpinodoidDesign

    check_count("cells", cells, 1)
    d = SpinodoidDesign(rho=float(rho), theta=tuple(float(t) for t in theta))
    return np.mean([cell_stiffness(d, np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(j,))),
                                   resolution)[1] for j in range(cells)], axis=0)


@dataclass
class SpinodoidForwardReport:
    """R^2 of the forward model on FE labels (nine constants in the principal frame).

    ``off_orthotropic`` is the median relative Mandel norm of the FE labels' non-orthotropic
    part: realisation noise (a spinodoid is orthotropic only on average), which no design
    parameter controls and which bounds how closely one cell can match another's stiffness.
    """

    n: int
    r2_9: np.ndarray
    off_orthotropic: float
    seconds: float
    plots: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "r2_C9": dict(zip(NAMES_9, map(float, self.r2_9))),
                "min_r2_C9": float(self.r2_9.min()), "fe_off_orthotropic_median": self.off_orthotropic,
                "seconds": self.seconds, "plots": self.plots}

    def table(self) -> str:
        return (f"spinodoid forward model vs voxel FE, n = {self.n}\n"
                + format_r2_table(NAMES_9, {"C (principal frame)": self.r2_9})
                + "\nnon-orthotropic part of the FE labels (realisation noise): "
                  f"median {100 * self.off_orthotropic:.1f} %")


def evaluate_spinodoid_forward(model: SpinodoidForward, data: SpinodoidDataset, *,
                               plot_dir: str | os.PathLike | None = None) -> SpinodoidForwardReport:
    """R^2 per constant of the forward model against the FE labels of ``data`` (principal frame)."""
    if len(data) < 2:
        fail("dataset", "needs at least 2 samples for R^2", None)
    t0 = time.perf_counter()
    pred9 = model.predict(data.rho, data.theta)
    seconds = time.perf_counter() - t0
    C = from_21(data.C)
    off = np.linalg.norm((C - from_9(data.C9)) * MANDEL_W66, axis=(1, 2)) / np.linalg.norm(C * MANDEL_W66, axis=(1, 2))
    rep = SpinodoidForwardReport(len(data), r2_score(data.C9, pred9), float(np.median(off)), seconds)
    if plot_dir is not None:
        from graded.plot import plot_parity

        d = Path(plot_dir)
        d.mkdir(parents=True, exist_ok=True)
        p = d / "spinodoid_forward.png"
        plot_parity(data.C9, pred9, p, labels=list(NAMES_9), title="spinodoid forward model vs voxel FE",
                    r2_target=0.99, axis_labels=("FE", "forward model"))
        rep.plots.append(str(p))
    return rep


@dataclass
class SpinodoidInverseReport:
    """FE-verified inverse design of held-out targets (relative Mandel errors of the best design).

    ``errors`` are those of the mean of the best design's cells (its expected stiffness),
    ``cell_errors`` those of its kept cell alone; ``scatter`` is the cell-to-cell scatter of the
    best design (median distance of a cell from the mean).
    """

    n: int
    kind: str
    errors: np.ndarray
    frobenius: np.ndarray
    cell_errors: np.ndarray
    scatter: np.ndarray
    predicted: np.ndarray
    first_errors: np.ndarray
    residual: np.ndarray
    seconds_per_target: float
    plots: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        def stats(v):
            return {"median": float(np.median(v)), "mean": float(np.mean(v)), "p90": float(np.quantile(v, 0.9)),
                    "max": float(np.max(v))}

        return {"n": self.n, "targets": self.kind, "error_fe_best": stats(self.errors),
                "frobenius_fe_best": stats(self.frobenius), "error_cell_best": stats(self.cell_errors),
                "scatter": stats(self.scatter), "error_fe_first": stats(self.first_errors),
                "error_pred": stats(self.predicted), "target_non_orthotropic": stats(self.residual),
                "seconds_per_target": self.seconds_per_target, "errors": [float(e) for e in self.errors],
                "plots": self.plots}

    def table(self) -> str:
        d = self.to_dict()
        rows = [("best design, mean of its cells", d["error_fe_best"]),
                ("  the same, Frobenius", d["frobenius_fe_best"]),
                ("best design, its kept cell", d["error_cell_best"]),
                ("first-ranked design (mean)", d["error_fe_first"]),
                ("forward-model prediction", d["error_pred"]),
                ("cell scatter of the best design", d["scatter"])]
        kind = ("one held-out FE cell each" if self.kind == "cell"
                else "the mean of fresh FE cells of each held-out design")
        lines = [f"spinodoid inverse design vs voxel FE, {self.n} rotated held-out targets ({kind}; "
                 f"{self.seconds_per_target:.1f} s per target)", f"{'':34s} median   mean    p90    max"]
        for name, s in rows:
            lines.append(f"{name:34s} {100 * s['median']:5.2f}% {100 * s['mean']:5.2f}% {100 * s['p90']:5.2f}% "
                         f"{100 * s['max']:5.2f}%")
        return "\n".join(lines)


def held_out_targets(data: SpinodoidDataset, n: int, *, kind: str = "cell", target_cells: int = 8,
                     seed: int = 0) -> np.ndarray:
    """The first ``n`` held-out targets of ``data``, each rotated by a random rotation.

    Returns
    -------
    ndarray, shape (n, 6, 6)
        Normalised by E_s. ``kind="cell"``: the orthotropic constants of the FE label;
        ``kind="mean"``: the orthotropic part of :func:`expected_stiffness` of the design
        (``target_cells`` cells, seeds independent of the design's own).
    """
    if kind not in TARGET_KINDS:
        fail("targets", f"must be one of {', '.join(TARGET_KINDS)}, not {kind!r}", None)
    n = min(int(n), len(data))
    R = random_rotations(n, np.random.default_rng(seed + 1))
    if kind == "cell":
        C9 = data.C9[:n]
    else:
        from graded.elastic import to_9

        C9 = np.array([to_9(expected_stiffness(data.rho[i], data.theta[i], cells=target_cells,
                                               seed=10_000 + seed * 1000 + i)) for i in range(n)])
    return rotate_voigt(from_9(C9), R)


def evaluate_spinodoid_inverse(
    data: SpinodoidDataset,
    *,
    n_targets: int = 40,
    targets: str = "cell",
    target_cells: int = 8,
    top_k: int = 3,
    realisations: int = REALISATIONS,
    n_draws: int = 256,
    seed: int = 0,
    models: tuple[SpinodoidInverse, SpinodoidForward] | None = None,
    plot_dir: str | os.PathLike | None = None,
    progress: Progress | None = None,
) -> SpinodoidInverseReport:
    """Design the first ``n_targets`` held-out targets of ``data`` (:func:`held_out_targets`),
    each randomly rotated, and verify by FE."""
    check_count("n_targets", n_targets, 1)
    T = held_out_targets(data, n_targets, kind=targets, target_cells=target_cells, seed=seed)
    n = len(T)
    errors, frob, cell, scat, pred, first, resid = [], [], [], [], [], [], []
    t0 = time.perf_counter()
    best_C = []
    for i in range(n):
        res = design_spinodoid(T[i], n_draws=n_draws, top_k=top_k, realisations=realisations,
                               seed=seed + i, models=models)
        b = res[0]
        errors.append(b.error_fe)
        frob.append(b.frobenius_fe)
        cell.append(b.error_cell)
        scat.append(b.scatter)
        pred.append(min(r.error_pred for r in res))
        first.append(min(res, key=lambda r: r.error_pred).error_fe)
        resid.append(b.residual)
        best_C.append(b.C_fe)
        if progress is not None:
            progress(i + 1, n, f"target {i + 1}: {100 * b.error_fe:.2f} %")
    rep = SpinodoidInverseReport(n, targets, np.array(errors), np.array(frob), np.array(cell), np.array(scat),
                                 np.array(pred), np.array(first), np.array(resid), (time.perf_counter() - t0) / n)
    if plot_dir is not None:
        from graded.plot import plot_parity

        d = Path(plot_dir)
        d.mkdir(parents=True, exist_ok=True)
        p = d / "spinodoid_inverse.png"
        plot_parity(to_21(T), to_21(np.array(best_C)), p, labels=list(NAMES_21),
                    title="spinodoid inverse design: FE (mean of the best design's cells) vs target",
                    r2_target=0.99, axis_labels=("target", "FE of design"))
        rep.plots.append(str(p))
    return rep
