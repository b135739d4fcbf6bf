"""Inverse model G: target stiffness -> design (main text "The Inverse Model", Eqs. 5-7;
SI section 3.B).

* ``G1`` maps the target to a posterior over the topology: one categorical over all 560
  topologies -- the sorted triples of the 14 parts ``(tessellation, id)``
  (:data:`~graded.inverse.forward.PARTS`), :data:`TOPOLOGY_TRIPLES` (ours; the paper uses
  three independent slots, which cannot say "A+B+C or D+E+F": their product also puts mass
  on A+E+C). A topology is drawn with the
  Gumbel-softmax trick: ``p = softmax(q / tau)`` (main Eq. 5),
  ``z = onehot(argmax(log p + g))`` with Gumbel noise ``g`` (Eq. 6) in the forward pass and
  the gradient of ``softmax((log p + g) / tau)`` in the backward pass (straight-through,
  Eq. 7). A larger ``tau`` flattens the posterior and explores more topologies.
* ``G2`` maps the target and the drawn topology to ``rho``, ``U``, ``V`` (sigmoid into the
  Table S1 ranges, SI Eqs. 5 and 10) and to ``R_I``, ``R_II`` (6D representation, SI Eq. 6).

Several geometry heads (ours)
-----------------------------
Many cells of one topology have nearly the same stiffness, so the inverse map of a
topology is multi-valued: a single-valued G2 must pick one branch and fails where the
right branch switches. With ``n_heads = K > 1`` G2 gives K candidate geometries for the
drawn topology and a posterior over them (``head_logits``); a draw takes one head from
that posterior with the same Gumbel trick (``sample=False``: the most probable head), so
a draw is still one design. Training (:func:`~graded.inverse.train.train_inverse`) uses
the multiple-choice loss: the head with the smallest reconstruction error of each target
takes most of the gradient and is the label of the head posterior.
:func:`~graded.inverse.design.draw_designs` by default lets the forward model make that
choice instead -- the head whose predicted stiffness is nearest the target, which is the
head the multiple-choice loss trains -- at the cost of ``K`` forward evaluations a draw.

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

from graded.elastic import axis_angle_to_matrix
from graded.elastic import torch as et
from graded.validation import fail

from .forward import N_PARTS, check_widths, init_uniform, mlp
from .scaling import RHO_RANGE, STRETCH_RANGE, MinMax, log_scale_feature, stiffness_scale, unscale_unit

__all__ = [
    "TOPOLOGY_TRIPLES",
    "topology_class",
    "canonical_frame",
    "gumbel_softmax_st",
    "pick_head",
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


def pick_head(geom, head: torch.Tensor):
    """Select one head of :meth:`InverseModel.geometry_heads` output.

    Parameters
    ----------
    geom : tuple
        ``(rho (..., K), U (..., K, 3), V (..., K, 3), R1 (..., K, 3, 3), R2 (..., K, 3, 3))``.
    head : (...) int64

    Returns
    -------
    tuple
        ``(rho (...), U (..., 3), V (..., 3), R1 (..., 3, 3), R2 (..., 3, 3))``.
    """
    out = []
    for a in geom:
        tail = a.shape[head.dim() + 1 :]
        idx = head.reshape(head.shape + (1,) + (1,) * len(tail)).expand(head.shape + (1,) + tail)
        out.append(a.gather(head.dim(), idx).squeeze(head.dim()))
    return tuple(out)


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


def _check_heads(n) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= int(n) <= 64:
        fail("n_heads", f"{n!r} is not an integer in 1..64", "use 1 (one geometry per topology) or a few, e.g. 4")
    return int(n)


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
    n_heads : int
        Geometry heads of G2 (module docstring); 1 is the paper's single-valued G2.
    """

    g1_widths: list[int] = field(default_factory=lambda: [512, 512, 512])
    g2_widths: list[int] = field(default_factory=lambda: [512, 512, 512])
    features: MinMax = field(default_factory=lambda: MinMax(np.full(22, -1.0), np.ones(22)))
    canonical: bool = True
    reach: tuple[float, float] = (0.0008, 0.102)
    slope: float = 0.01
    n_heads: int = 1

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["features"] = self.features.to_dict()
        d["reach"] = [float(v) for v in self.reach]
        d["joint_topology"] = True  # the file format's record of G1's joint posterior
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InverseConfig:
        if isinstance(data, dict) and data.get("joint_topology") is not True:
            fail("config", "inverse model has three independent topology slots (joint_topology is not true), "
                           "a G1 this version no longer builds", "retrain it with `graded train inverse`")
        try:
            check_widths(data["g1_widths"])
            check_widths(data["g2_widths"])
            return cls(
                g1_widths=[int(w) for w in data["g1_widths"]],
                g2_widths=[int(w) for w in data["g2_widths"]],
                features=MinMax.from_dict(data["features"]),
                canonical=bool(data.get("canonical", True)),
                reach=(float(data["reach"][0]), float(data["reach"][1])),
                slope=float(data.get("slope", 0.01)),
                n_heads=_check_heads(data.get("n_heads", 1)),
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
    logits : (..., 560)
        Posterior logits ``q`` of G1 over :data:`TOPOLOGY_TRIPLES`.
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
    head : (...,) int64
        Geometry head of G2 that gave the design (0 with one head).
    head_logits : (..., n_heads) or None
        Posterior logits over the heads for the drawn topology (None with one head).
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
    head: torch.Tensor | None = None
    head_logits: torch.Tensor | None = None


class InverseModel(nn.Module):
    """G = (G1, G2); see the module docstring."""

    N_IN = 22
    N_TOPO = 3 * N_PARTS
    N_GEOM = 1 + 3 + 3 + 12

    def __init__(self, config: InverseConfig | None = None):
        super().__init__()
        self.config = config or InverseConfig()
        c = self.config
        _check_heads(c.n_heads)
        self.g1 = mlp(self.N_IN, c.g1_widths, len(TOPOLOGY_TRIPLES), c.slope)
        k = c.n_heads
        self.g2 = mlp(self.N_IN + self.N_TOPO, c.g2_widths, self.N_GEOM * k, c.slope)
        if k > 1:  # posterior over the heads: its own network, so it never bends G2's features
            self.g2_select = mlp(self.N_IN + self.N_TOPO, [c.g2_widths[-1] // 2] * 2, k, c.slope)
        # one-hot blocks built in numpy: torch's one_hot on the meta device (the skeleton that
        # load_inverse checks the weight file against) imports torch._dynamo, about a second
        blocks = torch.as_tensor(np.eye(N_PARTS, dtype=np.float32)[np.asarray(TOPOLOGY_TRIPLES)].reshape(
            len(TOPOLOGY_TRIPLES), -1))
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
        """G1: scaled features (..., 22) -> logits (..., 560) over :data:`TOPOLOGY_TRIPLES`."""
        return self.g1(x)

    def sample_topology(
        self, logits: torch.Tensor, tau: float, *, generator: torch.Generator | None = None, sample: bool = True
    ) -> torch.Tensor:
        """Straight-through Gumbel-softmax draw (:func:`gumbel_softmax_st`) of topology
        blocks (..., 3, 14) from posterior logits."""
        z = gumbel_softmax_st(logits, tau, generator=generator, sample=sample)
        return (z @ self.triple_blocks.to(z.dtype)).unflatten(-1, (3, N_PARTS))

    def topology_labels(self, parts: torch.Tensor) -> torch.Tensor:
        """Class labels (B,) for :meth:`topology_nll` of part classes (B, 3) int64
        (:func:`~graded.inverse.forward.part_index` of the dataset encoding): the index into
        :data:`TOPOLOGY_TRIPLES`."""
        return torch.as_tensor(topology_class(np.asarray(parts)))

    def topology_nll(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Mean negative log-likelihood (nats) of known topologies under the posterior.

        Parameters
        ----------
        logits : (B, 560)
            Output of :meth:`posterior_logits`.
        labels : (B,) int64
            From :meth:`topology_labels` (computed once per dataset, not per batch).
        """
        return nn.functional.cross_entropy(logits, labels)

    @staticmethod
    def _decode(out: torch.Tensor):
        """Raw G2 outputs (..., 19) -> rho, U, V, R1, R2_can."""
        sig = torch.sigmoid(out[..., :7])
        rho = unscale_unit(sig[..., 0], *RHO_RANGE)
        U = unscale_unit(sig[..., 1:4], *STRETCH_RANGE)
        V = unscale_unit(sig[..., 4:7], *STRETCH_RANGE)
        R1 = et.rotation_from_6d(out[..., 7:13])
        R2 = et.rotation_from_6d(out[..., 13:19])
        return rho, U, V, R1, R2

    def geometry_heads(self, x: torch.Tensor, z: torch.Tensor):
        """G2, every head: features (..., 22) and topology blocks (..., 3, 14) ->
        ``(rho (..., K), U (..., K, 3), V (..., K, 3), R1 (..., K, 3, 3), R2_can (..., K, 3, 3))``
        and the head logits (..., K) (zeros with one head)."""
        inp = torch.cat([x, z.flatten(-2)], -1)
        k = self.config.n_heads
        geom = self._decode(self.g2(inp).unflatten(-1, (k, self.N_GEOM)))
        head_logits = self.g2_select(inp) if k > 1 else torch.zeros_like(inp[..., :1])
        return geom, head_logits

    def with_heads(self, n_heads: int, *, angle: float = 1.0, generator: torch.Generator | None = None
                   ) -> InverseModel:
        """A copy of this one-head model with ``n_heads`` geometry heads (warm start).

        G1 and G2's hidden layers are copied; head 0 is the old head exactly, head ``k > 0``
        the old head with ``R_I`` replaced by ``M_k R_I`` for a rotation ``M_k`` by ``angle``
        (radians) about a random axis -- exact, because the 6D representation is
        equivariant (``M`` acts on both 3-vectors). The heads start in different parts of
        the design space; the head posterior is a freshly initialised small network.

        Parameters
        ----------
        n_heads : int
        angle : float
            Rotation of head ``k > 0``'s ``R_I`` in radians.
        generator : torch.Generator, optional
            Axes and the head network's initial weights.
        """
        if self.config.n_heads != 1:
            fail("n_heads", f"the model already has {self.config.n_heads} heads", "widen a one-head model")
        k = _check_heads(n_heads)
        cfg = InverseConfig(**{**self.config.__dict__, "n_heads": k})
        new = InverseModel(cfg).to(self.feat_lo.dtype)
        gen = generator or torch.Generator().manual_seed(0)
        with torch.no_grad():
            new.g1.load_state_dict(self.g1.state_dict())
            for a, b in zip(self.g2[:-1].parameters(), new.g2[:-1].parameters()):
                b.copy_(a)
            W, bias = self.g2[-1].weight, self.g2[-1].bias  # (19, h), (19,)
            for h in range(k):
                Wh, bh = W.clone(), bias.clone()
                if h > 0:
                    e = torch.randn(3, generator=gen, dtype=torch.float64).numpy()
                    M = torch.as_tensor(axis_angle_to_matrix(angle, *e), dtype=W.dtype)
                    for a in (7, 10):  # the two 3-vectors of R_I's 6D output
                        Wh[a:a + 3] = M @ W[a:a + 3]
                        bh[a:a + 3] = M @ bias[a:a + 3]
                new.g2[-1].weight[h * self.N_GEOM:(h + 1) * self.N_GEOM] = Wh
                new.g2[-1].bias[h * self.N_GEOM:(h + 1) * self.N_GEOM] = bh
        init_uniform(new.g2_select, gen)
        return new

    def geometry(self, x: torch.Tensor, z: torch.Tensor, head: torch.Tensor | None = None):
        """G2: features and topology blocks -> rho, U, V, R1, R2_can of head ``head``
        (int64, the batch shape of ``x``; default: the most probable head)."""
        geom, head_logits = self.geometry_heads(x, z)
        if head is None:
            head = head_logits.argmax(-1)
        return pick_head(geom, head)

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
        (rho, U, V, R1, R2c), head, head_logits = self.draw_geometry(x, z, tau, generator=generator, sample=sample)
        hl = head_logits if self.config.n_heads > 1 else None
        return InverseSample(z, logits, rho, U, V, R1, Q @ R2c, R2c, Q, Cc, s, head, hl)

    def draw_geometry(
        self, x: torch.Tensor, z: torch.Tensor, tau: float, *, generator: torch.Generator | None = None,
        sample: bool = True,
    ):
        """G2 for drawn topology blocks: every head, one head drawn from the head posterior
        (:meth:`sample_head`), its geometry.

        Returns
        -------
        ((rho, U, V, R1, R2_can), head (...) int64, head_logits (..., K))
        """
        geom, head_logits = self.geometry_heads(x, z)
        head = self.sample_head(head_logits, tau, generator=generator, sample=sample)
        return pick_head(geom, head), head, head_logits

    def sample_head(
        self, head_logits: torch.Tensor, tau: float, *, generator: torch.Generator | None = None, sample: bool = True
    ) -> torch.Tensor:
        """Head indices (...) int64 drawn from ``softmax(head_logits / tau)`` (Gumbel-max);
        ``sample=False`` or one head: the most probable head. Draws no noise with one head,
        so single-head models give the same draws as before heads existed."""
        if self.config.n_heads == 1:
            return torch.zeros(head_logits.shape[:-1], dtype=torch.int64, device=head_logits.device)
        return gumbel_softmax_st(head_logits, tau, generator=generator, sample=sample).argmax(-1)
