"""Accuracy of the forward and inverse models against FE (never against the surrogate
alone, except where a figure is labelled "surrogate").

* :func:`evaluate_forward` -- per-component R^2 of ``C_ort`` (9), ``C_hat`` and ``C``
  (21 each) on an FE test set, and parity plots (:func:`graded.plot.plot_parity`).
* :func:`evaluate_inverse` -- for held-out FE targets: one draw per target, its design
  homogenized by FE, R^2 per component and NMSE percentiles; and the best of
  ``n_draws`` draws (ranked by a criterion, the ``top_k`` best verified by FE), chosen,
  refined and polished by the same pieces as :func:`~graded.inverse.design.design`.

``design`` itself, as a user runs it, over targets that come without a design (the
bone-like set) is :func:`graded.inverse.report.evaluate_design`.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from graded.elastic import NAMES_9, NAMES_21, from_21, nmse, r2_score, to_21
from graded.elastic.metrics import component_weights, relative_error
from graded.validation import check_choice, check_count, fail

from .draw import draw_designs
from .forward import ForwardModel, topology_onehot
from .library import shipped_library
from .oracle import fe_stiffness, sorted_parts
from .polish import polish_designs
from .refine import DESIGN_KEYS, POLISH_ITERATIONS, improve_designs, refine_designs
from .select import CRITERIA, gather, ranking_error, select_designs

__all__ = [
    "ForwardReport",
    "InverseReport",
    "evaluate_forward",
    "evaluate_inverse",
    "format_r2_table",
    "selection_weights",
    "TAU_BEST",
]

Progress = Callable[[int, int, str], None]

#: Gumbel-softmax temperature of the best-of draws: exploring more topologies than the
#: single draw's tau = 1 raises the best-of-100 min R^2 (measured 0.959 -> 0.978 at tau = 6).
TAU_BEST = 6.0


def selection_weights(inverse, targets21: np.ndarray) -> tuple[np.ndarray, str]:
    """Component weights (21,) of the ``"r2"`` selection and where they come from.

    The weights recorded in the inverse model's sidecar (``info["component_weights"]``,
    those of its training targets) if present, else
    :func:`~graded.elastic.metrics.component_weights` of ``targets21`` (n, 21).
    """
    w = getattr(inverse, "info", {}).get("component_weights")
    if w is None:
        return component_weights(targets21), "evaluated targets"
    w = np.asarray(w, dtype=np.float64)
    if w.shape != (21,) or not np.all(np.isfinite(w) & (w > 0)):
        fail("info.component_weights", f"the inverse model's sidecar holds {w.size} weights, not 21 positive ones",
             "retrain with `graded train inverse`, or delete the entry to weigh by the evaluated targets")
    return w, "training targets"


def format_r2_table(names, values: dict[str, np.ndarray], digits: int = 4) -> str:
    """A plain-text table: one row per component, one column per entry of ``values``."""
    cols = list(values)
    head = "component  " + "  ".join(f"{c:>12s}" for c in cols)
    lines = [head, "-" * len(head)]
    for i, name in enumerate(names):
        lines.append(f"{name:<9s}  " + "  ".join(f"{values[c][i]:>12.{digits}f}" for c in cols))
    lines.append(f"{'min':<9s}  " + "  ".join(f"{np.min(values[c]):>12.{digits}f}" for c in cols))
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# forward
# ---------------------------------------------------------------------------


@dataclass
class ForwardReport:
    """R^2 of the forward model on an FE test set.

    Attributes
    ----------
    n : int
        Test samples.
    r2_C, r2_C_hat : (21,) ; r2_C_ort : (9,)
        Per-component R^2 (FE vs model).
    seconds : float
        Prediction time for the whole set.
    plots : list of str
        Parity plots written.
    """

    n: int
    r2_C: np.ndarray
    r2_C_ort: np.ndarray
    r2_C_hat: np.ndarray
    seconds: float
    plots: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "r2_C": dict(zip(NAMES_21, map(float, self.r2_C))),
            "r2_C_ort": dict(zip(NAMES_9, map(float, self.r2_C_ort))),
            "r2_C_hat": dict(zip(NAMES_21, map(float, self.r2_C_hat))),
            "min_r2_C": float(self.r2_C.min()),
            "min_r2_C_ort": float(self.r2_C_ort.min()),
            "seconds": self.seconds,
            "plots": self.plots,
        }

    def table(self) -> str:
        t21 = format_r2_table(NAMES_21, {"C (F)": self.r2_C, "C_hat (F2)": self.r2_C_hat})
        t9 = format_r2_table(NAMES_9, {"C_ort (F1)": self.r2_C_ort})
        return f"forward model vs FE, n = {self.n}\n{t21}\n\n{t9}"


@torch.no_grad()
def evaluate_forward(model: ForwardModel, dataset, *, plot_dir: str | os.PathLike | None = None) -> ForwardReport:
    """R^2 of ``C_ort``, ``C_hat`` and ``C`` against the FE labels of ``dataset``.

    All three are predictions of the *complete* chain from the design parameters:
    ``C_ort = F1(...)``, ``C_hat = F2(K(R_I) C_ort^pred, V)``, ``C = K(R_II) C_hat``.
    """
    if len(dataset) < 2:
        fail("dataset", "needs at least 2 samples for R^2", None)
    model = model.float().eval()
    t0 = time.perf_counter()
    f32 = torch.float32
    out = {"c_ort": [], "C_hat": [], "C": []}
    for a in range(0, len(dataset), 8192):
        sl = slice(a, a + 8192)

        def t(v, sl=sl):
            return torch.as_tensor(np.asarray(v)[sl], dtype=f32)

        st = model.stages(topology_onehot(dataset.topology[sl], f32), t(dataset.rho), t(dataset.U), t(dataset.V),
                          t(dataset.R1), t(dataset.R2))
        for k in out:
            out[k].append(st[k].double().numpy())
    seconds = time.perf_counter() - t0
    c_ort = np.concatenate(out["c_ort"])
    c_hat = to_21(np.concatenate(out["C_hat"]))
    C = to_21(np.concatenate(out["C"]))
    rep = ForwardReport(len(dataset), r2_score(dataset.C, C), r2_score(dataset.C_ort, c_ort),
                        r2_score(dataset.C_hat, c_hat), seconds)
    if plot_dir is not None:
        from graded.plot import plot_parity

        d = Path(plot_dir)
        d.mkdir(parents=True, exist_ok=True)
        for name, true, pred, labels in (("forward_C", dataset.C, C, NAMES_21),
                                         ("forward_C_ort", dataset.C_ort, c_ort, NAMES_9)):
            p = d / f"{name}.png"
            plot_parity(true, pred, p, labels=list(labels), title=f"forward model vs FE ({name[8:]})", r2_target=0.98,
                        axis_labels=("FE", "forward model"))
            rep.plots.append(str(p))
    return rep


# ---------------------------------------------------------------------------
# inverse
# ---------------------------------------------------------------------------


@dataclass
class InverseReport:
    """Inverse-design accuracy on held-out FE targets (all NMSE by main Eq. 8).

    Attributes
    ----------
    n : int
        Targets.
    r2_single_fe, r2_single_surrogate : (21,)
        R^2 per component, one draw per target, design stiffness by FE / by the forward model.
    r2_best_fe : (21,)
        R^2 of the best of ``n_draws`` draws (ranked by ``settings['rank_by']`` as predicted, ``top_k``
        verified by FE, the best by FE by the same criterion).
    nmse_single_fe, nmse_best_fe : (n,)
        NMSE of those designs by FE.
    same_topology : float
        Fraction of single draws whose topology equals the target's.
    settings : dict
    seconds : dict
    err_single_fe, err_best_fe : (n,)
        Relative Mandel-norm errors of those designs by FE.
    r2_best_library, nmse_best_library, err_best_library : optional
        The same for the best of the model's designs *and* the design library's nearest
        neighbours (``n_library > 0``).
    r2_single_refined_fe, nmse_single_refined_fe, err_single_refined_fe : optional
        The single draw after ``refine_steps`` steps of gradient descent through the
        forward model (``refine_steps > 0``), by FE.
    r2_best_refined_fe, nmse_best_refined_fe, err_best_refined_fe : optional
        The best by FE of the ``top_k`` verified draws and their refined versions.
    """

    n: int
    r2_single_fe: np.ndarray
    r2_single_surrogate: np.ndarray
    r2_best_fe: np.ndarray
    nmse_single_fe: np.ndarray
    nmse_best_fe: np.ndarray
    same_topology: float
    settings: dict
    seconds: dict
    err_single_fe: np.ndarray | None = None
    err_best_fe: np.ndarray | None = None
    r2_best_library: np.ndarray | None = None
    nmse_best_library: np.ndarray | None = None
    err_best_library: np.ndarray | None = None
    r2_single_refined_fe: np.ndarray | None = None
    nmse_single_refined_fe: np.ndarray | None = None
    err_single_refined_fe: np.ndarray | None = None
    r2_best_refined_fe: np.ndarray | None = None
    nmse_best_refined_fe: np.ndarray | None = None
    err_best_refined_fe: np.ndarray | None = None
    plots: list[str] = field(default_factory=list)

    @staticmethod
    def _pct(x: np.ndarray) -> dict[str, float]:
        return {"median": float(np.median(x)), "p90": float(np.percentile(x, 90)), "mean": float(np.mean(x))}

    def to_dict(self) -> dict[str, Any]:
        extra: dict[str, Any] = {}
        for name in ("err_single_fe", "err_best_fe", "nmse_best_library", "err_best_library",
                     "nmse_single_refined_fe", "err_single_refined_fe", "nmse_best_refined_fe", "err_best_refined_fe"):
            if getattr(self, name) is not None:
                extra[name] = self._pct(getattr(self, name))
        for name in ("r2_best_library", "r2_single_refined_fe", "r2_best_refined_fe"):
            if getattr(self, name) is not None:
                extra[name] = dict(zip(NAMES_21, map(float, getattr(self, name))))
                extra["min_" + name] = float(getattr(self, name).min())
        return extra | {
            "n": self.n,
            "settings": self.settings,
            "r2_single_fe": dict(zip(NAMES_21, map(float, self.r2_single_fe))),
            "r2_single_surrogate": dict(zip(NAMES_21, map(float, self.r2_single_surrogate))),
            "r2_best_fe": dict(zip(NAMES_21, map(float, self.r2_best_fe))),
            "min_r2_single_fe": float(self.r2_single_fe.min()),
            "min_r2_single_surrogate": float(self.r2_single_surrogate.min()),
            "min_r2_best_fe": float(self.r2_best_fe.min()),
            "nmse_single_fe": self._pct(self.nmse_single_fe),
            "nmse_best_fe": self._pct(self.nmse_best_fe),
            "same_topology_fraction": self.same_topology,
            "seconds": self.seconds,
            "plots": self.plots,
        }

    def table(self) -> str:
        cols = {"1 draw, FE": self.r2_single_fe, "1 draw, surr.": self.r2_single_surrogate,
                f"best/{self.settings['n_draws']}, FE": self.r2_best_fe}
        if self.r2_best_library is not None:
            cols["+ library, FE"] = self.r2_best_library
        if self.r2_single_refined_fe is not None:
            cols["1 draw+GD, FE"] = self.r2_single_refined_fe
            cols["best+GD, FE"] = self.r2_best_refined_fe
        t = format_r2_table(NAMES_21, cols)
        st = self.settings
        lines = [f"inverse model on {self.n} held-out FE targets; 1 draw at tau = {st['tau']:g}; best of "
                 f"{st['n_draws']} draws at tau = {st.get('tau_best', st['tau']):g}, {st['top_k']} verified by FE",
                 "ranking and choice of the best: " + CRITERIA.get(st.get("rank_by", "r2"), st.get("rank_by", ""))
                 + (f" (weights from the {st['r2_weights_from']})" if st.get("r2_weights_from") else ""),
                 "geometry head of each draw: " + ("the one the forward model puts nearest the target"
                                                   if st.get("heads", "posterior") == "forward"
                                                   else "drawn from G2's head posterior")]
        if st.get("refine"):
            lines.append("best/N and + library: the verified designs also refined through the forward model and "
                         "polished against FE (Levenberg-Marquardt), the best by FE kept")
        if st.get("refine_steps"):
            lines.append(f"+GD: the same draws after {st['refine_steps']} gradient steps through the forward model "
                         "(no FE in the loop), then verified by FE")
        lines.append(t)
        rows = [("1 draw", self.nmse_single_fe, self.err_single_fe), ("best", self.nmse_best_fe, self.err_best_fe),
                ("1 draw+GD", self.nmse_single_refined_fe, self.err_single_refined_fe),
                ("best+GD", self.nmse_best_refined_fe, self.err_best_refined_fe),
                ("+ library", self.nmse_best_library, self.err_best_library)]
        for name, nm, er in rows:
            if nm is None:
                continue
            a = self._pct(nm)
            line = f"{name:10s} (FE): NMSE median {a['median']:.4g}  p90 {a['p90']:.4g}"
            if er is not None:
                b = self._pct(er)
                line += f" | relative error median {100 * b['median']:.2f} %  p90 {100 * b['p90']:.2f} %"
            lines.append(line)
        lines.append(f"same topology as the target's: {100 * self.same_topology:.1f} %")
        return "\n".join(lines)


def evaluate_inverse(
    inverse,
    forward: ForwardModel,
    dataset,
    *,
    n_targets: int = 1000,
    n_draws: int = 100,
    top_k: int = 3,
    tau: float = 1.0,
    tau_best: float | None = TAU_BEST,
    seed: int = 0,
    rank_by: str = "r2",
    refine: bool = False,
    refine_steps: int = 0,
    n_library: int = 0,
    library=None,
    heads: str = "forward",
    plot_dir: str | os.PathLike | None = None,
    progress: Progress | None = None,
) -> InverseReport:
    """Inverse design of the first ``n_targets`` targets of an FE dataset, checked by FE.

    Parameters
    ----------
    inverse : InverseModel
    forward : ForwardModel
    dataset : LatticeDataset
        Held-out FE samples; their ``C`` are the targets.
    n_targets : int
        How many targets (the first ones).
    n_draws : int
        Draws per target for the best-of evaluation.
    top_k : int
        Best draws by the ranking criterion (the best of each distinct topology first, as
        :func:`~graded.inverse.design.design` picks them) that are verified by FE; the best
        by FE counts.
    tau : float
        Gumbel-softmax temperature of the single draw.
    tau_best : float or None
        Temperature of the ``n_draws`` draws of the best-of figure (:data:`TAU_BEST`;
        None: ``tau``). A larger one explores more topologies, as the paper does for its
        bone designs (tau = 100 over 10,000 draws); the single draw stays at ``tau``.
    seed : int
        Seed of the Gumbel noise.
    rank_by : {"r2", "mandel", "nmse"}
        Criterion for ranking the draws and picking the best verified one: the NMSE of
        main Eq. 8; the relative Mandel-norm error ``||C - C_target|| / ||C_target||``
        (rotation invariant, not dominated by near-zero target entries; what
        :func:`~graded.inverse.design.design` ranks by); or (default) the target's share of the sum of
        ``1 - R^2`` over the 21 constants, ``sum_c w_c (C_c - C_target,c)^2``
        (:func:`~graded.elastic.metrics.r2_error`, with ``w`` of
        :func:`~graded.elastic.metrics.component_weights`
        over the inverse model's training targets, recorded in its sidecar as
        ``info["component_weights"]``; over the evaluated targets for a model without them).
        The best by this criterion is the design that lowers the summed ``1 - R^2`` most,
        so it is the selection the R^2 figure measures.
    refine : bool
        Also refine the ``top_k`` draws as ``design(refine=True)`` does (gradient descent
        through the forward model, then Levenberg-Marquardt on the FE misfit); the best
        by FE of the original and refined designs counts.
    refine_steps : int
        Also report the single draw and the best of the ``top_k`` after this many steps
        of gradient descent through the forward model on the relative Mandel-norm error
        (:func:`~graded.inverse.refine.refine_designs`, the first stage of
        ``design(refine=True)``; no FE in the loop), verified by FE (``*_refined_fe``). The
        network-only figures are reported as well. 0: not done.
    n_library : int
        Also verify (and with ``refine`` polish) this many nearest neighbours of each target
        from the design library (:mod:`graded.inverse.library`), reported separately as
        ``*_best_library``: the best of the model's designs and the neighbours.
    library : DesignLibrary, optional
        Default: the shipped library.
    heads : {"forward", "posterior"}
        How a draw picks among G2's geometry heads
        (:func:`~graded.inverse.draw.draw_designs`).
    """
    check_choice("rank_by", rank_by, tuple(CRITERIA))
    check_choice("heads", heads, ("forward", "posterior"))
    refine_steps = check_count("refine_steps", refine_steps, 0, hint="e.g. 200, or 0 for the network alone")
    n = min(int(n_targets), len(dataset))
    if n < 2:
        fail("n_targets", f"{n} targets", "need at least 2 for R^2")
    ds = dataset.subset(slice(0, n))
    targets = from_21(ds.C)
    timings: dict[str, float] = {}
    gen = torch.Generator().manual_seed(int(seed))
    with _timed(timings, "draw_single"):
        single = {k: v[:, 0] for k, v in draw_designs(inverse, forward, targets, 1, tau=tau, generator=gen,
                                                       heads=heads).items()}
    with _timed(timings, "fe_single"):
        C_single = fe_stiffness(*(single[k] for k in DESIGN_KEYS), progress=progress)
    tau_best = tau if tau_best is None else float(tau_best)
    with _timed(timings, "draw_many"):
        many = draw_designs(inverse, forward, targets, n_draws, tau=tau_best, generator=gen, heads=heads)
    weights, weights_from = selection_weights(inverse, ds.C) if rank_by == "r2" else (None, None)
    best = _BestOf(rank_by, targets, weights)
    flat = best.chosen(many, top_k)
    with _timed(timings, "fe_best"):
        C_top = fe_stiffness(*(flat[k] for k in DESIGN_KEYS), progress=progress).reshape(n, top_k, 6, 6)
    C_top_raw = C_top
    if refine:
        with _timed(timings, "refine_and_fe"):
            start = dict(flat, C_fe=C_top.reshape(-1, 6, 6))
            improve_designs(forward, np.repeat(targets, top_k, axis=0), start, progress=progress)
            C_top = np.concatenate([C_top, start["C_fe"].reshape(n, top_k, 6, 6)], axis=1)
    C_best, nmse_best, err_best = best(C_top)
    figs = [("inverse_single_fe", C_single), (f"inverse_best{n_draws}_{rank_by}_fe", C_best)]
    extra: dict[str, np.ndarray] = {}
    if n_library > 0:
        with _timed(timings, "library"):
            C_lib = _library_designs(library, targets, int(n_library), refine, progress)
        Cb, nb_best, eb = best(np.concatenate([C_top, C_lib], axis=1))
        extra |= {"r2_best_library": r2_score(ds.C, to_21(Cb)), "nmse_best_library": nb_best, "err_best_library": eb}
        figs.append((f"inverse_best{n_draws}_library{n_library}_fe", Cb))
    if refine_steps > 0:
        with _timed(timings, "refine_steps_and_fe"):
            C_r1, C_rk = _gradient_refined(forward, targets, single, flat, int(refine_steps), progress)
        C_rb, nmse_rb, err_rb = best(np.concatenate([C_top_raw, C_rk], axis=1))
        extra |= {"r2_single_refined_fe": r2_score(ds.C, to_21(C_r1)), "nmse_single_refined_fe": nmse(targets, C_r1),
                  "err_single_refined_fe": relative_error(targets, C_r1),
                  "r2_best_refined_fe": r2_score(ds.C, to_21(C_rb)), "nmse_best_refined_fe": nmse_rb,
                  "err_best_refined_fe": err_rb}
        figs += [(f"inverse_single_gd{refine_steps}_fe", C_r1), (f"inverse_best{n_draws}_gd{refine_steps}_fe", C_rb)]
    same = np.mean(np.all(sorted_parts(single["topology"]) == sorted_parts(ds.topology), axis=1))
    rep = InverseReport(
        n=n,
        r2_single_fe=r2_score(ds.C, to_21(C_single)),
        r2_single_surrogate=r2_score(ds.C, to_21(single["C_pred"])),
        r2_best_fe=r2_score(ds.C, to_21(C_best)),
        nmse_single_fe=nmse(targets, C_single),
        nmse_best_fe=nmse_best,
        same_topology=float(same),
        settings={"n_draws": n_draws, "top_k": top_k, "tau": tau, "tau_best": tau_best, "seed": seed,
                  "rank_by": rank_by, "refine": refine, "refine_steps": int(refine_steps), "n_library": n_library,
                  "heads": heads, **({"r2_weights_from": weights_from} if weights is not None else {})},
        seconds=timings,
        err_single_fe=relative_error(targets, C_single),
        err_best_fe=err_best,
        **extra,
    )
    if plot_dir is not None:
        rep.plots = _parity_plots(plot_dir, ds.C, figs)
    return rep


@contextlib.contextmanager
def _timed(timings: dict[str, float], key: str):
    t0 = time.perf_counter()
    yield
    timings[key] = time.perf_counter() - t0


class _BestOf:
    """The choice of the best design per target by one ranking criterion."""

    def __init__(self, rank_by: str, targets: np.ndarray, weights: np.ndarray | None):
        self.rank_by, self.targets, self.weights = rank_by, targets, weights

    def error(self, C_all: np.ndarray) -> np.ndarray:
        """Ranking error (T, k) of designs (T, k, 6, 6)."""
        return ranking_error(self.rank_by, self.targets[:, None], C_all, self.weights)

    def chosen(self, many: dict[str, np.ndarray], top_k: int) -> dict[str, np.ndarray]:
        """The ``top_k`` best draws per target by their predicted error, flattened (T * top_k):
        the best of each distinct cell first, exact repeats skipped, as ``design`` chooses them;
        a target with fewer distinct designs than ``top_k`` repeats its last one (the same FE
        result)."""
        crit = self.error(many["C_pred"])
        order = []
        for t in range(len(self.targets)):
            c = select_designs(crit[t], many["topology"][t], top_k, rho=many["rho"][t])[0]
            order.append(c + [c[-1]] * (top_k - len(c)))
        return gather({k: many[k] for k in DESIGN_KEYS}, np.array(order))

    def __call__(self, C_all: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The best of k designs per target (T, k, 6, 6): its stiffness (T, 6, 6), NMSE and
        relative error (T,)."""
        i, b = np.arange(len(self.targets)), np.argmin(self.error(C_all), axis=1)
        return C_all[i, b], nmse(self.targets, C_all[i, b]), relative_error(self.targets, C_all[i, b])


def _library_designs(library, targets: np.ndarray, k: int, polish: bool, progress: Progress | None) -> np.ndarray:
    """FE stiffness (T, k, 6, 6) of the ``k`` library neighbours of each target, polished
    against FE if ``polish``."""
    lib = library if library is not None else shipped_library()
    nb = lib.nearest(targets, k)
    m = nb["rho"].shape[1]
    flat = {key: nb[key].reshape((-1,) + nb[key].shape[2:]) for key in DESIGN_KEYS}
    if polish:
        C = polish_designs(np.repeat(targets, m, axis=0), flat, iterations=POLISH_ITERATIONS, progress=progress)["C_fe"]
    else:
        C = fe_stiffness(*(flat[key] for key in DESIGN_KEYS))
    return C.reshape(len(targets), m, 6, 6)


def _gradient_refined(forward: ForwardModel, targets: np.ndarray, single: dict, flat: dict, steps: int,
                      progress: Progress | None) -> tuple[np.ndarray, np.ndarray]:
    """FE stiffness of the single draws (T, 6, 6) and of the verified draws (T, k, 6, 6)
    after ``steps`` gradient steps through the forward model."""
    r1 = refine_designs(forward, targets, single, steps=steps, loss="mandel")
    C_r1 = fe_stiffness(*(r1[k] for k in DESIGN_KEYS), progress=progress)
    k = len(flat["rho"]) // len(targets)
    rk = refine_designs(forward, np.repeat(targets, k, axis=0), flat, steps=steps, loss="mandel")
    C_rk = fe_stiffness(*(rk[key] for key in DESIGN_KEYS), progress=progress).reshape(len(targets), k, 6, 6)
    return C_r1, C_rk


def _parity_plots(plot_dir, C21: np.ndarray, figs: list[tuple[str, np.ndarray]]) -> list[str]:
    """Parity plots of the targets (n, 21) against the FE stiffness of designs, one PNG each."""
    from graded.plot import plot_parity

    d = Path(plot_dir)
    d.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, pred in figs:
        p = d / f"{name}.png"
        plot_parity(C21, to_21(pred), p, labels=list(NAMES_21), title=f"target vs FE of design ({name})",
                    axis_labels=("target", "FE of design"), r2_target=0.95)
        paths.append(str(p))
    return paths
