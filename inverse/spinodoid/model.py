"""Forward and inverse networks of the spinodoid family (Kumar et al. 2020, Fig. 4).

Design features ``x = (rho, o_1, o_2, o_3, o_1 t_1, o_2 t_2, o_3 t_3)`` (7,): the density, whether
each cone is open (``o_i`` = 1 for ``theta_i > 0``) and its half-angle ``t_i = theta_i / 90``. The
forward network maps them to the nine orthotropic constants of the cell in its principal frame
(order of :func:`graded.elastic.to_9`: C11, C12, C13, C22, C23, C33, C44, C55, C66), learned as
``asinh(C / LABEL_SCALE)`` (log-like over the three decades the constants span, linear through 0)
and min-max scaled. The model is exactly equivariant under the six axis permutations: its output
is the average over the permutations ``p`` of the network evaluated at ``theta[p]`` with its output
permuted back (:data:`PERMUTATIONS`), the symmetry the FE labels have exactly.

The inverse network (the tandem scheme of Eq. 7) maps a target's nine constants in its principal
frame, and a draw ``z`` of standard normal noise, to a design: ``rho`` in the dataset's range,
open-cone weights ``o_i`` in (0, 1) and angles in [15, 90] degrees, all continuous (no Gumbel
sampling): it is trained through the frozen forward model, which is smooth in ``o_i``, with a
penalty ``o (1 - o)`` that drives the weights to 0 or 1; designs are read off by rounding ``o_i``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from graded.elastic import from_9, to_9
from graded.validation import fail

from ..forward import check_widths, mlp
from ..scaling import MinMax
from .dataset import PERMUTATIONS, permutation_augment

__all__ = [
    "LABEL_SCALE",
    "N_FEATURES",
    "design_features",
    "SpinodoidForwardConfig",
    "SpinodoidForward",
    "SpinodoidInverseConfig",
    "SpinodoidInverse",
    "entropy_penalty",
]

#: Scale of the asinh label transform: constants well above it are learned in log space.
LABEL_SCALE = 1e-3
N_FEATURES = 7
#: Smallest open cone and the widest (degrees).
_THETA_LO, _THETA_HI = 15.0, 90.0


def design_features(rho, theta) -> np.ndarray:
    """Features (n, 7) of designs: ``rho`` (n,), ``theta`` (n, 3) degrees (0 = closed cone)."""
    rho = np.asarray(rho, dtype=np.float64).reshape(-1, 1)
    theta = np.asarray(theta, dtype=np.float64).reshape(-1, 3)
    o = (theta > 0).astype(np.float64)
    return np.concatenate([rho, o, o * theta / 90.0], axis=1)


def _index_maps() -> tuple[np.ndarray, np.ndarray]:
    """For every axis permutation: where each of the nine constants goes, and the way back."""
    probe = np.arange(1.0, 10.0)
    fwd, back = [], []
    for k in range(len(PERMUTATIONS)):
        _, C6 = permutation_augment(np.zeros((1, 3)), from_9(probe)[None])
        moved = np.rint(to_9(C6[k])).astype(int) - 1  # permuted[i] = original[moved[i]]
        fwd.append(moved)
        back.append(np.argsort(moved))
    return np.array(fwd), np.array(back)


_FWD9, _BACK9 = _index_maps()


def _permuted_features(x: torch.Tensor) -> torch.Tensor:
    """(6, n, 7): the features under every axis permutation (permutation-major)."""
    out = []
    for p in PERMUTATIONS:
        cols = [0] + [1 + i for i in p] + [4 + i for i in p]
        out.append(x[:, cols])
    return torch.stack(out)


@dataclass
class SpinodoidForwardConfig:
    """Sizes and scalers of a :class:`SpinodoidForward` (stored in the weights sidecar)."""

    widths: list[int] = field(default_factory=lambda: [128, 128, 128, 128])
    label: MinMax = field(default_factory=lambda: MinMax(np.zeros(9), np.ones(9)))
    rho_range: list[float] = field(default_factory=lambda: [0.3, 0.9])
    #: Smallest and largest Mandel norm ``||M C||_F`` of the training labels (/ E_s): the reach.
    reach: list[float] = field(default_factory=lambda: [0.0, 1e9])

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["label"] = self.label.to_dict()
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SpinodoidForwardConfig:
        try:
            check_widths(data["widths"])
            return cls(widths=[int(w) for w in data["widths"]], label=MinMax.from_dict(data["label"]),
                       rho_range=[float(v) for v in data["rho_range"]], reach=[float(v) for v in data["reach"]])
        except (KeyError, TypeError, ValueError) as exc:
            fail("config", f"spinodoid forward-model config is malformed ({exc})", "re-save the model")


class SpinodoidForward(nn.Module):
    """Design features (n, 7) -> nine orthotropic constants (n, 9) / E_s, permutation-equivariant."""

    def __init__(self, config: SpinodoidForwardConfig):
        super().__init__()
        self.config = config
        self.net = mlp(N_FEATURES, list(config.widths), 9, activation=nn.SiLU)
        self.register_buffer("lo", torch.as_tensor(config.label.lo, dtype=torch.float32), persistent=False)
        self.register_buffer("span", torch.as_tensor(config.label.span, dtype=torch.float32), persistent=False)
        self.register_buffer("back", torch.as_tensor(_BACK9, dtype=torch.int64), persistent=False)

    def raw(self, x: torch.Tensor) -> torch.Tensor:
        """The network alone: scaled labels in [-1, 1] (n, 9), not symmetrised (for training)."""
        return self.net(x)

    def label_space(self, x: torch.Tensor) -> torch.Tensor:
        """Symmetrised labels ``asinh(C / LABEL_SCALE)`` (n, 9): the permutation average."""
        n = x.shape[0]
        y = self.net(_permuted_features(x).reshape(-1, N_FEATURES)).reshape(len(PERMUTATIONS), n, 9)
        y = 0.5 * (y + 1.0) * self.span + self.lo  # the permuted cells' labels
        return y.gather(2, self.back[:, None, :].expand(-1, n, -1)).mean(0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Nine constants (n, 9), normalised by E_s."""
        return LABEL_SCALE * torch.sinh(self.label_space(x))

    @staticmethod
    def label(C9: np.ndarray) -> np.ndarray:
        """The network's label space of constants (n, 9) (before min-max scaling)."""
        return np.arcsinh(np.asarray(C9) / LABEL_SCALE)

    def predict(self, rho, theta) -> np.ndarray:
        """Nine constants (n, 9) of designs (float64 numpy in, out)."""
        x = torch.as_tensor(design_features(rho, theta), dtype=torch.float32)
        with torch.no_grad():
            return self(x).double().numpy()


@dataclass
class SpinodoidInverseConfig:
    """Sizes of a :class:`SpinodoidInverse` and the forward scaler it reads targets with."""

    widths: list[int] = field(default_factory=lambda: [128, 128, 128, 128])
    n_noise: int = 3
    label: MinMax = field(default_factory=lambda: MinMax(np.zeros(9), np.ones(9)))
    rho_range: list[float] = field(default_factory=lambda: [0.3, 0.9])

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["label"] = self.label.to_dict()
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SpinodoidInverseConfig:
        try:
            check_widths(data["widths"])
            n_noise = int(data["n_noise"])
            if not 0 <= n_noise <= 64:
                raise ValueError(f"n_noise {n_noise} outside 0..64")
            return cls(widths=[int(w) for w in data["widths"]], n_noise=n_noise,
                       label=MinMax.from_dict(data["label"]), rho_range=[float(v) for v in data["rho_range"]])
        except (KeyError, TypeError, ValueError) as exc:
            fail("config", f"spinodoid inverse-model config is malformed ({exc})", "re-save the model")


class SpinodoidInverse(nn.Module):
    """Scaled target constants (n, 9) and noise (n, n_noise) -> design features (n, 7)."""

    def __init__(self, config: SpinodoidInverseConfig):
        super().__init__()
        self.config = config
        self.net = mlp(9 + config.n_noise, list(config.widths), 7, activation=nn.SiLU)

    def forward(self, s: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        h = self.net(torch.cat([s, z], dim=1))
        lo, hi = self.config.rho_range
        rho = lo + (hi - lo) * torch.sigmoid(h[:, :1])
        o = torch.sigmoid(h[:, 1:4])
        t = (_THETA_LO + (_THETA_HI - _THETA_LO) * torch.sigmoid(h[:, 4:7])) / 90.0
        return torch.cat([rho, o, o * t], dim=1)

    def scale_targets(self, C9: np.ndarray) -> torch.Tensor:
        """Targets (n, 9) / E_s -> the network's input."""
        y = SpinodoidForward.label(C9)
        return torch.as_tensor(self.config.label.scale(y), dtype=torch.float32)

    def draw(self, C9: np.ndarray, n_draws: int, generator: torch.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``n_draws`` designs per target, read off by rounding the open-cone weights.

        Returns
        -------
        rho : ndarray, shape (n, n_draws)
        theta : ndarray, shape (n, n_draws, 3)
            Degrees; a target whose draw closes every cone keeps its most open one.
        """
        s = self.scale_targets(np.atleast_2d(C9))
        n = s.shape[0]
        z = torch.randn(n * n_draws, self.config.n_noise, generator=generator)
        with torch.no_grad():
            x = self(s.repeat_interleave(n_draws, 0), z).double().numpy()
        rho = x[:, 0]
        o = x[:, 1:4]
        t = np.where(o > 0, x[:, 4:7] / np.maximum(o, 1e-12), 0.0) * 90.0
        t = np.clip(t, _THETA_LO, _THETA_HI)
        is_open = o >= 0.5
        none = ~is_open.any(axis=1)
        is_open[none, np.argmax(o[none], axis=1)] = True
        theta = np.where(is_open, t, 0.0)
        return rho.reshape(n, n_draws), theta.reshape(n, n_draws, 3)


def entropy_penalty(x: torch.Tensor) -> torch.Tensor:
    """Mean ``o (1 - o)`` of the open-cone weights of design features (n, 7): 0 when all are 0 or 1."""
    o = x[:, 1:4]
    return (o * (1.0 - o)).mean()

