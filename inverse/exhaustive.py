"""The reachable optimum of a target: every lattice of the design space polished by FE.

:func:`~graded.inverse.design.design` relies on the inverse network to propose topologies;
it cannot tell whether a large error is the limit of the truss space or of its search.
:func:`exhaustive_design` answers that without the network's choice of topology:

1. **Every lattice.** The 560 part triples of SI Table S1 make 236 distinct lattices
   (:func:`distinct_cells`): two triples whose parts superpose to the same struts
   (:func:`~graded.inverse.select.cell_key`) are the same cell -- same strut graph, same
   diameter for a density, same stiffness for every geometry -- so one representative per
   lattice is a provably sufficient subset of the 560.
2. **Several starts per lattice**, verified by FE: the design library's nearest cells of
   that lattice (:meth:`~graded.inverse.library.DesignLibrary.nearest_per_group`, turned
   into the target's frame and scaled to its size) and every geometry head of the inverse
   model's G2 for that topology (G1's preference plays no part).
3. **FE polish** (Levenberg-Marquardt on the FE misfit,
   :func:`~graded.inverse.polish.polish_designs`) of the best ``starts`` of every lattice,
   in parallel over a process pool on the local cores, best starts first; then the best
   ``final`` lattices polished further (:data:`~graded.inverse.refine.FINAL_ITERATIONS`).

The result (:class:`ExhaustiveResult`) is the best polished design of every lattice that
was reached, ranked; its error is the *reachable optimum* -- the best the search found,
a local optimum of each lattice from several starts, not a certificate of the global one.
A time budget bounds the search: when it runs out, the lattices not yet polished keep
their best start, and ``complete`` is False.

:func:`record_optimum` keeps the optimum of a target in a small JSON file
(:func:`optima_path`), so that a later ``graded design`` of the same target can say how
far its answer is from it (:func:`known_optimum`).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, wait
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from graded.elastic import nmse, to_21
from graded.elastic.metrics import relative_error
from graded.io.atomic import atomic_path
from graded.validation import check_count, check_positive, fail
from graded.workers import SINGLE_THREADED_BLAS, process_pool

from .design import DesignResult, default_models, design, design_results, parse_target, rank_results
from .polish import polish_designs
from .refine import DESIGN_KEYS, FINAL_ITERATIONS, FINAL_RTOL, POLISH_ITERATIONS
from .screen import best_per_cell, cell_index, distinct_cells, lattice_starts

__all__ = [
    "ExhaustiveResult",
    "exhaustive_design",
    "DEFAULT_BUDGET_S",
    "CHUNK",
    "KEY_DIGITS",
    "optima_path",
    "target_key",
    "record_optimum",
    "known_optimum",
]

Progress = Callable[[int, int, str], None]

#: Default time budget in seconds: the whole search of one target within 4 minutes on 2
#: cores (measured: about 2-3 min on 2 busy cores for the full search, see docs/inverse.md).
DEFAULT_BUDGET_S = 240.0
#: Lattices per task of the process pool: large enough that a task's FE batches amortise
#: the per-topology setup, small enough that the budget can stop between tasks.
CHUNK = 6


@dataclass
class ExhaustiveResult:
    """The outcome of :func:`exhaustive_design`.

    Attributes
    ----------
    results : list of DesignResult
        The best design of every lattice reached, ranked by FE relative Mandel-norm error
        (:func:`~graded.inverse.design.rank_results`); ``source`` says which start it
        was polished from (``"library"`` or ``"model"``).
    optimum : float
        FE relative Mandel-norm error of ``results[0]``: the reachable optimum.
    cells_total : int
        Distinct lattices of the design space (236).
    cells_polished : int
        Lattices whose starts were polished (``cells_total`` when ``complete``).
    complete : bool
        Every lattice was polished within the budget.
    design_error : float or None
        FE relative error of the best design of :func:`~graded.inverse.design.design`
        (defaults) when ``with_design``: the default answer the optimum is compared with.
    seconds : dict
        Wall time of each stage.
    settings : dict
    """

    results: list[DesignResult]
    optimum: float
    cells_total: int
    cells_polished: int
    complete: bool
    design_error: float | None = None
    seconds: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "optimum": self.optimum,
            "cells_total": self.cells_total,
            "cells_polished": self.cells_polished,
            "complete": self.complete,
            "design_error": self.design_error,
            "seconds": self.seconds,
            "settings": self.settings,
            "designs": [r.to_dict() for r in self.results],
        }


def _polish_task(target: np.ndarray, designs: dict, iterations: int, rtol: float) -> dict:
    """Worker: FE polish of a batch of designs (plain arrays in, plain arrays out)."""
    return polish_designs(target, designs, iterations=iterations, rtol=rtol)


def _design_pool(C_t: np.ndarray, models, library) -> dict:
    """The designs of :func:`~graded.inverse.design.design` (defaults) as pool arrays."""
    from graded.topology import parse_topology

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the search reports its own figures
        res = design(C_t, models=models, library=library)
    res = [r for r in res if r.C_fe is not None]
    topo = np.array([parse_topology(r.topology) for r in res], dtype=np.int8)
    return {"topology": topo, "rho": np.array([r.rho for r in res]), "U": np.array([r.U for r in res]),
            "V": np.array([r.V for r in res]), "R1": np.array([r.R1 for r in res]),
            "R2": np.array([r.R2 for r in res]), "C_fe": np.array([r.C_fe for r in res]),
            "source": np.array([f"design/{r.source}" for r in res], dtype=object), "cell": cell_index(topo)}


def exhaustive_design(
    target,
    *,
    E: float | None = None,
    units: str = "normalized",
    n_library: int = 3,
    starts: int = 3,
    final: int = 8,
    budget_s: float = DEFAULT_BUDGET_S,
    workers: int | None = None,
    models: tuple | None = None,
    library=None,
    cell_size: float | None = None,
    cells=None,
    with_design: bool = True,
    progress: Progress | None = None,
) -> ExhaustiveResult:
    """The best design of every lattice for ``target``, found without the network's
    topology choice (module docstring).

    Parameters
    ----------
    target : array_like
        21 constants or a 6x6 Voigt matrix (:func:`~graded.inverse.design.parse_target`).
    E : float, optional
        Base material's Young's modulus in GPa (required for ``units="GPa"``).
    units : {"normalized", "GPa"}
    n_library : int
        Library neighbours per lattice tried as starts (0: none).
    starts : int
        Best starts per lattice (by FE) that are polished.
    final : int
        Best lattices polished further after the first round (0: none).
    budget_s : float
        Wall-time budget in seconds: the first round stops submitting work at four fifths
        of it (all of it with ``final = 0``); the final polish runs only if time is left.
        The starts are always verified (a few seconds), and work in flight is finished.
    workers : int, optional
        Processes of the pool; default ``os.cpu_count()``. 1 polishes in this process.
    models : (InverseModel, ForwardModel), optional
        Default: the shipped weights (only G2's geometry heads are used).
    library : DesignLibrary, optional
        Default: the shipped library.
    cell_size : float, optional
        Edge of the reference cube, for strut diameters (:class:`DesignResult`).
    cells : array_like of int, optional
        Search only these lattices (rows of :func:`~graded.inverse.screen.distinct_cells`);
        default all. ``complete`` then means all of these.
    with_design : bool
        Also take the designs of :func:`~graded.inverse.design.design` with its defaults
        (run first, with the network's draws) into the final ranking and polish, so that the
        reachable optimum is never worse than the default design's answer.
    progress : callable, optional
        ``progress(done, total, message)``: ``total`` is the number of lattices, ``done``
        the lattices polished so far.

    Returns
    -------
    ExhaustiveResult
    """
    t_start = time.perf_counter()
    C_t = parse_target(target, E=E, units=units)
    if E is not None:
        E = float(check_positive("E", E))
    n_library = check_count("n_library", n_library, 0)
    starts = check_count("starts", starts, 1)
    final = check_count("final", final, 0)
    budget_s = float(check_positive("budget_s", budget_s, hint="seconds, e.g. 240"))
    workers = check_count("workers", workers if workers is not None else (os.cpu_count() or 1), 1)
    inverse, forward = models if models is not None else default_models()
    timings: dict[str, float] = {}
    from_design = None
    if with_design:
        if progress is not None:
            progress(0, 1, "the default design first")
        t0 = time.perf_counter()
        from_design = _design_pool(C_t, (inverse, forward), library)
        timings["design"] = time.perf_counter() - t0

    def note(done: int, msg: str) -> None:
        if progress is not None:
            progress(done, n_cells, msg)

    # --- 1. the lattices and their starts
    t0 = time.perf_counter()
    n_all = len(distinct_cells()[0])
    if cells is None:
        cells = np.arange(n_all)
    cells = np.unique(np.asarray(cells, dtype=np.int64).reshape(-1))
    if cells.size == 0 or cells.min() < 0 or cells.max() >= n_all:
        fail("cells", f"must be lattice indices in 0..{n_all - 1}", "see graded.inverse.screen.distinct_cells")
    n_cells = len(cells)
    note(0, f"{n_cells} distinct lattices: drawing starts")
    cand = lattice_starts(C_t, inverse, n_library=n_library, library=library, cells=cells)
    err = cand["error"]
    timings["starts"] = time.perf_counter() - t0
    note(0, f"verified {len(err)} starts by FE (best {100 * err.min():.2f} %)")

    # --- 2. the best starts of every lattice, polished in parallel, best lattices first
    t0 = time.perf_counter()
    chosen = best_per_cell(err, cand["cell"], starts)
    cell_order = list(dict.fromkeys(int(c) for c in cand["cell"][chosen]))
    tasks = [cell_order[a:a + CHUNK] for a in range(0, n_cells, CHUNK)]
    keys = DESIGN_KEYS + ("source", "cell")
    chosen_by_cell = {int(c): chosen[cand["cell"][chosen] == c] for c in cells}
    polished: list[dict] = []
    done_cells = 0
    round_budget = 0.8 * budget_s - (time.perf_counter() - t_start) if final else budget_s - (time.perf_counter()
                                                                                               - t_start)
    deadline = time.perf_counter() + max(round_budget, 0.0)

    def submit_args(cells):
        idx = np.concatenate([chosen_by_cell[c] for c in cells])
        return idx, {k: cand[k][idx] for k in DESIGN_KEYS}

    def collect(idx, out):
        polished.append({k: cand[k][idx] for k in ("source", "cell")} | {k: out[k] for k in DESIGN_KEYS + ("C_fe",)})

    if workers == 1:
        for cells in tasks:
            if time.perf_counter() > deadline:
                break
            idx, arrays = submit_args(cells)
            collect(idx, _polish_task(C_t, arrays, POLISH_ITERATIONS, 1e-4))
            done_cells += len(cells)
            note(done_cells, f"polished {done_cells}/{n_cells} lattices")
    else:
        with process_pool(workers, env=SINGLE_THREADED_BLAS) as pool:
            pending: dict = {}
            queue = list(tasks)
            while queue or pending:
                while queue and len(pending) < 2 * workers and time.perf_counter() < deadline:
                    cells = queue.pop(0)
                    idx, arrays = submit_args(cells)
                    pending[pool.submit(_polish_task, C_t, arrays, POLISH_ITERATIONS, 1e-4)] = (idx, cells)
                if not pending:
                    break
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in finished:
                    idx, cells = pending.pop(fut)
                    collect(idx, fut.result())
                    done_cells += len(cells)
                    note(done_cells, f"polished {done_cells}/{n_cells} lattices")
                if time.perf_counter() > deadline:
                    queue.clear()
                    for fut in list(pending):
                        if fut.cancel():
                            pending.pop(fut)
    timings["polish"] = time.perf_counter() - t0
    polished_cells = set()
    for p in polished:
        polished_cells.update(int(c) for c in p["cell"])
    # lattices not reached keep their best start
    rest = np.array([i for i in chosen if int(cand["cell"][i]) not in polished_cells], dtype=np.int64)
    pool_all = polished + ([{k: cand[k][rest] for k in keys + ("C_fe",)}] if rest.size else [])
    if from_design is not None:
        pool_all.append(from_design)
    allp = {k: np.concatenate([p[k] for p in pool_all]) for k in keys + ("C_fe",)}

    # --- 3. the best lattices polished further
    t0 = time.perf_counter()
    e_all = relative_error(C_t, allp["C_fe"])
    best_of_cell: dict[int, int] = {}
    for i in np.argsort(e_all, kind="stable"):
        best_of_cell.setdefault(int(allp["cell"][i]), int(i))
    best_idx = np.array(sorted(best_of_cell.values(), key=lambda i: e_all[i]), dtype=np.int64)
    if final > 0 and best_idx.size and time.perf_counter() - t_start < budget_s:
        top = best_idx[:final]
        note(len(polished_cells), f"final polish of the best {len(top)} lattices")
        out = polish_designs(C_t, {k: allp[k][top] for k in DESIGN_KEYS}, iterations=FINAL_ITERATIONS,
                             rtol=FINAL_RTOL)
        better = out["error"] < e_all[top]
        for k in DESIGN_KEYS + ("C_fe",):
            allp[k][top[better]] = out[k][better]
    timings["final"] = time.perf_counter() - t0

    pick = {k: allp[k][best_idx] for k in keys + ("C_fe",)}
    pick["C_pred"] = forward.predict(*(pick[k] for k in DESIGN_KEYS))
    pick["nmse"] = nmse(C_t[None], pick["C_pred"])
    pick["nmse_fe"] = nmse(C_t[None], pick["C_fe"])
    results = rank_results(design_results(pick, np.ones(len(best_idx), dtype=bool), C_t, E=E, cell_size=cell_size), C_t)
    timings["total"] = time.perf_counter() - t_start
    note(len(polished_cells), f"done: reachable optimum {100 * results[0].error_fe:.2f} %")
    return ExhaustiveResult(
        results=results,
        optimum=float(results[0].error_fe),
        cells_total=n_cells,
        cells_polished=len(polished_cells),
        complete=len(polished_cells) == n_cells,
        design_error=None if from_design is None else float(relative_error(C_t, from_design["C_fe"]).min()),
        seconds={k: round(v, 3) for k, v in timings.items()},
        settings={"n_library": n_library, "starts": starts, "final": final, "budget_s": budget_s,
                  "workers": workers, "iterations": POLISH_ITERATIONS, "final_iterations": FINAL_ITERATIONS,
                  "with_design": with_design},
    )


# ---------------------------------------------------------------------------
# known optima
# ---------------------------------------------------------------------------

#: Significant digits of the normalised constants in the key of a recorded optimum: a
#: target typed or read back from a CSV with 6+ digits maps onto the same key.
KEY_DIGITS = 6


def optima_path() -> Path:
    """File of recorded optima: ``$GRADED_CACHE_DIR/optima.json``, default
    ``~/.cache/graded/optima.json``."""
    root = os.environ.get("GRADED_CACHE_DIR")
    return (Path(root) if root else Path.home() / ".cache" / "graded") / "optima.json"


def target_key(target: np.ndarray) -> str:
    """Key of a normalised target (6, 6): SHA-256 of its 21 constants at :data:`KEY_DIGITS`
    significant digits."""
    text = ",".join(f"{v:.{KEY_DIGITS - 1}e}" for v in to_21(np.asarray(target, dtype=np.float64)))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _read_optima(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        warnings.warn(f"ignoring the unreadable record of optima {path} ({exc})", stacklevel=3)
        return {}
    return data if isinstance(data, dict) else {}


def record_optimum(target: np.ndarray, result: ExhaustiveResult, path: str | os.PathLike | None = None) -> Path:
    """Record the reachable optimum of a normalised target (6, 6) in ``path``
    (default :func:`optima_path`), replacing an earlier record of it only if better or
    more complete."""
    path = Path(path) if path is not None else optima_path()
    data = _read_optima(path)
    key = target_key(target)
    old = data.get(key)
    new = {"optimum": result.optimum, "topology": result.results[0].topology, "complete": result.complete,
           "cells_polished": result.cells_polished, "cells_total": result.cells_total}
    if old is None or new["optimum"] < old.get("optimum", np.inf) or (new["complete"] and not old.get("complete")):
        data[key] = new
        with atomic_path(path) as tmp:
            Path(tmp).write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return path


def known_optimum(target: np.ndarray, path: str | os.PathLike | None = None) -> dict | None:
    """The recorded optimum of a normalised target (6, 6) -- ``{"optimum", "topology",
    "complete", "cells_polished", "cells_total"}`` -- or None."""
    return _read_optima(Path(path) if path is not None else optima_path()).get(target_key(target))
