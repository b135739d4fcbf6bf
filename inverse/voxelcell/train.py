"""Training of the voxel family's model: the cell code, the regressor, the conditional denoiser.

``train_voxel_model`` fits the three in order on one FE dataset (``graded dataset --family
voxel``): the principal components of the training cells' signed distances, then the
regressor on their codes, then the denoiser on the same codes. Validation cells are split off
first and touch none of the three (the code is fitted on training cells only). Labels that did
not converge are left out.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from graded.validation import check_count, fail
from graded.voxelcell import fit_cell_code, fundamental_weights, pack_fundamental, symmetrise_octant

from ..forward import init_uniform
from ..scaling import MinMax
from .dataset import VoxelDataset
from .model import DROP_PROBABILITY, VoxelModel, VoxelModelConfig, alpha_bar

__all__ = ["VoxelHistory", "train_voxel_model", "split"]

Progress = Callable[[int, int, str], None]


@dataclass
class VoxelHistory:
    """Losses of a training run (per regressor epoch, per denoiser evaluation) and its times (s)."""

    regressor_train: list[float] = field(default_factory=list)
    regressor_val: list[float] = field(default_factory=list)
    denoiser_train: list[float] = field(default_factory=list)
    denoiser_val: list[float] = field(default_factory=list)
    code_seconds: float = 0.0
    regressor_seconds: float = 0.0
    denoiser_seconds: float = 0.0
    n_train: int = 0
    n_val: int = 0

    def to_dict(self) -> dict:
        return {k: (v if not isinstance(v, float) else round(v, 2)) for k, v in self.__dict__.items()}


def split(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted training and validation indices of ``n`` samples (a seeded permutation)."""
    perm = np.random.default_rng(seed).permutation(n)
    n_val = max(1, int(round(val_fraction * n)))
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def _fit_mlp(model, params, loss_fn, n_train: int, epochs: int, batch_size: int, lr: float,
             gen: torch.Generator, val_fn, every: int, progress: Progress | None, name: str):
    """Adam with cosine decay over ``epochs`` passes; keeps the parameters of the best validation loss."""
    opt = torch.optim.Adam(params, lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    best, best_state, train_hist, val_hist = math.inf, None, [], []
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(n_train, generator=gen)
        total = 0.0
        for s in range(0, n_train, batch_size):
            idx = order[s : s + batch_size]
            loss = loss_fn(idx)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        sched.step()
        if epoch % every == 0 or epoch == epochs - 1:
            model.eval()
            with torch.no_grad():
                val = float(val_fn())
            train_hist.append(total / n_train)
            val_hist.append(val)
            if val < best:
                best, best_state = val, {k: v.clone() for k, v in model.state_dict().items()}
            if progress is not None:
                progress(epoch + 1, epochs, f"{name} epoch {epoch + 1}: val {val:.3e}")
    model.load_state_dict(best_state)
    return train_hist, val_hist


def train_voxel_model(
    data: VoxelDataset,
    *,
    dim: int = 64,
    regressor_widths: tuple[int, ...] = (16, 32, 64),
    denoiser_width: int = 256,
    denoiser_depth: int = 3,
    regressor_epochs: int = 40,
    denoiser_epochs: int = 600,
    regressor_batch: int = 64,
    regressor_lr: float = 2e-3,
    batch_size: int = 256,
    lr: float = 1e-3,
    val_fraction: float = 0.1,
    seed: int = 0,
    regressor_from: VoxelModel | None = None,
    progress: Progress | None = None,
) -> tuple[VoxelModel, VoxelHistory]:
    """Fit the code, the regressor and the denoiser of a :class:`VoxelModel`.

    Parameters
    ----------
    data : VoxelDataset
        FE-labelled cells; unconverged labels are left out.
    dim : int
        Code components.
    regressor_epochs, denoiser_epochs : int
        Passes over the training cells.
    regressor_batch, regressor_lr : int, float
        Batch size and initial learning rate of the regressor (``batch_size``, ``lr``: the denoiser's).
    seed : int
        Split, initialisation, batches, noise and condition dropout all follow from it.
    regressor_from : VoxelModel, optional
        Take this model's regressor instead of training one (it must have been trained on the
        same data with the same seed, so that its label scaling and validation split are these):
        refits only the code and the denoiser, for a new ``dim``.

    Returns
    -------
    model : VoxelModel
        In eval mode; regressor and denoiser at their best validation loss.
    history : VoxelHistory
    """
    if not isinstance(data, VoxelDataset):
        fail("dataset", f"expected a VoxelDataset, got {type(data).__name__}",
             "load one with load_voxel_dataset (graded dataset --family voxel)")
    keep = np.flatnonzero(data.converged)
    if keep.size <= dim + 10:
        fail("dataset", f"has {keep.size} converged samples for a code of {dim}",
             f"generate more than {dim + 10} cells (graded dataset --family voxel) or lower --dim")
    for name, v in (("regressor_epochs", regressor_epochs), ("denoiser_epochs", denoiser_epochs),
                    ("batch_size", batch_size)):
        check_count(name, v, 1)
    if regressor_from is not None and not isinstance(regressor_from, VoxelModel):
        fail("regressor_from", f"is a {type(regressor_from).__name__}", "give a VoxelModel (load_voxel_model)")
    data = data.subset(keep)
    tr, va = split(len(data), val_fraction, seed)
    hist = VoxelHistory(n_train=len(tr), n_val=len(va))
    gen = torch.Generator().manual_seed(seed)

    t0 = time.perf_counter()
    h = data.resolution // 2
    if progress is not None:
        progress(0, 1, f"signed distances of {len(data)} cells")
    C = data.values[:, :3]
    labels = VoxelModel.label(C)
    scaler = MinMax.fit(labels[tr])
    config = VoxelModelConfig(
        h=h, dim=dim, regressor_widths=[int(w) for w in regressor_widths], denoiser_width=int(denoiser_width),
        denoiser_depth=int(denoiser_depth), label=scaler,
        rho_range=[float(data.values[tr, 3].min()), float(data.values[tr, 3].max())],
        C_min=[float(v) for v in C[tr].min(axis=0)], C_max=[float(v) for v in C[tr].max(axis=0)])
    model = VoxelModel(config)
    init_uniform(model, gen)
    inputs, _ = model.regressor_input(data.octants)
    # the code's fields are the same signed distances, on the fundamental domain
    w = fundamental_weights(h)
    X = np.stack([pack_fundamental(symmetrise_octant(d.astype(np.float64) * model.distance_scale)) * w
                  for d in inputs[:, 1].numpy()])
    code = fit_cell_code(X[tr], h, dim)
    model.set_code(code)
    Z = torch.as_tensor(code.project(X), dtype=torch.float32)
    hist.code_seconds = time.perf_counter() - t0

    rho = torch.as_tensor(data.values[:, 3], dtype=torch.float32)
    Y = torch.as_tensor(scaler.scale(labels), dtype=torch.float32)
    tr_t, va_t = torch.as_tensor(tr), torch.as_tensor(va)

    t0 = time.perf_counter()
    if regressor_from is not None:
        old = regressor_from.config
        if (old.h, old.regressor_widths, old.rho_range, old.C_min, old.C_max) != (
                h, config.regressor_widths, config.rho_range, config.C_min, config.C_max):
            fail("regressor_from", "was trained on other data or with another architecture",
                 "give a model trained on this dataset with the same seed and regressor widths")
        model.regressor.load_state_dict(regressor_from.regressor.state_dict())
        regressor_epochs = 0

    def reg_loss(idx):
        i = tr_t[idx]
        return torch.mean((model.regress_scaled(inputs[i], rho[i]) - Y[i]) ** 2)

    def reg_val():
        out = [model.regress_scaled(inputs[va_t[j : j + 256]], rho[va_t[j : j + 256]]) for j in range(0, len(va), 256)]
        return torch.mean((torch.cat(out) - Y[va_t]) ** 2)

    if regressor_epochs:
        hist.regressor_train, hist.regressor_val = _fit_mlp(
            model, model.regressor.parameters(), reg_loss, len(tr), regressor_epochs, regressor_batch, regressor_lr,
            gen, reg_val, 1, progress, "regressor")
    else:
        with torch.no_grad():
            hist.regressor_val = [float(reg_val())]
    hist.regressor_seconds = time.perf_counter() - t0

    t0 = time.perf_counter()
    cond_all = model.condition(C, data.values[:, 3])
    denoiser_params = [p for n, p in model.named_parameters() if not n.startswith("regressor.")]
    val_gen = torch.Generator().manual_seed(seed + 1)
    n_va = len(va)
    t_va = torch.rand(n_va, generator=val_gen)
    e_va = torch.randn(n_va, dim, generator=val_gen)

    def v_loss(z0, cond, t, eps):
        a = alpha_bar(t)[:, None]
        z_t = a.sqrt() * z0 + (1.0 - a).sqrt() * eps
        v = a.sqrt() * eps - (1.0 - a).sqrt() * z0
        return torch.mean((model.velocity(z_t, t, cond) - v) ** 2)

    def den_loss(idx):
        i = tr_t[idx]
        m = len(i)
        cond = cond_all[i].clone()
        drop = torch.rand(m, 2, generator=gen) < DROP_PROBABILITY
        cond[drop[:, 0], :3] = 0.0
        cond[drop[:, 0], 4] = 0.0
        cond[drop[:, 1], 3] = 0.0
        cond[drop[:, 1], 5] = 0.0
        t = torch.rand(m, generator=gen)
        return v_loss(Z[i], cond, t, torch.randn(m, dim, generator=gen))

    hist.denoiser_train, hist.denoiser_val = _fit_mlp(
        model, denoiser_params, den_loss, len(tr), denoiser_epochs, batch_size, lr, gen,
        lambda: v_loss(Z[va_t], cond_all[va_t], t_va, e_va), max(1, denoiser_epochs // 60), progress, "denoiser")
    hist.denoiser_seconds = time.perf_counter() - t0
    return model.eval(), hist
