"""Voxel family (guided diffusion) against our own voxel FE: regressor R^2 and generated cells.

* ``regressor``: R^2 of C11, C12, C44 of the model's regressor on the held-out FE test set
  (``graded dataset --family voxel --n 1000 --seed 1``; the training set is seed 0);
* ``generation``: the FE labels of the first ``--targets`` test cells as targets (C11, C12,
  C44, V: reachable by construction), ``--samples`` cells generated for each (DDIM, the
  design's guidance and steps, no ranking), every accepted cell labelled by FE; the paper's
  error (Eq. 4) single sample and best of ``--samples``, the relative Frobenius error, the share
  of connected cells and the generation time per cell.

Bars (issue 22): R^2 >= 0.98; Eq. 4 mean <= 5 % single sample, <= 2.5 % best of 4; >= 98 %
connected; < 2 s per cell on 2 cores. Writes ``benchmarks/results/voxel_diffusion.json`` and the
figures ``docs/voxel_parity.png`` (target vs FE of the single samples) and
``docs/voxel_errors.png`` (error distributions).

    python benchmarks/voxel_diffusion.py --test datasets/voxel-test [--targets 1000] [--samples 4]
        [--weights NAME] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "voxel_diffusion.json"


def _plot(report, reg, out_dir: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = ("C11", "C12", "C44")
    fig, axes = plt.subplots(2, 3, figsize=(12, 7.5))
    first = np.array([np.flatnonzero(np.isfinite(r[:, 0]))[0] if np.isfinite(r[:, 0]).any() else -1
                      for r in report.fe])
    ok = first >= 0
    gen = report.fe[np.flatnonzero(ok), first[ok], :3]
    tgt = report.targets[ok, :3]
    for k, ax in enumerate(axes[0]):
        ax.scatter(tgt[:, k], gen[:, k], s=4, alpha=0.5)
        lim = [min(tgt[:, k].min(), gen[:, k].min()), max(tgt[:, k].max(), gen[:, k].max())]
        ax.plot(lim, lim, "k--", lw=0.8)
        ax.set_xlabel(f"target {names[k]} / E_s")
        ax.set_ylabel(f"FE of generated {names[k]} / E_s")
        ax.set_title(f"generated, single sample ({ok.sum()} targets)")
    for k, ax in enumerate(axes[1]):
        ax.scatter(reg["fe"][:, k], reg["predicted"][:, k], s=4, alpha=0.5, color="C2")
        lim = [reg["fe"][:, k].min(), reg["fe"][:, k].max()]
        ax.plot(lim, lim, "k--", lw=0.8)
        ax.set_xlabel(f"FE {names[k]} / E_s")
        ax.set_ylabel(f"regressor {names[k]} / E_s")
        ax.set_title(f"regressor, R^2 = {reg['r2'][names[k]]:.4f}")
    fig.tight_layout()
    parity = out_dir / "voxel_parity.png"
    fig.savefig(parity, dpi=110)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(6.5, 4))
    s = report.single[np.isfinite(report.single)]
    b = report.best[np.isfinite(report.best)]
    bins = np.linspace(0, max(np.percentile(s, 99), 1e-3) * 100, 40)
    ax.hist(100 * s, bins=bins, alpha=0.6, label=f"single sample, mean {100 * s.mean():.2f} %")
    ax.hist(100 * b, bins=bins, alpha=0.6, label=f"best of {report.fe.shape[1]}, mean {100 * b.mean():.2f} %")
    ax.set_xlabel("error (paper Eq. 4), %")
    ax.set_ylabel("targets")
    ax.legend()
    fig.tight_layout()
    errors = out_dir / "voxel_errors.png"
    fig.savefig(errors, dpi=110)
    plt.close(fig)
    return [str(parity.relative_to(ROOT)), str(errors.relative_to(ROOT))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--test", required=True, help="FE test set (graded dataset --family voxel --seed 1)")
    ap.add_argument("--weights", default=None, help="model NAME [default: shipped]")
    ap.add_argument("--targets", type=int, default=1000)
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-plots", action="store_true")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(2)
    from graded.inverse.voxelcell.dataset import load_voxel_dataset
    from graded.inverse.voxelcell.evaluate import evaluate_generation, evaluate_regressor
    from graded.inverse.voxelcell.model import load_voxel_model

    model = load_voxel_model(args.weights)
    test = load_voxel_dataset(args.test)
    t0 = time.perf_counter()
    reg = evaluate_regressor(model, test)
    print(f"regressor on {reg['n']} held-out cells: R^2 " + ", ".join(f"{k} {v:.4f}" for k, v in reg["r2"].items())
          + f" ({time.perf_counter() - t0:.1f} s)", flush=True)
    keep = np.flatnonzero(test.converged)[: args.targets]
    targets = test.values[keep]

    def progress(i, n, msg):
        print(f"  {msg}", flush=True)

    t0 = time.perf_counter()
    report = evaluate_generation(model, targets, samples=args.samples, seed=args.seed, workers=args.workers,
                                 progress=progress)
    wall = time.perf_counter() - t0
    summary = report.summary()
    for k, v in summary.items():
        print(f"{k}: {v:.4g}" if isinstance(v, float) else f"{k}: {v}")
    figures = [] if args.no_plots else _plot(report, reg, ROOT / "docs")
    result = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "weights": args.weights or "shipped", "test_set": str(args.test), "seed": args.seed,
        "regressor": {k: reg[k] for k in ("n", "r2", "median_relative_error")},
        "generation": summary, "wall_seconds": round(wall, 1), "figures": figures,
        "model": {"sha256": model.sha256, "info": {k: v for k, v in model.info.items() if k != "history"}},
    }
    from graded.io.atomic import atomic_path

    OUT.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(OUT) as tmp:
        tmp.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
