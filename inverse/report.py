"""``graded design`` as a user runs it, over targets that come without a design.

:func:`evaluate_design` runs :func:`~graded.inverse.design.design` (FE-verified) on each of
a set of targets -- the bone-like set of :mod:`graded.inverse.bone` for one -- and reports
the FE relative Mandel-norm error of the best design of each (:class:`DesignReport`).
``graded evaluate inverse`` prints it beside :func:`~graded.inverse.evaluate.evaluate_inverse`
of the random FE test set. (It sits above ``design``; ``evaluate`` uses only the pieces.)
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from graded.validation import check_count

from .design import design

__all__ = ["DesignReport", "evaluate_design"]

Progress = Callable[[int, int, str], None]


@dataclass
class DesignReport:
    """``graded design`` (:func:`~graded.inverse.design.design`, FE-verified) on targets
    that come without a design, e.g. the bone-like set (:mod:`graded.inverse.bone`).

    Attributes
    ----------
    n : int
        Targets.
    names : list of str
    error_fe : (n,)
        FE relative Mandel-norm error of the best design of each target.
    nmse_fe : (n,)
        Its NMSE (main Eq. 8).
    topology, source : list of str
        The best design's topology and where it came from (``"model"``, ``"library"``, ``"screen"``).
    seconds : (n,)
        Wall time of each design.
    settings : dict
        The keyword arguments of ``design`` (its defaults otherwise).
    label : str
        What the targets are.
    """

    n: int
    names: list[str]
    error_fe: np.ndarray
    nmse_fe: np.ndarray
    topology: list[str]
    source: list[str]
    seconds: np.ndarray
    settings: dict
    label: str = "targets"

    def to_dict(self) -> dict[str, Any]:
        e = self.error_fe
        return {
            "label": self.label,
            "n": self.n,
            "settings": self.settings,
            "error_fe": {"median": float(np.median(e)), "p90": float(np.percentile(e, 90)), "max": float(e.max())},
            "per_target": [{"name": nm, "error_fe": float(er), "nmse_fe": float(nm_), "topology": tp, "source": src,
                            "seconds": float(s)}
                           for nm, er, nm_, tp, src, s in zip(self.names, e, self.nmse_fe, self.topology, self.source,
                                                              self.seconds)],
            "seconds": float(self.seconds.sum()),
        }

    def table(self) -> str:
        e = self.error_fe
        args = ", ".join(f"{k}={v!r}" for k, v in self.settings.items())
        lines = [f"graded design, design({args}), on {self.n} {self.label}; best design by FE",
                 f"relative error median {100 * np.median(e):.2f} %  p90 {100 * np.percentile(e, 90):.2f} %  "
                 f"max {100 * e.max():.2f} %  ({self.seconds.sum():.0f} s)"]
        for nm, er, tp, src in zip(self.names, e, self.topology, self.source):
            lines.append(f"  {nm:<12s} {100 * er:6.2f} %  {tp:<14s} {src}")
        return "\n".join(lines)


def evaluate_design(targets: np.ndarray, *, names: list[str] | None = None, n_targets: int | None = None,
                    models: tuple | None = None, label: str = "targets", progress: Progress | None = None,
                    **design_kwargs) -> DesignReport:
    """:func:`~graded.inverse.design.design` on each of the first ``n_targets`` targets.

    Parameters
    ----------
    targets : (T, 6, 6) float
        Normalised target stiffnesses.
    names : list of str, optional
        One per target (default ``"0"``, ``"1"``, ...).
    n_targets : int, optional
        The first this many (default all): bounds the time (each design takes seconds).
    models : (InverseModel, ForwardModel), optional
        Default: the shipped ones.
    label : str
        What the targets are, for the report.
    progress : callable, optional
        ``progress(done, n, message)`` after each target.
    **design_kwargs
        Passed to ``design`` (``verify`` is always True).

    Returns
    -------
    DesignReport
    """
    targets = np.asarray(targets, dtype=np.float64).reshape(-1, 6, 6)
    n = len(targets) if n_targets is None else min(check_count("n_targets", n_targets, 1), len(targets))
    names = [str(i) for i in range(len(targets))] if names is None else list(names)
    err, nm, topo, src, secs = [], [], [], [], []
    for i in range(n):
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # reach and poor-match warnings: the figures say it
            res = design(targets[i], models=models, **(design_kwargs | {"verify": True}))
        best = min(res, key=lambda r: r.error_fe)
        err.append(best.error_fe)
        nm.append(best.nmse_fe)
        topo.append(best.topology)
        src.append(best.source)
        secs.append(time.perf_counter() - t0)
        if progress is not None:
            progress(i + 1, n, f"{names[i]}: {100 * best.error_fe:.2f} %")
    return DesignReport(n=n, names=names[:n], error_fe=np.array(err), nmse_fe=np.array(nm), topology=topo, source=src,
                        seconds=np.array(secs), settings=dict(design_kwargs), label=label)
