"""The voxel family's models against our own voxel FE: regressor R^2 and generation accuracy.

* :func:`evaluate_regressor`: R^2 of C11, C12, C44 on held-out FE-labelled cells.
* :func:`evaluate_generation`: for each target (the FE labels of held-out cells, so every
  target is reachable), ``samples`` codes drawn and decoded without ranking, every accepted cell
  labelled by FE; the paper's error (Eq. 4) of the first accepted sample (single sample) and the
  best of all (best of ``samples``), the relative Frobenius error beside it, the share of drawn
  codes that gave a connected, printable cell, and the generation time per cell (sampling and
  decoding, without FE). FE labels are computed in worker processes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from graded.elastic.metrics import r2_score, relative_frobenius
from graded.validation import check_count, fail
from graded.voxelcell import cubic_labels, cubic_stiffness

from .dataset import VoxelDataset
from .design import DEFAULT_GUIDANCE, DEFAULT_STEPS, decode_cells
from .model import VoxelModel, paper_error

__all__ = ["GenerationReport", "evaluate_regressor", "evaluate_generation"]

Progress = Callable[[int, int, str], None]


def evaluate_regressor(model: VoxelModel, data: VoxelDataset) -> dict:
    """R^2 (by constant) and median relative error of the regressor on FE-labelled cells.

    Returns
    -------
    dict
        ``r2``: {C11, C12, C44: float}; ``median_relative_error``: {..}; ``predicted`` (m, 3)
        and ``fe`` (m, 3) / E_s; ``n``.
    """
    keep = np.flatnonzero(data.converged)
    if keep.size < 2:
        fail("dataset", f"has {keep.size} converged labels", "give a labelled test set (graded dataset --family voxel)")
    fe = data.values[keep, :3]
    pred = model.predict(data.octants[keep])[:, :3]
    r2 = r2_score(fe, pred)
    rel = np.median(np.abs(pred - fe) / np.abs(fe), axis=0)
    names = ("C11", "C12", "C44")
    return {"n": int(keep.size), "r2": dict(zip(names, map(float, r2))),
            "median_relative_error": dict(zip(names, map(float, rel))), "predicted": pred, "fe": fe}


@dataclass(frozen=True)
class GenerationReport:
    """Generated cells against their targets, by FE.

    Attributes
    ----------
    targets : ndarray, shape (t, 4)
        C11, C12, C44 / E_s and volume fraction of each target.
    fe : ndarray, shape (t, s, 4)
        FE labels of each target's samples (NaN where a code gave no accepted cell).
    paper_error, relative_error : ndarray, shape (t, s)
        Eq. 4 and relative Frobenius error of each sample (NaN where rejected).
    drawn, accepted : int
        Codes drawn and cells accepted (connected and printable).
    seconds_per_cell : float
        Wall seconds of sampling and decoding per drawn code.
    """

    targets: np.ndarray
    fe: np.ndarray
    paper_error: np.ndarray
    relative_error: np.ndarray
    drawn: int
    accepted: int
    seconds_per_cell: float

    @property
    def single(self) -> np.ndarray:
        """(t,) Eq. 4 error of each target's first accepted sample (NaN if none)."""
        return _first_accepted(self.paper_error)

    @property
    def best(self) -> np.ndarray:
        """(t,) lowest Eq. 4 error over each target's samples (NaN if none)."""
        e = np.where(np.isfinite(self.paper_error), self.paper_error, np.inf).min(axis=1)
        return np.where(np.isfinite(e), e, np.nan)

    def summary(self) -> dict:
        """Means and medians of the single-sample and best-of errors (percent), and the connected share."""
        s, b = self.single, self.best
        rel = self.relative_error
        first_rel = _first_accepted(rel)
        return {
            "targets": int(len(self.targets)), "samples_per_target": int(self.fe.shape[1]),
            "paper_error_single_mean_pct": float(100 * np.nanmean(s)),
            "paper_error_single_median_pct": float(100 * np.nanmedian(s)),
            f"paper_error_best_of_{self.fe.shape[1]}_mean_pct": float(100 * np.nanmean(b)),
            f"paper_error_best_of_{self.fe.shape[1]}_median_pct": float(100 * np.nanmedian(b)),
            "relative_frobenius_single_median_pct": float(100 * np.nanmedian(first_rel)),
            "connected_share": self.accepted / self.drawn,
            "targets_without_a_cell": int(np.sum(~np.isfinite(s))),
            "seconds_per_cell": self.seconds_per_cell,
        }


def _first_accepted(errors: np.ndarray) -> np.ndarray:
    """(t,) the first finite entry of each row of (t, s) errors (NaN for a row without one)."""
    ok = np.isfinite(errors)
    first = np.argmax(ok, axis=1)
    return np.where(ok.any(axis=1), errors[np.arange(len(errors)), first], np.nan)


def _labels(cells: np.ndarray) -> np.ndarray:
    torch.set_num_threads(1)
    return cubic_labels(cells).values


def evaluate_generation(
    model: VoxelModel,
    targets: np.ndarray,
    *,
    samples: int = 4,
    guidance: float = DEFAULT_GUIDANCE,
    steps: int = DEFAULT_STEPS,
    seed: int = 0,
    workers: int = 1,
    batch: int = 50,
    progress: Progress | None = None,
) -> GenerationReport:
    """Generate ``samples`` cells per target (C11, C12, C44, V) and label every one by FE.

    Parameters
    ----------
    targets : ndarray, shape (t, 4)
        C11, C12, C44 / E_s and volume fraction.
    workers : int
        FE processes (:func:`graded.workers.process_pool`; 1 labels in this process).
    batch : int
        Cells per FE task.
    """
    T = np.asarray(targets, dtype=np.float64)
    if T.ndim != 2 or T.shape[1] != 4:
        fail("targets", f"has shape {T.shape}, expected (t, 4)", "give C11, C12, C44, V per target")
    samples = check_count("samples", samples, 1)
    workers = check_count("workers", workers, 1)
    gen = torch.Generator().manual_seed(int(seed))
    cells, where = [], []
    t0 = time.perf_counter()
    for i, tgt in enumerate(T):
        cond = model.condition(np.repeat(tgt[None, :3], samples, 0), np.full(samples, tgt[3]))
        codes = model.sample(cond, gen, steps=steps, guidance=guidance).double().numpy()
        solids, kept, _ = decode_cells(model, codes, float(tgt[3]))
        cells += solids
        where += [(i, int(k)) for k in kept]
        if progress is not None and (i % 50 == 0 or i == len(T) - 1):
            progress(i + 1, len(T), f"generated for {i + 1} of {len(T)} targets")
    seconds = (time.perf_counter() - t0) / (len(T) * samples)
    fe = np.full((len(T), samples, 4), np.nan)
    chunks = [np.stack(cells[j : j + batch]) for j in range(0, len(cells), batch)]
    results = []
    if workers == 1:
        for k, c in enumerate(chunks):
            results.append(_labels(c))
            if progress is not None:
                progress(k + 1, len(chunks), f"FE of {min((k + 1) * batch, len(cells))} of {len(cells)} cells")
    else:
        from graded.workers import SINGLE_THREADED_BLAS, process_pool

        with process_pool(workers, SINGLE_THREADED_BLAS) as pool:
            for k, r in enumerate(pool.map(_labels, chunks)):
                results.append(r)
                if progress is not None:
                    progress(k + 1, len(chunks), f"FE of {min((k + 1) * batch, len(cells))} of {len(cells)} cells")
    values = np.concatenate(results) if results else np.zeros((0, 4))
    for (i, k), v in zip(where, values):
        fe[i, k] = v
    pe = paper_error(fe[..., :3], T[:, None, :3], model.config.span)
    re = np.full(pe.shape, np.nan)
    ok = np.isfinite(fe[..., 0])
    re[ok] = relative_frobenius(cubic_stiffness(np.broadcast_to(T[:, None, :3], fe[..., :3].shape)[ok]),
                                cubic_stiffness(fe[..., :3][ok]))
    return GenerationReport(targets=T, fe=fe, paper_error=pe, relative_error=re, drawn=len(T) * samples,
                            accepted=len(cells), seconds_per_cell=seconds)
