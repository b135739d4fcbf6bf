"""Forward model F: design -> stiffness (main text "The Forward Model", SI section 3).

``F = F1 -> Bond(R_I) -> F2 -> Bond(R_II)``:

1. ``F1`` (MLP) maps the topology, the relative density ``rho`` and the first stretches
   ``U`` to the 9 orthotropic constants ``C_ort`` of the stretched, unrotated cell;
2. ``C_tilde = K(R_I) C_ort K(R_I)^T`` (exact Bond rotation, SI Eqs. 7-9);
3. ``F2`` (MLP) maps ``C_tilde`` and the second stretches ``V`` to ``C_hat``, the
   stiffness of the cell ``V R_I U X``;
4. ``C = K(R_II) C_hat K(R_II)^T`` (exact).

Every step is a torch operation, so ``C`` is differentiable with respect to every
design parameter (the inverse model trains through it).

Topology encoding
-----------------
A topology is three parts ``(tessellation, id)``; each part is one of 14 classes
(:data:`PARTS`), so the network input is three one-hot blocks ``z`` of shape (..., 3, 14)
-- exactly what the inverse model's Gumbel-softmax emits. Because the lattice is the
*union* of its parts, the order of the three slots and repeated parts do not change the
cell. ``F1`` therefore sees the part-presence vector ``1 - prod_k (1 - z_k)`` (14 values,
exactly 0/1 for one-hot blocks, differentiable for soft ones), which makes the model
invariant to slot order and to duplicates by construction.

Scalings (see :mod:`graded.inverse.scaling`)
--------------------------------------------
* ``F1`` features: presence, ``rho`` and ``U`` min-max scaled (SI Eq. 2) plus
  ``log rho``; label ``C_ort / rho`` min-max scaled to [-1, 1] (SI Eq. 3).
* ``F2`` features: ``C_tilde / s`` (s: rotation-invariant magnitude), ``log s`` and ``V``
  (SI Eq. 2); label ``C_hat / s`` min-max scaled to [-1, 1].
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from graded.elastic import torch as et
from graded.validation import check_shape, fail

from .scaling import (
    RHO_RANGE,
    STRETCH_RANGE,
    MinMax,
    log_scale_feature,
    scale_unit,
    stiffness_scale,
)

__all__ = [
    "PARTS",
    "N_PARTS",
    "part_index",
    "topology_onehot",
    "onehot_to_topology",
    "presence",
    "mlp",
    "check_widths",
    "init_uniform",
    "push_forward",
    "ForwardConfig",
    "ForwardModel",
    "CUBE_ROTATIONS",
]

#: The 14 parts a slot can hold, as (tessellation, topology id); class k = (t-1)*7 + (id-1).
PARTS: tuple[tuple[int, int], ...] = tuple((t, s) for t in (1, 2) for s in range(1, 8))
N_PARTS = len(PARTS)
_LOG_RHO = (math.log(RHO_RANGE[0]), math.log(RHO_RANGE[1]))


def part_index(topology: np.ndarray) -> np.ndarray:
    """Class index 0..13 of each part.

    Parameters
    ----------
    topology : int array, shape (..., 3, 2)
        ``[tessellation, id]`` per part (the dataset's encoding).

    Returns
    -------
    int64 array, shape (..., 3)
    """
    topo = np.asarray(topology)
    if topo.shape[-2:] != (3, 2):
        fail("topology", f"has shape {topo.shape}, expected (..., 3, 2) [tessellation, id]", None)
    t, s = topo[..., 0].astype(np.int64), topo[..., 1].astype(np.int64)
    if np.any((t < 1) | (t > 2)) or np.any((s < 1) | (s > 7)):
        fail("topology", "tessellation must be 1 or 2 and topology id 1..7", "see SI Table S1")
    return (t - 1) * 7 + (s - 1)


def topology_onehot(topology: np.ndarray, dtype=torch.float32) -> torch.Tensor:
    """One-hot blocks (..., 3, 14) of ``[tessellation, id]`` parts (..., 3, 2)."""
    idx = torch.as_tensor(part_index(topology))
    return nn.functional.one_hot(idx, N_PARTS).to(dtype)


def onehot_to_topology(z: torch.Tensor | np.ndarray) -> np.ndarray:
    """Inverse of :func:`topology_onehot`: (..., 3, 14) -> int8 (..., 3, 2), parts sorted."""
    k = np.asarray(torch.as_tensor(z).argmax(dim=-1))
    parts = np.stack([k // 7 + 1, k % 7 + 1], axis=-1).astype(np.int8)
    # canonical order of the dataset: parts sorted lexicographically by (t, id) == by k
    order = np.argsort(k, axis=-1, kind="stable")
    return np.take_along_axis(parts, order[..., None], axis=-2)


def presence(z: torch.Tensor) -> torch.Tensor:
    """Part-presence vector ``1 - prod_k (1 - z_k)`` of one-hot blocks (..., 3, 14) -> (..., 14)."""
    return 1.0 - torch.prod(1.0 - z, dim=-2)


#: Voigt index I -> tensor indices (i, j).
_VOIGT_PAIRS = ((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1))
_TRIU_I, _TRIU_J = np.triu_indices(6)


def push_forward(c21, V):
    """Affine push-forward of stiffnesses by the stretch ``diag(V)``, divided by ``det V``.

    ``P_ijkl = V_i V_j V_k V_l C_ijkl / (V_1 V_2 V_3)`` (no sum): the stiffness a
    stretching-dominated lattice would have if its struts were carried along by the
    stretch. It explains most of the change of shape of the stiffness under V, so F2
    learns only the remainder.

    Parameters
    ----------
    c21 : tensor (..., 21)
    V : tensor (..., 3)

    Returns
    -------
    tensor (..., 21)
    """
    f = torch.stack([V[..., i] * V[..., j] for i, j in _VOIGT_PAIRS], -1)  # (..., 6)
    fI = f[..., torch.as_tensor(_TRIU_I)]
    fJ = f[..., torch.as_tensor(_TRIU_J)]
    return c21 * fI * fJ / V.prod(-1)[..., None]


def mlp(n_in: int, widths: list[int], n_out: int, slope: float = 0.01, activation=None) -> nn.Sequential:
    """Linear + leaky-ReLU hidden layers (SI Eq. 11), linear output.

    ``activation`` (an ``nn.Module`` class, e.g. ``nn.SiLU``) replaces the leaky ReLU where a
    smooth network is wanted (designs refined by gradients through it).
    """
    layers: list[nn.Module] = []
    d = n_in
    for w in widths:
        layers += [nn.Linear(d, w), nn.LeakyReLU(slope) if activation is None else activation()]
        d = w
    layers.append(nn.Linear(d, n_out))
    return nn.Sequential(*layers)


def init_uniform(module: nn.Module, generator: torch.Generator) -> None:
    """Kaiming-uniform init (PyTorch's default) of every Linear in ``module`` from an
    explicit generator."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            bound = 1.0 / math.sqrt(m.in_features)
            with torch.no_grad():
                m.weight.uniform_(-bound, bound, generator=generator)
                m.bias.uniform_(-bound, bound, generator=generator)


def _cube_rotations() -> np.ndarray:
    """The 24 proper rotations mapping the coordinate axes onto themselves (signed permutations)."""
    import itertools

    out = []
    for perm in itertools.permutations(range(3)):
        for signs in itertools.product((1.0, -1.0), repeat=3):
            P = np.zeros((3, 3))
            for i, j in enumerate(perm):
                P[i, j] = signs[i]
            if np.linalg.det(P) > 0:
                out.append(P)
    return np.array(out)


#: (24, 3, 3) proper rotations of the cube. For each, ``P diag(V) P^T = diag(V[perm])``,
#: so the cell ``P V R_I U X`` has stretches ``V[perm]``, rotation ``P R_I`` and stiffness
#: ``K(P) C_hat K(P)^T`` -- an exact, FE-free augmentation for F2.
CUBE_ROTATIONS = _cube_rotations()


#: Largest hidden width / depth a config may ask for (guards against a damaged sidecar
#: requesting absurd allocations).
MAX_WIDTH, MAX_DEPTH = 8192, 16


def check_widths(widths: Any) -> None:
    """Refuse hidden widths from a config that are not 1..MAX_DEPTH integers in 1..MAX_WIDTH."""
    ok = isinstance(widths, list) and 0 < len(widths) <= MAX_DEPTH
    ok = ok and all(isinstance(w, int) and 0 < w <= MAX_WIDTH for w in widths)
    if not ok:
        fail("config", f"hidden widths {widths!r} are not 1-{MAX_DEPTH} integers in 1..{MAX_WIDTH}", None)


@dataclass
class ForwardConfig:
    """Sizes and scalers of a :class:`ForwardModel` (stored in the weights sidecar).

    Attributes
    ----------
    f1_widths, f2_widths : list of int
        Hidden layer widths of F1 and F2.
    f1_label : MinMax
        Scaler of ``C_ort / rho`` (9 components).
    f2_label : MinMax
        Scaler of F2's label (21 components): ``C_hat / s`` minus the normalised
        push-forward ``P(V) C_tilde / s_P``. F2 always gets the push-forward of ``C_tilde``
        by the stretch V (:func:`push_forward`) and learns only the residual to it, and
        always gets F1's design features (topology presence, rho, U); weights files record
        this as ``f2_push = f2_design = true``.
    f2_rotation : bool
        Give F2 the rotation ``R_I`` (9 entries) as well. ``C_tilde`` alone does not fix
        how the struts lie before the stretch V (a nearly isotropic ``C_ort`` hides
        ``R_I`` entirely), yet the stretched cell depends on it; with ``R_I`` the
        inputs of F2 determine the cell ``V R_I U X`` completely.
    slope : float
        Leaky-ReLU slope (SI Eq. 11).
    """

    f1_widths: list[int] = field(default_factory=lambda: [256, 256, 256])
    f2_widths: list[int] = field(default_factory=lambda: [512, 512, 512])
    f1_label: MinMax = field(default_factory=lambda: MinMax(np.zeros(9), np.ones(9)))
    f2_label: MinMax = field(default_factory=lambda: MinMax(np.full(21, -1.0), np.ones(21)))
    f2_rotation: bool = False
    slope: float = 0.01

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["f1_label"] = self.f1_label.to_dict()
        d["f2_label"] = self.f2_label.to_dict()
        d["f2_push"] = d["f2_design"] = True  # the file format's record of F2's inputs
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ForwardConfig:
        for key in ("f2_push", "f2_design"):
            if isinstance(data, dict) and data.get(key) is not True:
                fail("config", f"forward model has {key} = {data.get(key)!r}: an F2 variant this version no longer "
                               "builds", "retrain it with `graded train forward`")
        try:
            check_widths(data["f1_widths"])
            check_widths(data["f2_widths"])
            return cls(
                f1_widths=[int(w) for w in data["f1_widths"]],
                f2_widths=[int(w) for w in data["f2_widths"]],
                f1_label=MinMax.from_dict(data["f1_label"]),
                f2_label=MinMax.from_dict(data["f2_label"]),
                f2_rotation=bool(data.get("f2_rotation", False)),
                slope=float(data.get("slope", 0.01)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            fail("config", f"forward-model config is malformed ({exc})", "re-save the model")


class ForwardModel(nn.Module):
    """The forward surrogate F (see module docstring).

    All methods take tensors whose leading (batch) axes broadcast as usual; the model's
    dtype (float32 by default, ``.double()`` for float64) applies throughout.
    """

    F1_IN = N_PARTS + 1 + 1 + 3

    def __init__(self, config: ForwardConfig | None = None):
        super().__init__()
        self.config = config or ForwardConfig()
        c = self.config
        self.f1 = mlp(self.F1_IN, c.f1_widths, 9, c.slope)
        self.f2_in = 21 + 1 + 3 + 21 + self.F1_IN + (9 if c.f2_rotation else 0)
        self.f2 = mlp(self.f2_in, c.f2_widths, 21, c.slope)
        self.register_buffer("f1_lo", torch.as_tensor(c.f1_label.lo, dtype=torch.float32))
        self.register_buffer("f1_span", torch.as_tensor(c.f1_label.span, dtype=torch.float32))
        self.register_buffer("f2_lo", torch.as_tensor(c.f2_label.lo, dtype=torch.float32))
        self.register_buffer("f2_span", torch.as_tensor(c.f2_label.span, dtype=torch.float32))

    # ---- F1 ---------------------------------------------------------------------------
    def f1_features(self, z: torch.Tensor, rho: torch.Tensor, U: torch.Tensor) -> torch.Tensor:
        """(..., 3, 14), (...,), (..., 3) -> (..., 19) scaled features of F1."""
        lr = scale_unit(rho.clamp_min(1e-6).log(), *_LOG_RHO)
        return torch.cat(
            [presence(z), scale_unit(rho, *RHO_RANGE)[..., None], lr[..., None], scale_unit(U, *STRETCH_RANGE)],
            dim=-1,
        )

    def f1_raw(self, z, rho, U) -> torch.Tensor:
        """Scaled F1 output in [-1, 1]-units of ``C_ort / rho`` (what F1 is trained on)."""
        return self.f1(self.f1_features(z, rho, U))

    def c_ort(self, z: torch.Tensor, rho: torch.Tensor, U: torch.Tensor) -> torch.Tensor:
        """Orthotropic constants (..., 9) of the stretched cell ``U X`` (normalised by E_s)."""
        y = self.f1_raw(z, rho, U)
        return (0.5 * (y + 1.0) * self.f1_span + self.f1_lo) * rho[..., None]

    # ---- F2 ---------------------------------------------------------------------------
    def f2_features(self, c_tilde21: torch.Tensor, V: torch.Tensor, design: torch.Tensor | None = None,
                    R1: torch.Tensor | None = None):
        """Features of F2, the magnitude ``s`` (...,) of ``C_tilde`` and the normalised
        push-forward (..., 21).

        ``design`` are F1's features (..., 19); ``R1`` (..., 3, 3) is used if ``f2_rotation``.
        """
        s = stiffness_scale(c_tilde21)
        feats = [c_tilde21 / s[..., None], log_scale_feature(s)[..., None], scale_unit(V, *STRETCH_RANGE)]
        p = push_forward(c_tilde21, V)  # after the features: the order of autograd's sums into V
        push = p / stiffness_scale(p)[..., None]
        feats.append(push)
        if design is None:
            fail("design", "F2 needs the design features", "pass z, rho, U through stages()")
        feats.append(design)
        if self.config.f2_rotation:
            if R1 is None:
                fail("R1", "F2 of this model needs the rotation R_I", "pass R1 (or use stages())")
            feats.append(R1.flatten(-2))
        return torch.cat(feats, -1), s, push

    def c_hat21(self, c_tilde21: torch.Tensor, V: torch.Tensor, design: torch.Tensor | None = None,
                R1: torch.Tensor | None = None) -> torch.Tensor:
        """Sheared stiffness ``C_hat`` (..., 21) from the rotated ``C_tilde`` (..., 21) and ``V``
        and F1's design features (..., 19) (and ``R_I`` where the config asks for it)."""
        x, s, push = self.f2_features(c_tilde21, V, design, R1)
        y = 0.5 * (self.f2(x) + 1.0) * self.f2_span + self.f2_lo + push
        return y * s[..., None]

    # ---- composition ------------------------------------------------------------------
    def stages(self, z, rho, U, V, R1, R2) -> dict[str, torch.Tensor]:
        """Every intermediate of F: ``c_ort`` (..., 9), ``C_tilde``, ``C_hat``, ``C`` (..., 6, 6)."""
        design = self.f1_features(z, rho, U)
        c_ort = (0.5 * (self.f1(design) + 1.0) * self.f1_span + self.f1_lo) * rho[..., None]
        C_tilde = et.rotate_voigt(et.from_9(c_ort), R1)
        C_hat = et.from_21(self.c_hat21(et.to_21(C_tilde), V, design, R1))
        C = et.rotate_voigt(C_hat, R2)
        return {"c_ort": c_ort, "C_tilde": C_tilde, "C_hat": C_hat, "C": C}

    def forward(self, z, rho, U, V, R1, R2) -> torch.Tensor:
        """Stiffness ``C`` (..., 6, 6) of designs.

        Parameters
        ----------
        z : (..., 3, 14)
            One-hot (or straight-through relaxed) topology blocks.
        rho : (...,)
            Relative density in [0.002, 0.1].
        U, V : (..., 3)
            Principal stretches in [0.5, 2].
        R1, R2 : (..., 3, 3)
            Rotations R_I and R_II.
        """
        return self.stages(z, rho, U, V, R1, R2)["C"]

    @torch.no_grad()
    def predict(self, topology, rho, U, V, R1, R2, *, batch: int = 65536) -> np.ndarray:
        """Numpy convenience: dataset-style arrays in, ``C`` (n, 6, 6) float64 out."""
        dt = next(self.parameters()).dtype
        topology = np.asarray(topology)
        n = topology.shape[0]
        rho = check_shape("rho", rho, (n,))
        out = []
        for a in range(0, n, batch):
            sl = slice(a, a + batch)

            def t(v, sl=sl):
                return torch.as_tensor(np.asarray(v)[sl], dtype=dt)

            C = self(topology_onehot(topology[sl], dt), t(rho), t(U), t(V), t(R1), t(R2))
            out.append(C.double().numpy())
        return np.concatenate(out) if out else np.zeros((0, 6, 6))
