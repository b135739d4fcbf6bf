"""Inverse model G: target stiffness -> design (main text "The Inverse Model", Eqs. 5-7;
SI section 3.B).

* ``G1`` maps the target to a posterior over the topology: three slots, each a
  categorical over the 14 parts ``(tessellation, id)`` (:data:`~graded.inverse.forward.PARTS`).
  A topology is drawn with the Gumbel-softmax trick: ``p = softmax(q / tau)`` (main Eq. 5),
  ``z = onehot(argmax(log p + g))`` with Gumbel noise ``g`` (Eq. 6) in the forward pass and
  the gradient of ``softmax((log p + g) / tau)`` in the backward pass (straight-through,
  Eq. 7). A larger ``tau`` flattens the posterior and explores more topologies.
* ``G2`` maps the target and the drawn topology to ``rho``, ``U``, ``V`` (sigmoid into the
  Table S1 ranges, SI Eqs. 5 and 10) and to ``R_I``, ``R_II`` (6D representation, SI Eq. 6).

Canonical frame (ours)
----------------------
Rotating a target by ``Q`` is matched exactly by rotating a design's ``R_II`` by ``Q``
(the Bond rotation is the last step of the forward model). The model therefore first
rotates every target into a canonical frame -- the eigenframe of its dilatational tensor
``d_ij = C_ijkk`` (eigenvalues descending, signs fixed by two odd-parity components) --
designs for the canonical target, and returns ``R_II = Q R_II^can``. The designs are then
exactly rotation-equivariant, and the networks never have to learn orientation.
Targets with a degenerate ``d`` (e.g. cubic symmetry) have no unique frame; any frame
that diagonalises ``d`` is used, which is still exact, only not unique.

Inputs are ``C^can / s`` and ``log s`` (s: rotation-invariant magnitude, see
:mod:`graded.inverse.scaling`), min-max scaled to [-1, 1] per component (SI Eq. 3).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from graded.elastic import torch as et
from graded.validation import fail

from .forward import N_PARTS, _check_widths, mlp
from .scaling import RHO_RANGE, STRETCH_RANGE, MinMax, log_scale_feature, stiffness_scale, unscale_unit

__all__ = [
    "canonical_frame",
    "gumbel_softmax_st",
    "InverseConfig",
    "InverseModel",
    "InverseSample",
]

#: Weights of the two odd-parity combinations that fix the eigenvector signs (any vector
#: not parallel to (1, 1, 1) works: that one is d_23 / d_13, which vanish in the frame).
_SIGN_W = (1.0, 2.0, 3.0)


def canonical_frame(C: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Canonical frame of stiffnesses (..., 6, 6).

    Returns
    -------
    Q : (..., 3, 3)
        Proper rotation whose columns are the eigenvectors of ``d_ij = C_ijkk``
        (eigenvalues descending), signs chosen so that ``sum_I w_I C^can_I4 >= 0`` and
        ``sum_I w_I C^can_I5 >= 0``.
    C_can : (..., 6, 6)
        ``K(Q^T) C K(Q^T)^T``, so that ``C = K(Q) C_can K(Q)^T``.

    Computed in float64 without gradient (targets are data), returned in C's dtype.
    """
    with torch.no_grad():
        Cd = C.detach().double()
        dv = Cd[..., :, :3].sum(-1)  # Voigt vector of d (stress-like, no factor 2)
        d = torch.stack(
            [
                torch.stack([dv[..., 0], dv[..., 5], dv[..., 4]], -1),
                torch.stack([dv[..., 5], dv[..., 1], dv[..., 3]], -1),
                torch.stack([dv[..., 4], dv[..., 3], dv[..., 2]], -1),
            ],
            -2,
        )
        _, vecs = torch.linalg.eigh(d)
        Q = vecs.flip(-1)
        det = torch.linalg.det(Q)
        Q = torch.cat([Q[..., :2], Q[..., 2:] * torch.sign(det)[..., None, None]], -1)
        Cc = et.rotate_voigt(Cd, Q.transpose(-1, -2))
        w = torch.tensor(_SIGN_W, dtype=torch.float64)
        h4 = (Cc[..., :3, 3] * w).sum(-1)
        h5 = (Cc[..., :3, 4] * w).sum(-1)
        a = torch.where(h4 < 0, -1.0, 1.0).double()
        b = torch.where(h5 < 0, -1.0, 1.0).double()
        S = torch.diag_embed(torch.stack([a, b, a * b], -1))
        Q = Q @ S
        Cc = et.rotate_voigt(Cc, S)
    return Q.to(C.dtype), Cc.to(C.dtype)


def gumbel_softmax_st(
    logits: torch.Tensor, tau: float, *, generator: torch.Generator | None = None, sample: bool = True
) -> torch.Tensor:
    """Straight-through Gumbel-softmax over the last axis (main Eqs. 5-7).

    Parameters
    ----------
    logits : (..., k)
        Outputs ``q`` of the penultimate layer.
    tau : float
        Temperature: ``p = softmax(q / tau)``; also the relaxation temperature of the
        backward pass.
    generator : torch.Generator, optional
        Source of the Gumbel noise (reproducible draws).
    sample : bool
        False: no noise, the most probable class (the deterministic "mode" design).

    Returns
    -------
    (..., k)
        Exactly one-hot values whose gradient is that of the relaxed sample.
    """
    if not tau > 0:
        fail("tau", f"{tau!r} must be > 0", "use e.g. 1 (training) or up to ~100 for more variety")
    logp = torch.log_softmax(logits / tau, dim=-1)
    if sample:
        u = torch.rand(logits.shape, generator=generator, dtype=logits.dtype, device=logits.device)
        g = -torch.log(-torch.log(u.clamp(1e-20, 1.0 - 1e-7)))
        y = logp + g
    else:
        y = logp
    soft = torch.softmax(y / tau, dim=-1)
    hard = nn.functional.one_hot(y.argmax(-1), logits.shape[-1]).to(logits.dtype)
    return hard - soft.detach() + soft


@dataclass
class InverseConfig:
    """Sizes and input scaler of an :class:`InverseModel` (stored in the weights sidecar).

    Attributes
    ----------
    g1_widths, g2_widths : list of int
        Hidden widths of G1 and G2.
    features : MinMax
        Scaler of the 22 input features (``C^can / s`` as 21 constants, ``log s``).
    canonical : bool
        Rotate targets into their canonical frame (module docstring).
    reach : (float, float)
        Range of the target magnitude ``s`` seen in training (what the design space
        reaches); targets outside it get a warning at design time.
    slope : float
        Leaky-ReLU slope.
    """

    g1_widths: list[int] = field(default_factory=lambda: [512, 512, 512])
    g2_widths: list[int] = field(default_factory=lambda: [512, 512, 512])
    features: MinMax = field(default_factory=lambda: MinMax(np.full(22, -1.0), np.ones(22)))
    canonical: bool = True
    reach: tuple[float, float] = (0.0008, 0.102)
    slope: float = 0.01

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["features"] = self.features.to_dict()
        d["reach"] = [float(v) for v in self.reach]
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "InverseConfig":
        try:
            _check_widths(data["g1_widths"])
            _check_widths(data["g2_widths"])
            return cls(
                g1_widths=[int(w) for w in data["g1_widths"]],
                g2_widths=[int(w) for w in data["g2_widths"]],
                features=MinMax.from_dict(data["features"]),
                canonical=bool(data.get("canonical", True)),
                reach=(float(data["reach"][0]), float(data["reach"][1])),
                slope=float(data.get("slope", 0.01)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            fail("config", f"inverse-model config is malformed ({exc})", "re-save the model")


@dataclass
class InverseSample:
    """One draw of designs for a batch of targets (tensors share the batch axes).

    Attributes
    ----------
    z : (..., 3, 14)
        One-hot topology blocks (straight-through gradient).
    logits : (..., 3, 14)
        Posterior logits ``q`` of G1.
    rho : (...,)
    U, V : (..., 3)
    R1 : (..., 3, 3)
    R2 : (..., 3, 3)
        R_II in the target's frame (``Q @ R2_can``).
    R2_can : (..., 3, 3)
        R_II in the canonical frame.
    Q : (..., 3, 3)
        Canonical frame of the target.
    C_can : (..., 6, 6)
        Target in the canonical frame.
    s : (...,)
        Target magnitude (Mandel trace).
    """

    z: torch.Tensor
    logits: torch.Tensor
    rho: torch.Tensor
    U: torch.Tensor
    V: torch.Tensor
    R1: torch.Tensor
    R2: torch.Tensor
    R2_can: torch.Tensor
    Q: torch.Tensor
    C_can: torch.Tensor
    s: torch.Tensor


class InverseModel(nn.Module):
    """G = (G1, G2); see the module docstring."""

    N_IN = 22
    N_TOPO = 3 * N_PARTS
    N_GEOM = 1 + 3 + 3 + 12

    def __init__(self, config: InverseConfig | None = None):
        super().__init__()
        self.config = config or InverseConfig()
        c = self.config
        self.g1 = mlp(self.N_IN, c.g1_widths, self.N_TOPO, c.slope)
        self.g2 = mlp(self.N_IN + self.N_TOPO, c.g2_widths, self.N_GEOM, c.slope)
        self.register_buffer("feat_lo", torch.as_tensor(c.features.lo, dtype=torch.float32))
        self.register_buffer("feat_span", torch.as_tensor(c.features.span, dtype=torch.float32))

    @staticmethod
    def raw_features(C: torch.Tensor, canonical: bool = True):
        """Unscaled features (..., 22), frame Q, canonical target and magnitude s of targets (..., 6, 6)."""
        if canonical:
            Q, Cc = canonical_frame(C)
        else:
            Q = torch.eye(3, dtype=C.dtype).expand(C.shape[:-2] + (3, 3))
            Cc = C
        c21 = et.to_21(Cc)
        s = stiffness_scale(c21)
        x = torch.cat([c21 / s[..., None], log_scale_feature(s)[..., None]], -1)
        return x, Q, Cc, s

    def posterior_logits(self, x: torch.Tensor) -> torch.Tensor:
        """G1: scaled features (..., 22) -> logits (..., 3, 14)."""
        return self.g1(x).unflatten(-1, (3, N_PARTS))

    def geometry(self, x: torch.Tensor, z: torch.Tensor):
        """G2: features and topology blocks -> rho, U, V, R1, R2_can."""
        out = self.g2(torch.cat([x, z.flatten(-2)], -1))
        sig = torch.sigmoid(out[..., :7])
        rho = unscale_unit(sig[..., 0], *RHO_RANGE)
        U = unscale_unit(sig[..., 1:4], *STRETCH_RANGE)
        V = unscale_unit(sig[..., 4:7], *STRETCH_RANGE)
        R1 = et.rotation_from_6d(out[..., 7:13])
        R2 = et.rotation_from_6d(out[..., 13:19])
        return rho, U, V, R1, R2

    def scaled_features(self, C: torch.Tensor):
        """Scaled features (..., 22), frame Q, canonical target and magnitude, in the model's dtype."""
        dt = self.feat_lo.dtype
        x, Q, Cc, s = self.raw_features(C.double(), self.config.canonical)
        x = 2.0 * (x - self.feat_lo.double()) / self.feat_span.double() - 1.0
        return x.to(dt), Q.to(dt), Cc.to(dt), s.to(dt)

    def forward(
        self,
        C: torch.Tensor,
        tau: float = 1.0,
        *,
        generator: torch.Generator | None = None,
        sample: bool = True,
    ) -> InverseSample:
        """Draw one design per target.

        Parameters
        ----------
        C : (..., 6, 6)
            Target stiffnesses, normalised by E_s.
        tau : float
            Gumbel-softmax temperature.
        generator : torch.Generator, optional
            Source of the Gumbel noise.
        sample : bool
            False: take the most probable topology instead of sampling.
        """
        x, Q, Cc, s = self.scaled_features(C)
        logits = self.posterior_logits(x)
        z = gumbel_softmax_st(logits, tau, generator=generator, sample=sample)
        rho, U, V, R1, R2c = self.geometry(x, z)
        return InverseSample(z, logits, rho, U, V, R1, Q @ R2c, R2c, Q, Cc, s)
