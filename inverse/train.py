"""Training of the forward model (F1, F2) and of the inverse model (G1, G2).

Both use Adam with a ``ReduceLROnPlateau`` schedule on a held-out validation split
(SI section 3.C), explicit ``torch.Generator`` seeds for initialisation, shuffling and
Gumbel noise, and an optional ``progress(done, total, message)`` callback. The best
validation state is kept.

Exact, FE-free augmentations
----------------------------
* **F2** -- for any of the 24 cube rotations ``P`` (signed permutations), the cell
  ``P V R_I U X`` has stretches ``V[perm]``, rotation ``P R_I`` and stiffness
  ``K(P) C_hat K(P)^T``; each batch applies a random ``P`` per sample
  (:data:`~graded.inverse.forward.CUBE_ROTATIONS`).
* **Inverse** -- rotating a target by any ``Q`` is matched by ``R_II -> Q R_II``. With
  the canonical frame (default) the model is exactly invariant to this, so no
  augmentation is needed; without it, every batch's targets are rotated at random
  (Haar-uniform ``Q``).

Losses
------
* F1: mean squared error of the scaled label ``C_ort / rho`` (SI Eq. 3).
* F2 and the inverse model: squared Frobenius norm of the Mandel-form error divided by the
  magnitude ``s`` of the stiffness (relative error; rotation invariant, so the error of
  ``C_hat`` carries over unchanged to every orientation ``R_II``).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from graded.elastic import from_9, rotate_voigt, to_21
from graded.elastic import torch as et
from graded.elastic.metrics import MANDEL_W21, component_weights
from graded.validation import check_choice, check_range, fail

from .forward import (
    CUBE_ROTATIONS,
    ForwardConfig,
    ForwardModel,
    init_uniform,
    part_index,
    push_forward,
    topology_onehot,
)
from .inverse_model import InverseConfig, InverseModel
from .scaling import RHO_RANGE, STRETCH_RANGE, MinMax, density_label, stiffness_scale

__all__ = [
    "TrainHistory",
    "forward_config_from_data",
    "inverse_config_from_data",
    "train_forward",
    "train_inverse",
    "mandel_loss",
    "mandel_error",
    "multiple_choice_loss",
    "random_rotations_torch",
]

Progress = Callable[[int, int, str], None]


def mandel_loss(pred21: torch.Tensor, true21: torch.Tensor, s: torch.Tensor,
                sample_weight: torch.Tensor | None = None) -> torch.Tensor:
    """Mean over the batch of ``||M(pred) - M(true)||_F^2 / s^2`` (21 constants in),
    optionally weighted per sample."""
    per = mandel_error(pred21, true21, s)
    if sample_weight is not None:
        per = per * sample_weight
    return per.mean()


def mandel_error(pred21: torch.Tensor, true21: torch.Tensor, s: torch.Tensor,
                 weights: torch.Tensor | np.ndarray | None = None) -> torch.Tensor:
    """Per-sample ``||M(pred) - M(true)||_F^2 / s^2`` (...,) of 21-constant stiffnesses
    (..., 21), normalised by the weight sum (the quantity :func:`mandel_loss` averages).

    ``weights`` (21,) replaces the Mandel weights :data:`~graded.elastic.metrics.MANDEL_W21` (e.g.
    :func:`~graded.elastic.metrics.component_weights`)."""
    w = torch.as_tensor(MANDEL_W21 if weights is None else weights, dtype=pred21.dtype)
    e = (pred21 - true21) / s[..., None]
    return (e.square() * w).sum(-1) / float(w.sum())


def multiple_choice_loss(err: torch.Tensor, head_logits: torch.Tensor, eps: float,
                         sample_weight: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Relaxed winner-takes-all loss over geometry heads, and the head-posterior loss.

    Parameters
    ----------
    err : (B, K)
        Reconstruction error of every head for every target.
    head_logits : (B, K)
        Head posterior logits.
    eps : float
        Share of the weight spread over the losing heads (0: pure winner-takes-all; a small
        share keeps every head improving where it does not win).
    sample_weight : (B,), optional

    Returns
    -------
    (reconstruction, cross_entropy)
        ``mean_b w_b sum_k a_bk err_bk`` with ``a = 1 - eps`` for the best head and
        ``eps / (K - 1)`` for the others; and the cross-entropy of the head posterior
        against the best head.
    """
    K = err.shape[-1]
    win = err.detach().argmin(-1)
    a = torch.full_like(err, eps / max(K - 1, 1))
    a.scatter_(-1, win[:, None], 1.0 - eps if K > 1 else 1.0)
    per = (a * err).sum(-1)
    if sample_weight is not None:
        per = per * sample_weight
    ce = torch.nn.functional.cross_entropy(head_logits, win) if K > 1 else err.new_zeros(())
    return per.mean(), ce


@dataclass
class TrainHistory:
    """Per-epoch record of a training run.

    Attributes
    ----------
    train_loss, val_loss, lr : list of float
    seconds : float
        Wall time.
    epochs : int
        Epochs run.
    best_epoch : int
        Epoch whose weights were kept (lowest validation loss).
    """

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    seconds: float = 0.0
    epochs: int = 0
    best_epoch: int = -1

    def to_dict(self) -> dict[str, Any]:
        return {
            "train_loss": self.train_loss,
            "val_loss": self.val_loss,
            "lr": self.lr,
            "seconds": self.seconds,
            "epochs": self.epochs,
            "best_epoch": self.best_epoch,
        }


def random_rotations_torch(n: int, generator: torch.Generator, dtype=torch.float32) -> torch.Tensor:
    """``n`` Haar-uniform rotations (normalised Gaussian quaternions)."""
    q = torch.randn(n, 4, generator=generator, dtype=torch.float64)
    q = q / q.norm(dim=-1, keepdim=True)
    w, x, y, z = q.unbind(-1)
    R = torch.stack(
        [
            1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w),
            2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w),
            2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y),
        ],
        -1,
    ).reshape(n, 3, 3)
    return R.to(dtype)


# ---------------------------------------------------------------------------
# scalers from data
# ---------------------------------------------------------------------------


def _f2_label(dataset) -> np.ndarray:
    """F2's label on a dataset: ``C_hat / s`` minus the normalised push-forward."""
    ct = to_21(rotate_voigt(from_9(dataset.C_ort), dataset.R1))
    s = stiffness_scale(ct)
    y = dataset.C_hat / s[:, None]
    p = push_forward(torch.as_tensor(ct), torch.as_tensor(np.asarray(dataset.V, dtype=np.float64))).numpy()
    return y - p / stiffness_scale(p)[:, None]


def forward_config_from_data(dataset, f1_widths=(256, 256, 256), f2_widths=(1024, 1024, 1024), *,
                             f2_rotation: bool = True) -> ForwardConfig:
    """Fit the label scalers of F1 (``C_ort / rho``) and F2 on a dataset."""
    return ForwardConfig(
        f1_widths=list(f1_widths),
        f2_widths=list(f2_widths),
        f1_label=MinMax.fit(density_label(dataset.C_ort, dataset.rho)),
        f2_label=MinMax.fit(_f2_label(dataset)),
        f2_rotation=f2_rotation,
    )


def inverse_config_from_data(dataset, g1_widths=(512, 512, 512), g2_widths=(512, 512, 512),
                             canonical: bool = True) -> InverseConfig:
    """Fit the input scaler of the inverse model on a dataset's targets ``C``."""
    C = torch.as_tensor(np.asarray(dataset.C), dtype=torch.float64)
    x, _, _, s = InverseModel.raw_features(et.from_21(C), canonical)
    reach = (float(s.min()), float(s.max()))
    return InverseConfig(list(g1_widths), list(g2_widths), MinMax.fit(x.numpy()), canonical, reach)


# ---------------------------------------------------------------------------
# generic loop
# ---------------------------------------------------------------------------


def _split(n: int, val_fraction: float, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    check_range("val_fraction", val_fraction, 0.0, 0.5)
    perm = torch.randperm(n, generator=generator)
    n_val = max(1, int(round(val_fraction * n))) if n > 1 else 0
    return perm[n_val:], perm[:n_val]


def _fit(
    params,
    modules: list[torch.nn.Module],
    step: Callable[[torch.Tensor, bool], torch.Tensor],
    n_train: int,
    val_batches: list[torch.Tensor],
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    patience: int,
    generator: torch.Generator,
    progress: Progress | None,
    label: str,
    time_limit: float | None,
    min_lr: float = 1e-6,
    on_epoch: Callable[[int], None] | None = None,
    clip: float = 1.0,
) -> TrainHistory:
    """Adam + ReduceLROnPlateau; keeps the best validation state of ``modules``."""
    opt = torch.optim.Adam(params, lr=lr)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=patience, min_lr=min_lr)
    hist = TrainHistory()
    best = math.inf
    best_state = [copy.deepcopy(m.state_dict()) for m in modules]
    t0 = time.perf_counter()
    params = list(params)
    for epoch in range(epochs):
        if on_epoch is not None:
            on_epoch(epoch)
        for m in modules:
            m.train()
        perm = torch.randperm(n_train, generator=generator)
        total, count = 0.0, 0
        for a in range(0, n_train, batch_size):
            idx = perm[a : a + batch_size]
            loss = step(idx, True)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, clip)  # a stray huge batch cannot wreck the weights
            opt.step()
            total += float(loss.detach()) * len(idx)
            count += len(idx)
        for m in modules:
            m.eval()
        with torch.no_grad():
            vl = [float(step(v, False)) * len(v) for v in val_batches]
            n_val = sum(len(v) for v in val_batches)
            val = sum(vl) / max(n_val, 1)
        sched.step(val)
        hist.train_loss.append(total / max(count, 1))
        hist.val_loss.append(val)
        hist.lr.append(opt.param_groups[0]["lr"])
        hist.epochs = epoch + 1
        if val < best:
            best = val
            hist.best_epoch = epoch
            best_state = [copy.deepcopy(m.state_dict()) for m in modules]
        elapsed = time.perf_counter() - t0
        if progress is not None:
            progress(epoch + 1, epochs, f"{label} epoch {epoch + 1}: train {hist.train_loss[-1]:.3e} "
                                        f"val {val:.3e} lr {hist.lr[-1]:.1e} ({elapsed:.0f} s)")
        if time_limit is not None and elapsed > time_limit:
            break
        if opt.param_groups[0]["lr"] <= min_lr * 1.0001:
            break
    for m, st in zip(modules, best_state):
        m.load_state_dict(st)
        m.eval()
    hist.seconds = time.perf_counter() - t0
    return hist


def _batches(idx: torch.Tensor, size: int) -> list[torch.Tensor]:
    return [idx[a : a + size] for a in range(0, len(idx), size)]


# ---------------------------------------------------------------------------
# forward model
# ---------------------------------------------------------------------------


def train_forward(
    dataset,
    *,
    model: ForwardModel | None = None,
    f1_widths=(256, 256, 256),
    f2_widths=(1024, 1024, 1024),
    f2_rotation: bool = True,
    parts: tuple[str, ...] = ("f1", "f2"),
    epochs: tuple[int, int] | int = (60, 60),
    batch_size: int = 1024,
    lr: float = 2e-3,
    patience: int = 4,
    val_fraction: float = 0.02,
    augment: bool = True,
    seed: int = 0,
    time_limit: tuple[float | None, float | None] | float | None = None,
    progress: Progress | None = None,
) -> tuple[ForwardModel, dict[str, TrainHistory]]:
    """Train F1 and/or F2 on a dataset (each on its own FE labels, as in the paper).

    Parameters
    ----------
    dataset : LatticeDataset
        Training data (a validation split is held out from it).
    model : ForwardModel, optional
        Continue training this model (its scalers are kept); default: a new model
        with scalers fitted on ``dataset`` and the given widths.
    parts : tuple of {"f1", "f2"}
        Which sub-networks to train.
    epochs : int or (int, int)
        Maximum epochs of F1 and F2.
    batch_size, lr, patience : training hyper-parameters (Adam, plateau factor 0.5).
    val_fraction : float
        Fraction held out for validation / scheduling / best-state selection.
    augment : bool
        Random cube rotations for F2 (module docstring).
    seed : int
        Seeds initialisation, split and shuffling.
    time_limit : float or (float, float), optional
        Wall seconds after which each sub-network stops (after the running epoch).
    progress : callable, optional
        ``progress(done, total, message)`` once per epoch.

    Returns
    -------
    (ForwardModel, dict)
        The trained model (eval mode, float32) and ``{"f1": TrainHistory, "f2": ...}``.
    """
    for p in parts:
        if p not in ("f1", "f2"):
            fail("parts", f"{p!r} is not 'f1' or 'f2'", None)
    if len(dataset) < 4:
        fail("dataset", f"has {len(dataset)} samples", "train on at least a few samples")
    e1, e2 = (epochs, epochs) if isinstance(epochs, int) else epochs
    t1, t2 = (time_limit, time_limit) if not isinstance(time_limit, tuple) else time_limit
    gen = torch.Generator().manual_seed(int(seed))
    if model is None:
        model = ForwardModel(forward_config_from_data(dataset, f1_widths, f2_widths, f2_rotation=f2_rotation))
        init_uniform(model, gen)
    model = model.float()
    n = len(dataset)
    tr, va = _split(n, val_fraction, gen)
    f32 = torch.float32
    hist: dict[str, TrainHistory] = {}

    if "f1" in parts:
        z = topology_onehot(dataset.topology, f32)
        rho = torch.as_tensor(dataset.rho, dtype=f32)
        U = torch.as_tensor(dataset.U, dtype=f32)
        y = torch.as_tensor(model.config.f1_label.scale(density_label(dataset.C_ort, dataset.rho)), dtype=f32)

        def step1(idx, training):
            return torch.nn.functional.mse_loss(model.f1_raw(z[idx], rho[idx], U[idx]), y[idx])

        hist["f1"] = _fit_idx(model.f1, step1, tr, va, e1, batch_size, lr, patience, gen, progress, "F1", t1)

    if "f2" in parts:
        Ct = torch.as_tensor(rotate_voigt(from_9(dataset.C_ort), dataset.R1), dtype=torch.float64)
        Ch = et.from_21(torch.as_tensor(dataset.C_hat, dtype=torch.float64))
        V = torch.as_tensor(dataset.V, dtype=torch.float64)
        R1 = torch.as_tensor(np.asarray(dataset.R1), dtype=torch.float64)
        P = torch.as_tensor(CUBE_ROTATIONS, dtype=torch.float64)
        KP = et.bond_matrix(P)
        perms = torch.as_tensor(np.abs(CUBE_ROTATIONS).argmax(-1))  # V'_i = V[perm_i]
        s_all = stiffness_scale(et.to_21(Ct))
        with torch.no_grad():
            design = model.f1_features(topology_onehot(dataset.topology, f32), torch.as_tensor(dataset.rho, dtype=f32),
                                       torch.as_tensor(dataset.U, dtype=f32))

        def step2(idx, training):
            ct, ch, v, r1 = Ct[idx], Ch[idx], V[idx], R1[idx]
            if training and augment:
                k = torch.randint(0, len(P), (len(idx),), generator=gen)
                K = KP[k]
                ct = K @ ct @ K.transpose(-1, -2)
                ch = K @ ch @ K.transpose(-1, -2)
                v = torch.gather(v, 1, perms[k])
                r1 = P[k] @ r1  # P V R_I U X = V' (P R_I) U X for a cube rotation P
            pred = model.c_hat21(et.to_21(ct).to(f32), v.to(f32), design[idx], r1.to(f32))
            return mandel_loss(pred, et.to_21(ch).to(f32), s_all[idx].to(f32))

        hist["f2"] = _fit_idx(model.f2, step2, tr, va, e2, batch_size, lr, patience, gen, progress, "F2", t2)
    return model.eval(), hist


def _fit_idx(module, step, tr, va, epochs, batch_size, lr, patience, gen, progress, label, time_limit,
             on_epoch=None):
    """:func:`_fit` over index tensors ``tr`` (train) and ``va`` (validation)."""

    def step_tr(local_idx, training):
        return step(tr[local_idx] if training else local_idx, training)

    return _fit(list(module.parameters()), [module], step_tr, len(tr), _batches(va, 8192),
                epochs=epochs, batch_size=batch_size, lr=lr, patience=patience, generator=gen,
                progress=progress, label=label, time_limit=time_limit, on_epoch=on_epoch)


# ---------------------------------------------------------------------------
# inverse model
# ---------------------------------------------------------------------------


#: Geometry heads of a new inverse model's G2 (the shipped model's).
N_HEADS = 4


def train_inverse(
    dataset,
    forward: ForwardModel,
    *,
    model: InverseModel | None = None,
    g1_widths=(512, 512, 512),
    g2_widths=(512, 512, 512),
    canonical: bool = True,
    epochs: int = 60,
    batch_size: int = 1024,
    lr: float = 1e-3,
    patience: int = 4,
    tau: float = 1.0,
    val_fraction: float = 0.02,
    augment: bool = True,
    warmup_epochs: int = 2,
    size_weight: float = 2.0,
    posterior_weight: float = 1.0,
    n_heads: int | None = None,
    head_eps: float = 0.05,
    metric: str = "r2",
    seed: int = 0,
    time_limit: float | None = None,
    progress: Progress | None = None,
) -> tuple[InverseModel, TrainHistory]:
    """Train G1 and G2 jointly through the frozen forward model (main Eq. 4).

    The loss is the relative Mandel-norm reconstruction error between the target and
    ``F(G(target))`` (module docstring); the forward model is not updated.

    Parameters
    ----------
    dataset : LatticeDataset
        Its ``C`` are the targets (designs are not used: the inverse problem is
        ill-posed, main text Eq. 2).
    forward : ForwardModel
        Trained forward surrogate (frozen).
    model : InverseModel, optional
        Continue training this model; default: a new one (input scaler fitted here).
    canonical : bool
        Canonical-frame targets (see :mod:`graded.inverse.inverse_model`).
    tau : float
        Gumbel-softmax temperature during training (the paper uses 1).
    augment : bool
        Random target rotations when ``canonical`` is False (exact, module docstring).
    warmup_epochs : int
        Epochs (canonical frame only) during which a supervised term pulls G1 and G2
        towards the dataset's own design of each target (cross-entropy on the parts, squared
        error on the scaled rho, U, V and on R_I, R_II in the canonical frame), with a
        weight falling linearly to zero. It only gives the networks a physical starting
        point -- without it the sigmoids of G2 can saturate in the first steps (measured:
        rho stuck at its lower bound) -- the loss afterwards is the reconstruction alone.
    size_weight : float
        Exponent beta of a per-target weight ``(s / mean s)^beta``: 0 weighs every target's
        relative error equally; 1 leans towards the stiff targets, which dominate the
        per-component R^2 of raw stiffness; 2 (default, with ``metric="r2"``) makes the loss
        the summed ``1 - R^2``.
    posterior_weight : float
        Weight lambda of a persistent data-posterior term, added to
        the reconstruction loss of the drawn topology: the cross-entropy of G1 against the
        dataset's own topology of each target, plus the reconstruction loss of G2 given that
        topology. 0 is the paper's objective; the default 1 is the shipped model's. With it,
        G1 learns the posterior over the topologies that *produced* such a stiffness -- every one of them can reach the
        target -- instead of whatever the straight-through gradient favours, and G2 learns
        to complete those topologies. The validation loss (early stopping, learning-rate
        schedule) stays the reconstruction error of a drawn design.
    n_heads : int, optional
        Geometry heads of G2 (:mod:`graded.inverse.inverse_model`); default: the
        ``model``'s, or :data:`N_HEADS` for a new one. A one-head ``model`` is widened by
        :meth:`~graded.inverse.inverse_model.InverseModel.with_heads`.
        With several heads both reconstruction terms are multiple-choice losses
        (:func:`multiple_choice_loss`) and the head posterior learns which head wins;
        the validation loss is the error of the head the posterior picks.
    head_eps : float
        Weight share of the losing heads in the multiple-choice loss.
    metric : {"r2", "mandel"}
        Reconstruction error of a design: ``"mandel"`` the Mandel-norm error in the
        canonical frame (rotation invariant); ``"r2"`` (default) the squared errors of the 21
        constants in the target's own frame weighted by
        :func:`~graded.elastic.metrics.component_weights` of the
        training targets -- with ``size_weight = 2`` the loss is then the sum over the
        components of ``1 - R^2``, which the acceptance of the inverse model bounds. The
        model stays exactly rotation-equivariant either way (canonical frame); over
        randomly oriented targets ``"r2"`` is a rotation average of a weighted norm.
    Other parameters as in :func:`train_forward`.

    Returns
    -------
    (InverseModel, TrainHistory)
    """
    gen = torch.Generator().manual_seed(int(seed))
    model = _inverse_model(dataset, model, g1_widths, g2_widths, canonical, n_heads, gen)
    check_range("head_eps", head_eps, 0.0, 1.0)
    check_choice("metric", metric, ("mandel", "r2"))
    if metric == "r2" and not model.config.canonical:
        fail("metric", "'r2' needs a canonical-frame model", "train with canonical=True or metric='mandel'")
    model = model.float()
    forward = forward.float().eval()
    for p in forward.parameters():
        p.requires_grad_(False)
    tg = _prepare_targets(model, dataset, metric)
    tr, va = _split(len(dataset), val_fraction, gen)
    noise = torch.Generator().manual_seed(int(seed) + 1)
    sup = _supervision(model, dataset, tg.Q, labels=posterior_weight > 0,
                       warmup=model.config.canonical and warmup_epochs > 0)
    weight = {"w": 0.0}
    s_mean = float(stiffness_scale(np.asarray(dataset.C)).mean())
    rec = _Reconstruction(model, forward, head_eps, tg.weights)

    def on_epoch(epoch: int) -> None:
        weight["w"] = max(0.0, 1.0 - epoch / warmup_epochs) if "R1" in sup else 0.0

    def step(idx, training):
        x, target, s, own = tg.batch(idx, model, augment=training and augment, generator=gen)
        logits = model.posterior_logits(x)
        zz = model.sample_topology(logits, tau, generator=noise)
        sw = None if size_weight == 0 else (s / s_mean) ** size_weight
        loss, head_ce = rec(x, zz, target, s, sw, training, own)
        loss = loss + head_ce
        if training and weight["w"] > 0:
            loss = loss + weight["w"] * _warmup_loss(model, sup, idx, x, logits)
        if training and posterior_weight > 0:
            ce = model.topology_nll(logits, sup["labels"][idx])
            rec_t, head_ce_t = rec(x, sup["z"][idx], target, s, sw, training, own)
            loss = loss + posterior_weight * (ce + rec_t) + head_ce_t
        return loss

    hist = _fit_idx(model, step, tr, va, epochs, batch_size, lr, patience, gen, progress, "G", time_limit,
                    on_epoch=on_epoch)
    for p in forward.parameters():
        p.requires_grad_(True)
    return model.eval(), hist


def _inverse_model(dataset, model, g1_widths, g2_widths, canonical, n_heads, gen) -> InverseModel:
    """The model to train: ``model``, or a new one with its scaler fitted on ``dataset``;
    widened to ``n_heads`` geometry heads if it has one."""
    if model is None:
        model = InverseModel(inverse_config_from_data(dataset, g1_widths, g2_widths, canonical))
        init_uniform(model, gen)
        n_heads = N_HEADS if n_heads is None else n_heads
    n_heads = model.config.n_heads if n_heads is None else int(n_heads)
    if n_heads != model.config.n_heads:
        if model.config.n_heads != 1:
            fail("n_heads", f"{n_heads} differs from the model's {model.config.n_heads}",
                 f"use n_heads={model.config.n_heads} or start from a one-head model")
        model = model.with_heads(n_heads, generator=gen)
    return model


@dataclass
class _Targets:
    """The training targets, prepared once.

    ``C`` (n, 6, 6) float64 in their own frame. Canonical models: ``x`` (n, 22) scaled
    features, ``target`` (n, 21) canonical-frame constants, ``s`` (n,) magnitudes (float32),
    ``Q`` (n, 3, 3) canonical frames; with ``metric="r2"`` also ``own``: the Bond matrices
    back to the targets' own frame (n, 6, 6) and the targets there (n, 21), and the
    component ``weights`` (21,).
    """

    C: torch.Tensor
    x: torch.Tensor | None = None
    target: torch.Tensor | None = None
    s: torch.Tensor | None = None
    Q: torch.Tensor | None = None
    own: tuple[torch.Tensor, torch.Tensor] | None = None
    weights: torch.Tensor | None = None

    def batch(self, idx, model: InverseModel, *, augment: bool, generator: torch.Generator):
        """Features, targets, magnitudes and own-frame data (or None) of the targets ``idx``;
        a non-canonical model sees them randomly rotated if ``augment`` (exact, module docstring)."""
        if self.x is not None:
            own = None if self.own is None else (self.own[0][idx], self.own[1][idx])
            return self.x[idx], self.target[idx], self.s[idx], own
        Ci = self.C[idx]
        if augment:
            Ci = et.rotate_voigt(Ci, random_rotations_torch(len(idx), generator, torch.float64))
        xs, _, Cc, s = model.scaled_features(Ci)
        return xs.to(torch.float32), et.to_21(Cc).to(torch.float32), s.to(torch.float32), None


def _prepare_targets(model: InverseModel, dataset, metric: str) -> _Targets:
    f32 = torch.float32
    C = et.from_21(torch.as_tensor(np.asarray(dataset.C), dtype=torch.float64))
    if not model.config.canonical:
        return _Targets(C)
    x, Q, Cc, s = model.scaled_features(C)  # once: exactly invariant, no augmentation
    tg = _Targets(C, x.to(f32), et.to_21(Cc).to(f32), s.to(f32), Q)
    if metric == "r2":
        tg.weights = torch.as_tensor(component_weights(np.asarray(dataset.C)), dtype=f32)
        KQ = et.bond_matrix(Q.double()).to(f32)  # canonical -> the target's own frame
        tg.own = (KQ, torch.as_tensor(np.asarray(dataset.C), dtype=f32))
    return tg


def _supervision(model: InverseModel, dataset, Q: torch.Tensor | None, *, labels: bool, warmup: bool) -> dict:
    """Labels from the dataset's own designs: topology classes and blocks (for the
    posterior term and the warm-up), scaled geometry and rotations (warm-up)."""
    f32 = torch.float32
    sup = {}
    if labels or warmup:
        sup["labels"] = model.topology_labels(torch.as_tensor(part_index(dataset.topology)))
        sup["z"] = topology_onehot(dataset.topology, f32)
    if warmup:
        sup["geom"] = torch.as_tensor(np.concatenate([
            _unit(np.asarray(dataset.rho), *RHO_RANGE)[:, None],
            _unit(np.asarray(dataset.U), *STRETCH_RANGE), _unit(np.asarray(dataset.V), *STRETCH_RANGE)],
            1), dtype=f32)
        sup["R1"] = torch.as_tensor(np.asarray(dataset.R1), dtype=f32)
        sup["R2c"] = (Q.double().transpose(-1, -2) @ torch.as_tensor(np.asarray(dataset.R2))).to(f32)
    return sup


def _unit(v: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """``v`` mapped from [lo, hi] onto [0, 1]."""
    return (v - lo) / (hi - lo)


def _warmup_loss(model: InverseModel, sup: dict, idx, x, logits) -> torch.Tensor:
    """Supervised warm-up term: cross-entropy on the topology, squared errors of the
    scaled rho, U, V and of R_I, R_II (canonical frame) against the dataset's design."""
    ce = model.topology_nll(logits, sup["labels"][idx])
    rho, U, V, R1, R2 = model.geometry(x, sup["z"][idx])
    lo_s, hi_s = STRETCH_RANGE
    g = torch.cat([((rho - RHO_RANGE[0]) / (RHO_RANGE[1] - RHO_RANGE[0]))[:, None],
                   (U - lo_s) / (hi_s - lo_s), (V - lo_s) / (hi_s - lo_s)], 1)
    rot = (R1 - sup["R1"][idx]).square().mean() + (R2 - sup["R2c"][idx]).square().mean()
    return ce + (g - sup["geom"][idx]).square().mean() + rot


class _Reconstruction:
    """Reconstruction loss of the designs G2 gives for drawn or known topologies."""

    def __init__(self, model: InverseModel, forward: ForwardModel, head_eps: float, weights: torch.Tensor | None):
        self.model, self.forward, self.head_eps, self.weights = model, forward, head_eps, weights

    def error(self, C_pred, target, s, own) -> torch.Tensor:
        """Per-design error of canonical-frame predictions (B, [K,] 6, 6) against the
        canonical targets (B, 21); ``own``: ``None`` (Mandel norm) or, for ``metric="r2"``,
        the Bond matrices (B, 6, 6) back to the targets' own frame and the targets there (B, 21)."""
        if C_pred.dim() == 4:  # K heads
            target, s = target[:, None], s[:, None]
        if own is None:
            return mandel_error(et.to_21(C_pred), target, s)
        KQ, own21 = own
        if C_pred.dim() == 4:
            KQ, own21 = KQ[:, None], own21[:, None]
        return mandel_error(et.to_21(KQ @ C_pred @ KQ.transpose(-1, -2)), own21, s, self.weights)

    def __call__(self, x, z, target, s, sw, training, own=None):
        """Reconstruction loss of the designs for topology blocks ``z`` (B, 3, 14), and the
        head-posterior loss (0 with one head)."""
        model = self.model
        if model.config.n_heads == 1:
            e = self.error(self.forward(z, *model.geometry(x, z)), target, s, own)
            return (e if sw is None else e * sw).mean(), 0.0
        geom, head_logits = model.geometry_heads(x, z)
        K = model.config.n_heads
        zk = z.unsqueeze(-3).expand(z.shape[:-2] + (K,) + z.shape[-2:])
        err = self.error(self.forward(zk, *geom), target, s, own)
        if not training:  # what a draw gives: the head the posterior picks
            e = err.gather(-1, head_logits.argmax(-1, keepdim=True)).squeeze(-1)
            return (e if sw is None else e * sw).mean(), 0.0
        return multiple_choice_loss(err, head_logits, self.head_eps, sw)
