"""Training of the spinodoid forward model and of the tandem inverse model through it.

Both train on a CPU in minutes. The split into training and validation samples is made before
the permutation augmentation, so no permuted copy of a validation cell is trained on.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from graded.elastic import from_9, from_21, to_9
from graded.elastic.metrics import MANDEL_W66
from graded.validation import check_count, fail

from ..forward import init_uniform
from ..scaling import MinMax
from .dataset import SpinodoidDataset, permutation_augment
from .model import (
    SpinodoidForward,
    SpinodoidForwardConfig,
    SpinodoidInverse,
    SpinodoidInverseConfig,
    design_features,
    entropy_penalty,
)

__all__ = ["SpinodoidHistory", "augmented", "train_spinodoid_forward", "train_spinodoid_inverse"]

Progress = Callable[[int, int, str], None]


@dataclass
class SpinodoidHistory:
    """Losses per epoch (training, validation) and the wall time of a training run."""

    train: list[float] = field(default_factory=list)
    val: list[float] = field(default_factory=list)
    seconds: float = 0.0
    n_train: int = 0
    n_val: int = 0


def augmented(data: SpinodoidDataset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features (6 n, 7), constants (6 n, 9) and densities (6 n,) of every sample under the six
    axis permutations (:func:`~graded.inverse.spinodoid.dataset.permutation_augment`)."""
    theta6, C6 = permutation_augment(data.theta, from_9(data.C9))
    rho6 = np.tile(data.rho, 6)
    return design_features(rho6, theta6), to_9(C6), rho6


def _split(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    perm = np.random.default_rng(seed).permutation(n)
    n_val = max(1, int(round(val_fraction * n)))
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def _check(data: SpinodoidDataset, epochs: int, batch_size: int) -> None:
    if not isinstance(data, SpinodoidDataset):
        fail("dataset", f"expected a SpinodoidDataset, got {type(data).__name__}",
             "load one with load_spinodoid_dataset (graded dataset --family spinodoid)")
    if len(data) < 20:
        fail("dataset", f"has {len(data)} samples", "generate at least 20 (graded dataset --family spinodoid)")
    check_count("epochs", epochs, 1)
    check_count("batch_size", batch_size, 1)


def train_spinodoid_forward(
    data: SpinodoidDataset,
    *,
    widths: tuple[int, ...] = (128, 128, 128, 128),
    epochs: int = 1500,
    batch_size: int = 256,
    lr: float = 3e-3,
    val_fraction: float = 0.1,
    seed: int = 0,
    progress: Progress | None = None,
) -> tuple[SpinodoidForward, SpinodoidHistory]:
    """Fit the forward model on FE labels (augmented by the axis permutations).

    Mean squared error in the scaled label space, Adam with a cosine learning-rate decay, the
    weights of the epoch with the lowest validation loss kept.

    Returns
    -------
    model : SpinodoidForward
        In eval mode.
    history : SpinodoidHistory
    """
    _check(data, epochs, batch_size)
    t0 = time.perf_counter()
    tr, va = _split(len(data), val_fraction, seed)
    Xtr, Ytr, _ = augmented(data.subset(tr))
    Xva, Yva, _ = augmented(data.subset(va))
    scaler = MinMax.fit(SpinodoidForward.label(np.concatenate([Ytr, Yva])))
    norms = np.linalg.norm(from_21(data.C) * MANDEL_W66, axis=(1, 2))
    config = SpinodoidForwardConfig(widths=[int(w) for w in widths], label=scaler,
                                    rho_range=[float(v) for v in data.meta.get("bounds", {}).get("rho", [0.3, 0.9])],
                                    reach=[float(norms.min()), float(norms.max())])
    gen = torch.Generator().manual_seed(seed)
    model = SpinodoidForward(config)
    init_uniform(model, gen)
    x_tr = torch.as_tensor(Xtr, dtype=torch.float32)
    y_tr = torch.as_tensor(scaler.scale(SpinodoidForward.label(Ytr)), dtype=torch.float32)
    x_va = torch.as_tensor(Xva, dtype=torch.float32)
    y_va = torch.as_tensor(scaler.scale(SpinodoidForward.label(Yva)), dtype=torch.float32)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    hist = SpinodoidHistory(n_train=len(tr), n_val=len(va))
    best, best_state = math.inf, None
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(x_tr), generator=gen)
        total = 0.0
        for s in range(0, len(order), batch_size):
            idx = order[s : s + batch_size]
            loss = torch.mean((model.raw(x_tr[idx]) - y_tr[idx]) ** 2)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        sched.step()
        model.eval()
        with torch.no_grad():
            val = float(torch.mean((model.raw(x_va) - y_va) ** 2))
        hist.train.append(total / len(x_tr))
        hist.val.append(val)
        if val < best:
            best, best_state = val, {k: v.clone() for k, v in model.state_dict().items()}
        if progress is not None and (epoch % 25 == 0 or epoch == epochs - 1):
            progress(epoch + 1, epochs, f"forward epoch {epoch + 1}: val {val:.2e}")
    model.load_state_dict(best_state)
    hist.seconds = time.perf_counter() - t0
    return model.eval(), hist


def train_spinodoid_inverse(
    forward: SpinodoidForward,
    data: SpinodoidDataset,
    *,
    widths: tuple[int, ...] = (128, 128, 128, 128),
    n_noise: int = 3,
    epochs: int = 400,
    batch_size: int = 256,
    lr: float = 2e-3,
    warmup: int = 20,
    prediction_weight: float = 0.1,
    binary_weight: float = 0.05,
    val_fraction: float = 0.1,
    seed: int = 0,
    progress: Progress | None = None,
) -> tuple[SpinodoidInverse, SpinodoidHistory]:
    """Fit the inverse model through the frozen forward model (Eq. 7, the tandem scheme).

    Loss: the reconstruction error ``|F(G(S, z)) - S|^2`` in the forward model's scaled label
    space, plus for the first ``warmup`` epochs ``prediction_weight`` times the error of the
    design features against the sample's own (a soft start, as in the paper), plus
    ``binary_weight`` (ramped up over the training) times the mean ``o (1 - o)`` of the
    open-cone weights, so that rounding them at the end changes little.

    Returns
    -------
    model : SpinodoidInverse
        In eval mode.
    history : SpinodoidHistory
        Reconstruction losses only.
    """
    _check(data, epochs, batch_size)
    check_count("n_noise", n_noise, 0)
    t0 = time.perf_counter()
    tr, va = _split(len(data), val_fraction, seed)
    Xtr, Ytr, _ = augmented(data.subset(tr))
    _, Yva, _ = augmented(data.subset(va))
    scaler = forward.config.label
    config = SpinodoidInverseConfig(widths=[int(w) for w in widths], n_noise=int(n_noise), label=scaler,
                                    rho_range=list(forward.config.rho_range))
    gen = torch.Generator().manual_seed(seed + 1)
    model = SpinodoidInverse(config)
    init_uniform(model, gen)
    for p in forward.parameters():
        p.requires_grad_(False)
    forward.eval()
    s_tr = model.scale_targets(Ytr)
    s_va = model.scale_targets(Yva)
    x_tr = torch.as_tensor(Xtr, dtype=torch.float32)
    lo = torch.as_tensor(scaler.lo, dtype=torch.float32)
    span = torch.as_tensor(scaler.span, dtype=torch.float32)

    def reconstruct(s: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = model(s, z)
        return 2.0 * (forward.label_space(x) - lo) / span - 1.0, x

    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    hist = SpinodoidHistory(n_train=len(tr), n_val=len(va))
    z_va = torch.randn(len(s_va), n_noise, generator=gen)
    best, best_state = math.inf, None
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(s_tr), generator=gen)
        w_bin = binary_weight * min(1.0, epoch / max(1, epochs // 2))
        total = 0.0
        for s in range(0, len(order), batch_size):
            idx = order[s : s + batch_size]
            z = torch.randn(len(idx), n_noise, generator=gen)
            pred, x = reconstruct(s_tr[idx], z)
            rec = torch.mean((pred - s_tr[idx]) ** 2)
            loss = rec + w_bin * entropy_penalty(x)
            if epoch < warmup:
                loss = loss + prediction_weight * torch.mean((x - x_tr[idx]) ** 2)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(rec.detach()) * len(idx)
        sched.step()
        model.eval()
        with torch.no_grad():
            val = float(torch.mean((reconstruct(s_va, z_va)[0] - s_va) ** 2))
        hist.train.append(total / len(s_tr))
        hist.val.append(val)
        if epoch >= warmup and val < best:
            best, best_state = val, {k: v.clone() for k, v in model.state_dict().items()}
        if progress is not None and (epoch % 10 == 0 or epoch == epochs - 1):
            progress(epoch + 1, epochs, f"inverse epoch {epoch + 1}: val {val:.2e}")
    if best_state is not None:
        model.load_state_dict(best_state)
    hist.seconds = time.perf_counter() - t0
    return model.eval(), hist
