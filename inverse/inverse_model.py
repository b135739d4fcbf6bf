"""Inverse model G: target stiffness -> design (main text "The Inverse Model", Eqs. 5-7;
SI section 3.B).

* ``G1`` maps the target to a posterior over the topology: three slots, each a
  categorical over the 14 parts ``(tessellation, id)`` (:data:`~graded.inverse.forward.PARTS`),
  or (``joint_topology``, ours) one categorical over all 560 topologies -- the sorted part
  triples, :data:`TOPOLOGY_TRIPLES`. Independent slots cannot say "A+B+C or D+E+F": their
  product also puts mass on A+E+C; the joint posterior can. A topology is drawn with the
  Gumbel-softmax trick: ``p = softmax(q / tau)`` (main Eq. 5),
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

import itertools
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
    "TOPOLOGY_TRIPLES",
    "topology_class",
    "canonical_frame",
    "gumbel_softmax_st",
    "InverseConfig",
    "InverseModel",
    "InverseSample",
]

#: Weights of the two odd-parity combinations that fix the eigenvector signs (any vector
#: not parallel to (1, 1, 1) works: that one is d_23 / d_13, which vanish in the frame).
_SIGN_W = (1.0, 2.0, 3.0)

#: Every topology as its sorted part triple ``k1 <= k2 <= k3`` (part classes of
#: :data:`~graded.inverse.forward.PARTS`, the dataset's encoding): (560, 3) int64.
TOPOLOGY_TRIPLES = np.array(list(itertools.combinations_with_replacement(range(N_PARTS), 3)), dtype=np.int64)
_CLASS_OF = np.full((N_PARTS,) * 3, -1, dtype=np.int64)
_CLASS_OF[tuple(TOPOLOGY_TRIPLES.T)] = np.arange(len(TOPOLOGY_TRIPLES))


def topology_class(parts: np.ndarray) -> np.ndarray:
    """Joint class 0..559 of part triples.

    Parameters
    ----------
    parts : int array, shape (..., 3)
        Part classes 0..13 of the three slots, in any order.

    Returns
    -------
    int64 array, shape (...)
        Row of :data:`TOPOLOGY_TRIPLES`.
    """
    k = np.sort(np.asarray(parts, dtype=np.int64), axis=-1)
    return _CLASS_OF[k[..., 0], k[..., 1], k[..., 2]]


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
    joint_topology : bool
        G1 outputs one categorical over the 560 topologies instead of three independent
        slots (module docstring).
    """

    g1_widths: list[int] = field(default_factory=lambda: [512, 512, 512])
    g2_widths: list[int] = field(default_factory=lambda: [512, 512, 512])
    features: MinMax = field(default_factory=lambda: MinMax(np.full(22, -1.0), np.ones(22)))
    canonical: bool = True
    reach: tuple[float, float] = (0.0008, 0.102)
    slope: float = 0.01
    joint_topology: bool = False

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
                joint_topology=bool(data.get("joint_topology", False)),
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
    logits : (..., 3, 14) or (..., 560)
        Posterior logits ``q`` of G1 (per slot, or joint with ``joint_topology``).
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
        n_out = len(TOPOLOGY_TRIPLES) if c.joint_topology else self.N_TOPO
        self.g1 = mlp(self.N_IN, c.g1_widths, n_out, c.slope)
        self.g2 = mlp(self.N_IN + self.N_TOPO, c.g2_widths, self.N_GEOM, c.slope)
        blocks = nn.functional.one_hot(torch.as_tensor(TOPOLOGY_TRIPLES), N_PARTS).float().flatten(1)
        self.register_buffer("triple_blocks", blocks, persistent=False)  # (560, 42), not a weight
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
        """G1: scaled features (..., 22) -> logits (..., 3, 14), or (..., 560) if joint."""
        q = self.g1(x)
        return q if self.config.joint_topology else q.unflatten(-1, (3, N_PARTS))

    def sample_topology(
        self, logits: torch.Tensor, tau: float, *, generator: torch.Generator | None = None, sample: bool = True
    ) -> torch.Tensor:
        """Straight-through Gumbel-softmax draw (:func:`gumbel_softmax_st`) of topology
        blocks (..., 3, 14) from posterior logits."""
        z = gumbel_softmax_st(logits, tau, generator=generator, sample=sample)
        if not self.config.joint_topology:
            return z
        return (z @ self.triple_blocks.to(z.dtype)).unflatten(-1, (3, N_PARTS))

    def topology_labels(self, parts: torch.Tensor) -> torch.Tensor:
        """Class labels for :meth:`topology_nll` of part classes (B, 3) int64
        (:func:`~graded.inverse.forward.part_index` of the dataset encoding): the joint class
        (B,) with ``joint_topology``, else the parts themselves."""
        if self.config.joint_topology:
            return torch.as_tensor(topology_class(np.asarray(parts)))
        return torch.as_tensor(parts)

    def topology_nll(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Mean negative log-likelihood (nats) of known topologies under the posterior.

        Parameters
        ----------
        logits : (B, 3, 14) or (B, 560)
            Output of :meth:`posterior_logits`.
        labels : (B, 3) or (B,) int64
            From :meth:`topology_labels` (computed once per dataset, not per batch).
        """
        if self.config.joint_topology:
            return nn.functional.cross_entropy(logits, labels)
        return 3.0 * nn.functional.cross_entropy(logits.reshape(-1, N_PARTS), labels.reshape(-1))

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
        z = self.sample_topology(logits, tau, generator=generator, sample=sample)
        rho, U, V, R1, R2c = self.geometry(x, z)
        return InverseSample(z, logits, rho, U, V, R1, Q @ R2c, R2c, Q, Cc, s)
