"""Regressor and conditional diffusion model of the voxel family.

One weights file carries three parts:

* **Code** (buffers): the :class:`graded.voxelcell.CellCode` of the training cells (principal
  components of their signed distance, unit variance each), in which the diffusion works.
* **Regressor** (voxels -> C11, C12, C44, V): a small 3D CNN on the cell's octant (solid and
  signed distance, padded by the octant's own mirror images) and the volume fraction (exact,
  counted from the voxels) -> ``asinh(C / LABEL_SCALE)``, min-max scaled. It ranks generated
  cells; through :meth:`VoxelModel.soft_input` (the decoded distance and a soft solid) it is
  differentiable in the code, which guidance for a second goal (Poisson's ratio) needs.
* **Denoiser**: a residual MLP predicting ``v = sqrt(a) eps - sqrt(1 - a) z0`` (the
  v-parametrisation, well conditioned at both ends of the schedule) from the noisy code
  ``z_t = sqrt(a) z0 + sqrt(1 - a) eps``, the time ``t`` in [0, 1] (cosine schedule
  ``a(t) = cos^2(pi t / 2)``) and the condition. The condition is the scaled (C11, C12, C44)
  and V with one flag per group: during training each group is dropped (set to 0, flag 0)
  with probability :data:`DROP_PROBABILITY`, so one network gives the conditional and the
  unconditional prediction, and can be asked for a stiffness with or without a volume
  fraction (classifier-free guidance, Ho & Salimans 2022, as in the paper).

Sampling is DDIM (deterministic, ``eta = 0``) with classifier-free guidance
``v = v_u + w (v_c - v_u)``; an optional goal (a differentiable loss of the predicted clean
code) moves the clean-code estimate down its gradient at every step.

Why a code and an MLP rather than a 3D U-Net on voxels (the paper's): on this machine's two
CPU cores one epoch of the small regressor CNN over 5,400 octants of 16^3 takes about 25 s, so
a denoising U-Net, which needs hundreds of epochs, would take days; the code's MLP trains in 2
minutes and samples a cell in about 10 ms.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from graded.validation import fail
from graded.voxelcell import (
    CellCode,
    expand_octant,
    fundamental_weights,
    octant_of,
    orbit_index,
    signed_distance,
)
from graded.voxelcell.code import DISTANCE_PAD

from ..forward import check_widths
from ..scaling import MinMax

__all__ = [
    "WEIGHTS_DIR",
    "load_voxel_model",
    "LABEL_SCALE",
    "DROP_PROBABILITY",
    "N_COND",
    "VoxelModelConfig",
    "VoxelModel",
    "alpha_bar",
    "paper_error",
    "poisson_ratio",
]

#: Directory of the shipped weights (``model.safetensors`` + ``model.json``).
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
#: Scale of the asinh label transform: constants well above it are learned in log space.
LABEL_SCALE = 1e-3
#: Probability of dropping each condition group (stiffness, volume fraction) in training.
DROP_PROBABILITY = 0.1
#: Condition values: scaled C11, C12, C44, V, then a flag per group (stiffness, V).
N_COND = 6
#: Width (voxels of distance) of the soft solid a code gives the regressor under guidance.
SOFT_WIDTH = 0.5
#: Clamp of the schedule away from 0 and 1 (the v-parametrisation needs neither end exactly).
_ALPHA_EPS = 1e-5


def alpha_bar(t: torch.Tensor) -> torch.Tensor:
    """Signal share ``a(t) = cos^2(pi t / 2)`` of the cosine schedule, clamped to (0, 1)."""
    return torch.cos(0.5 * math.pi * t).pow(2).clamp(_ALPHA_EPS, 1.0 - _ALPHA_EPS)


def paper_error(C_gen, C_target, span) -> np.ndarray:
    """The paper's error (Eq. 4): the mean over C11, C12, C44 of ``|gen - target| / (max - min)``.

    Parameters
    ----------
    C_gen, C_target : array_like, shape (..., 3)
        C11, C12, C44 (any common unit).
    span : array_like, shape (3,)
        ``max - min`` of each constant over the training data, same unit.

    Returns
    -------
    ndarray, shape (...)
        A fraction (0.05 is 5 %).
    """
    g, t = np.asarray(C_gen, dtype=np.float64), np.asarray(C_target, dtype=np.float64)
    return np.mean(np.abs(g - t) / np.asarray(span, dtype=np.float64), axis=-1)


def poisson_ratio(C):
    """In-axis Poisson's ratio ``C12 / (C11 + C12)`` of cubic constants (..., 3) (numpy or torch)."""
    return C[..., 1] / (C[..., 0] + C[..., 1])


@dataclass
class VoxelModelConfig:
    """Sizes, scalers and data ranges of a :class:`VoxelModel` (stored in the weights sidecar).

    Attributes
    ----------
    h : int
        Voxels per octant edge (cells of ``2 h`` per edge).
    dim : int
        Code components.
    regressor_widths : list of 3 int
        Channels of the regressor's three stages.
    denoiser_width, denoiser_depth : int
        Width and number of residual blocks of the denoiser.
    label : MinMax
        Of ``asinh(C / LABEL_SCALE)`` (3,) over the training labels.
    rho_range : [float, float]
        Volume fractions of the training cells.
    C_min, C_max : list of 3 float
        Range of C11, C12, C44 (/ E_s) over the training labels: the reach, and the spans of
        the paper's error (:func:`paper_error`).
    """

    h: int = 16
    dim: int = 64
    regressor_widths: list[int] = field(default_factory=lambda: [16, 32, 64])
    denoiser_width: int = 256
    denoiser_depth: int = 3
    label: MinMax = field(default_factory=lambda: MinMax(np.zeros(3), np.ones(3)))
    rho_range: list[float] = field(default_factory=lambda: [0.15, 0.6])
    C_min: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    C_max: list[float] = field(default_factory=lambda: [1.0, 1.0, 1.0])

    @property
    def span(self) -> np.ndarray:
        """(3,) ``C_max - C_min``, / E_s."""
        return np.asarray(self.C_max) - np.asarray(self.C_min)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["label"] = self.label.to_dict()
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VoxelModelConfig:
        try:
            check_widths(data["regressor_widths"])
            check_widths([int(data["denoiser_width"])] * int(data["denoiser_depth"]))
            h, dim = int(data["h"]), int(data["dim"])
            if not (2 <= h <= 64 and 1 <= dim <= h * (h + 1) * (h + 2) // 6):
                raise ValueError(f"h {h} / dim {dim} out of range")
            return cls(h=h, dim=dim, regressor_widths=[int(w) for w in data["regressor_widths"]],
                       denoiser_width=int(data["denoiser_width"]), denoiser_depth=int(data["denoiser_depth"]),
                       label=MinMax.from_dict(data["label"]), rho_range=[float(v) for v in data["rho_range"]],
                       C_min=[float(v) for v in data["C_min"]], C_max=[float(v) for v in data["C_max"]])
        except (KeyError, TypeError, ValueError) as exc:
            fail("config", f"voxel model config is malformed ({exc})", "re-train the model (graded train voxel)")


def _time_features(t: torch.Tensor, n: int = 32) -> torch.Tensor:
    """Sinusoidal features (m, 2 n) of times t (m,) in [0, 1]."""
    freqs = torch.exp(torch.linspace(0.0, math.log(1000.0), n, dtype=t.dtype, device=t.device))
    a = t[:, None] * freqs[None, :]
    return torch.cat([torch.sin(a), torch.cos(a)], dim=1)


class _Block(nn.Module):
    """Residual block ``x + W2 silu(W1 norm(x) * (1 + s) + b)`` with (s, b) from the embedding."""

    def __init__(self, width: int):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.lin1 = nn.Linear(width, width)
        self.lin2 = nn.Linear(width, width)
        self.film = nn.Linear(width, 2 * width)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        s, b = self.film(emb).chunk(2, dim=1)
        return x + self.lin2(nn.functional.silu(self.lin1(self.norm(x)) * (1.0 + s) + b))


def _symmetric_pad(x: torch.Tensor) -> torch.Tensor:
    """Pad (m, c, h, h, h) by one voxel on every side with the voxel itself (the mirror images
    that surround an octant in its cell)."""
    for ax in (2, 3, 4):
        x = torch.cat([x.narrow(ax, 0, 1), x, x.narrow(ax, x.shape[ax] - 1, 1)], dim=ax)
    return x


class VoxelRegressor(nn.Module):
    """3D CNN on an octant (m, 2, h, h, h): solid and scaled signed distance -> scaled labels (m, 3).

    Three stages of two 3x3x3 convolutions (padding by the mirror images the octant has in its
    cell), each stage but the last followed by 2x average pooling, then the flattened features
    and the scaled volume fraction through a hidden layer.
    """

    def __init__(self, h: int, widths: list[int]):
        super().__init__()
        if len(widths) != 3 or h % 4:
            fail("regressor_widths", f"{widths} for h={h}", "give three stage widths, h divisible by 4")
        self.convs = nn.ModuleList()
        d = 2
        for w in widths:
            self.convs.append(nn.Conv3d(d, w, 3))
            self.convs.append(nn.Conv3d(w, w, 3))
            d = w
        self.head = nn.Sequential(nn.Linear(d * (h // 4) ** 3 + 1, 256), nn.SiLU(), nn.Linear(256, 3))

    def forward(self, x: torch.Tensor, rho_scaled: torch.Tensor) -> torch.Tensor:
        for i, conv in enumerate(self.convs):
            x = nn.functional.silu(conv(_symmetric_pad(x)))
            if i in (1, 3):
                x = nn.functional.avg_pool3d(x, 2)
        return self.head(torch.cat([x.flatten(1), rho_scaled[:, None]], dim=1))


@lru_cache(maxsize=8)
def _octant_to_fundamental(h: int) -> np.ndarray:
    """(h, h, h) int64: the fundamental-domain entry of each octant voxel."""
    ids, _ = orbit_index(2 * h)
    return ids[:h, :h, :h].copy()


class VoxelModel(nn.Module):
    """Code, regressor and conditional denoiser of the voxel family (module docstring)."""

    def __init__(self, config: VoxelModelConfig):
        super().__init__()
        self.config = config
        F = config.h * (config.h + 1) * (config.h + 2) // 6
        self.register_buffer("code_mean", torch.zeros(F, dtype=torch.float64))
        self.register_buffer("code_basis", torch.zeros(config.dim, F, dtype=torch.float64))
        self.register_buffer("code_scale", torch.ones(config.dim, dtype=torch.float64))
        self.regressor = VoxelRegressor(config.h, list(config.regressor_widths))
        w = config.denoiser_width
        self.inp = nn.Linear(config.dim, w)
        self.emb = nn.Sequential(nn.Linear(64 + N_COND, w), nn.SiLU(), nn.Linear(w, w), nn.SiLU())
        self.blocks = nn.ModuleList(_Block(w) for _ in range(config.denoiser_depth))
        self.out = nn.Sequential(nn.LayerNorm(w), nn.Linear(w, config.dim))
        self.register_buffer("lo", torch.as_tensor(config.label.lo, dtype=torch.float32), persistent=False)
        self.register_buffer("span", torch.as_tensor(config.label.span, dtype=torch.float32), persistent=False)

    # --- the code -----------------------------------------------------------------------
    @property
    def code(self) -> CellCode:
        """The :class:`~graded.voxelcell.CellCode` held in the buffers."""
        return CellCode(h=self.config.h, mean=self.code_mean.numpy(), basis=self.code_basis.numpy(),
                        scale=self.code_scale.numpy())

    def set_code(self, code: CellCode) -> None:
        """Store ``code`` in the buffers (before training)."""
        if code.h != self.config.h or code.dim != self.config.dim:
            fail("code", f"has h={code.h}, dim={code.dim}", f"give h={self.config.h}, dim={self.config.dim}")
        with torch.no_grad():
            self.code_mean.copy_(torch.as_tensor(code.mean))
            self.code_basis.copy_(torch.as_tensor(code.basis))
            self.code_scale.copy_(torch.as_tensor(code.scale))

    # --- labels and conditions -------------------------------------------------------------
    @staticmethod
    def label(C) -> np.ndarray:
        """``asinh(C / LABEL_SCALE)`` of constants (..., 3) (before min-max scaling)."""
        return np.arcsinh(np.asarray(C, dtype=np.float64) / LABEL_SCALE)

    def scale_rho(self, rho):
        """Volume fractions mapped to [-1, 1] over ``config.rho_range`` (numpy or torch)."""
        lo, hi = self.config.rho_range
        return 2.0 * (rho - lo) / (hi - lo) - 1.0

    def condition(self, C=None, rho=None, m: int | None = None) -> torch.Tensor:
        """Condition vectors (m, :data:`N_COND`) for stiffnesses (m, 3) and/or volume fractions (m,).

        ``None`` leaves a group out (its values and flag 0): ``condition(m=4)`` is the
        unconditional one.
        """
        if m is None:
            m = len(C) if C is not None else len(rho)
        c = torch.zeros(m, N_COND)
        if C is not None:
            s = self.config.label.scale(self.label(np.asarray(C).reshape(m, 3)))
            c[:, :3] = torch.as_tensor(s, dtype=torch.float32)
            c[:, 4] = 1.0
        if rho is not None:
            c[:, 3] = torch.as_tensor(self.scale_rho(np.asarray(rho, dtype=np.float64).reshape(m)), dtype=torch.float32)
            c[:, 5] = 1.0
        return c

    # --- regressor -------------------------------------------------------------------------
    def regress_scaled(self, octants: torch.Tensor, rho: torch.Tensor) -> torch.Tensor:
        """Scaled labels in [-1, 1] (m, 3) of regressor inputs (m, 2, h, h, h) (:func:`regressor_input`)."""
        return self.regressor(octants, self.scale_rho(rho))

    def regress(self, octants: torch.Tensor, rho: torch.Tensor) -> torch.Tensor:
        """C11, C12, C44 / E_s (m, 3) of regressor inputs (m, 2, h, h, h), differentiable."""
        y = 0.5 * (self.regress_scaled(octants, rho) + 1.0) * self.span + self.lo
        return LABEL_SCALE * torch.sinh(y)

    def soft_input(self, z: torch.Tensor, rho: float) -> torch.Tensor:
        """Regressor inputs (m, 2, h, h, h) of codes (m, dim), differentiable in them.

        The decoded distance, and in place of the solid a sigmoid of it about its ``rho``
        quantile (over the octant, whose volume fraction is the cell's) of width
        :data:`SOFT_WIDTH` voxels.
        """
        w = torch.as_tensor(1.0 / fundamental_weights(self.config.h), dtype=z.dtype)
        vals = ((z.to(self.code_basis.dtype) * self.code_scale) @ self.code_basis + self.code_mean).to(z.dtype) * w
        idx = torch.as_tensor(_octant_to_fundamental(self.config.h))
        field = vals[:, idx]  # (m, h, h, h)
        t = torch.quantile(field.reshape(field.shape[0], -1), float(rho), dim=1)
        solid = torch.sigmoid((t[:, None, None, None] - field) / SOFT_WIDTH)
        return torch.stack([solid, field / self.distance_scale], dim=1)

    @property
    def distance_scale(self) -> float:
        """Largest distance of the code's fields (voxels): the regressor reads distances divided by it."""
        return float(max(1, round(DISTANCE_PAD * 2 * self.config.h)))

    def regressor_input(self, solids) -> tuple[torch.Tensor, np.ndarray]:
        """Regressor inputs (m, 2, h, h, h) float32 and volume fractions (m,) of cells (m, n, n, n) or octants."""
        arr = np.asarray(solids, dtype=bool)
        arr = arr[None] if arr.ndim == 3 else arr
        h = self.config.h
        if arr.shape[1:] not in ((h,) * 3, (2 * h,) * 3):
            fail("solids", f"has shape {arr.shape}", f"give cells of {2 * h}^3 or octants of {h}^3")
        out = np.empty((arr.shape[0], 2, h, h, h), dtype=np.float32)
        for i, s in enumerate(arr):
            cell = expand_octant(s) if s.shape[0] == h else s
            out[i, 0] = octant_of(cell)
            out[i, 1] = octant_of(signed_distance(cell)) / self.distance_scale
        rho = out[:, 0].reshape(len(out), -1).mean(axis=1).astype(np.float64)
        return torch.as_tensor(out), rho

    def predict(self, solids) -> np.ndarray:
        """Regressor values (m, 4): C11, C12, C44 / E_s and the volume fraction of cells.

        Parameters
        ----------
        solids : array_like of bool, shape (m, n, n, n) or (m, h, h, h)
            Cubic-symmetric cells or their octants.
        """
        x, rho = self.regressor_input(solids)
        with torch.no_grad():
            C = torch.cat([self.regress(x[j : j + 256], torch.as_tensor(rho[j : j + 256], dtype=torch.float32))
                           for j in range(0, len(x), 256)]).double().numpy()
        return np.concatenate([C, rho[:, None]], axis=1)

    # --- denoiser --------------------------------------------------------------------------
    def velocity(self, z_t: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Predicted ``v`` (m, dim) of noisy codes (m, dim) at times (m,) under conditions (m, N_COND)."""
        e = self.emb(torch.cat([_time_features(t), cond], dim=1))
        x = self.inp(z_t)
        for blk in self.blocks:
            x = blk(x, e)
        return self.out(x)

    def sample(
        self,
        cond: torch.Tensor,
        generator: torch.Generator,
        *,
        steps: int = 50,
        guidance: float = 1.0,
        goal: Callable[[torch.Tensor], torch.Tensor] | None = None,
        goal_weight: float = 0.0,
        noise: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """DDIM samples of codes (m, dim) under conditions (m, :data:`N_COND`).

        Parameters
        ----------
        cond : Tensor, shape (m, N_COND)
            From :meth:`condition`.
        generator : torch.Generator
            Draws the initial noise (unless ``noise`` is given).
        steps : int
            DDIM steps from t = 1 to t = 0.
        guidance : float
            Classifier-free guidance scale ``w`` (1: the conditional model alone; 0: unconditional).
        goal : callable, optional
            Differentiable loss (m,) of clean codes (m, dim); each step moves the clean-code
            estimate by ``-goal_weight`` times its gradient.
        goal_weight : float
        noise : Tensor, shape (m, dim), optional
            The initial noise (DDIM is deterministic given it: interpolating noises
            interpolates cells).

        Returns
        -------
        Tensor, shape (m, dim), float32
        """
        m = cond.shape[0]
        z = torch.randn(m, self.config.dim, generator=generator) if noise is None else noise.clone()
        uncond = torch.zeros_like(cond)
        ts = torch.linspace(1.0, 0.0, steps + 1)
        for i in range(steps):
            t, s = ts[i], ts[i + 1]
            a_t, a_s = alpha_bar(t), alpha_bar(s)
            tt = torch.full((m,), float(t))
            with torch.no_grad():
                if guidance == 1.0:
                    v = self.velocity(z, tt, cond)
                else:
                    vv = self.velocity(torch.cat([z, z]), torch.cat([tt, tt]), torch.cat([cond, uncond]))
                    v = vv[m:] + guidance * (vv[:m] - vv[m:])
            z0 = a_t.sqrt() * z - (1.0 - a_t).sqrt() * v
            if goal is not None and goal_weight > 0:
                g0 = z0.detach().requires_grad_(True)
                (grad,) = torch.autograd.grad(goal(g0).sum(), g0)
                z0 = z0 - goal_weight * grad
            eps = ((z - a_t.sqrt() * z0) / (1.0 - a_t).sqrt())
            z = a_s.sqrt() * z0 + (1.0 - a_s).sqrt() * eps if i < steps - 1 else z0
        return z.detach()


def load_voxel_model(stem: str | os.PathLike | None = None) -> VoxelModel:
    """Load a :class:`VoxelModel` (default: the shipped one) after every check of
    :mod:`graded.inverse.weights` (never unpickles), in eval mode."""
    from ..weights import load_model

    return load_model(WEIGHTS_DIR / "model" if stem is None else stem, "voxel", VoxelModelConfig, VoxelModel)
