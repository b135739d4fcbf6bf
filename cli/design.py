"""``graded design TARGET``: propose unit cells for a target stiffness, verified by FE."""

from __future__ import annotations

import contextlib
import csv
import re
import warnings
from pathlib import Path

import click
import numpy as np

from graded.validation import ValidationError, fail

from .options import ProgressBar, echo_json, handle_errors, json_option

__all__ = ["design", "read_target"]

#: Ti-6Al-4V (main text, ref. 60).
DEFAULT_E = 114.0
#: Candidates drawn and designs returned per family (--draws, --top).
DEFAULT_DRAWS = {"truss": 10000, "spinodoid": 256, "voxel": 16}
DEFAULT_TOP = {"truss": 10, "spinodoid": 3, "voxel": 4}


def _floats(values: list[str], where: str) -> np.ndarray:
    try:
        return np.array([float(v) for v in values], dtype=np.float64)
    except ValueError:
        fail(where, f"{values!r} are not all numbers", "give numbers separated by spaces or commas")


def read_target(args: tuple[str, ...], row: str | None) -> tuple[np.ndarray, str]:
    """Target values and a label from the command-line TARGET arguments.

    TARGET is 21 numbers (C11 C12 ... C66), 36 numbers (a 6x6 matrix, row by row), any of
    them comma-separated in one argument, or a CSV file (``#`` comment lines; an optional
    header row; rows of 21 or 36 numbers, optionally preceded by a name) with ``--row``
    selecting the row by 0-based index or by name.
    """
    if len(args) == 1 and Path(args[0]).is_file():
        return _csv_target(Path(args[0]), row)
    if row is not None:
        fail("--row", "only applies to a CSV file TARGET", "drop --row or give a file")
    parts = [p for a in args for p in a.replace(",", " ").split()]
    unknown = [p for p in parts if p.startswith("--")]
    if unknown:
        fail("TARGET", f"{unknown[0]!r} is not an option of graded design", "see graded design --help")
    return _shape(_floats(parts, "TARGET")), "command line"


def _csv_rows(path: Path) -> list[tuple[str | None, list[float]]]:
    """Numeric rows of a target CSV as (name or None, values); header and comments skipped."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(line for line in f if line.strip() and not line.lstrip().startswith("#")))
    data = []
    for r in rows:
        r = [c.strip() for c in r if c.strip() != ""]
        try:
            float(r[-1])
        except (ValueError, IndexError):
            continue  # a header
        try:
            data.append((None, [float(c) for c in r]))
        except ValueError:
            data.append((r[0], [float(c) for c in r[1:]]))
    if not data:
        fail("TARGET", f"{path} has no numeric rows", "give a CSV with one target per row")
    return data


def _csv_target(path: Path, row: str | None) -> tuple[np.ndarray, str]:
    data = _csv_rows(path)
    names = [n for n, _ in data]
    if row is None:
        if len(data) > 1:
            labels = [n if n is not None else str(i) for i, n in enumerate(names)]
            fail("--row", f"{path} has {len(data)} targets", f"choose one with --row (index or name: {labels})")
        idx = 0
    elif row in names:
        idx = names.index(row)
    else:
        try:
            idx = int(row)
        except ValueError:
            fail("--row", f"{row!r} is neither a row index nor a name in {path}", f"names: {names}")
        if not 0 <= idx < len(data):
            fail("--row", f"index {idx} is outside 0..{len(data) - 1}", None)
    name, vals = data[idx]
    return _shape(np.array(vals)), f"{path.name}:{name if name is not None else idx}"


def _shape(values: np.ndarray) -> np.ndarray:
    """36 numbers are a 6x6 matrix row by row; anything else is left to the library's checks."""
    return values.reshape(6, 6) if values.size == 36 else values


#: library keyword -> the option of `graded design` that sets it
_OPTIONS = {"n_draws": "--draws", "top_k": "--top", "n_library": "--library", "cell_size": "--cell-size",
            "tau": "--tau", "E": "--E", "units": "--units", "rank_by": "--rank-by", "seed": "--seed",
            "target": "TARGET", "screen": "--screen", "final": "--final", "budget_s": "--budget",
            "workers": "--workers"}
#: library phrasing in hints and warnings -> command-line phrasing
_PHRASES = (
    (r"units='GPa'", "--units GPa"),
    (r"\bE=(\d+)", r"--E \1"),
    (r"and the base material's E\b", "and the base material's Young's modulus with --E"),
    (r"\bdivide by E\b", "divide by --E"),
    (r"a larger tau or more draws", "a larger --tau or more --draws"),
)


def _cli_words(text: str) -> str:
    """Library wording (keyword arguments) turned into the options of this command."""
    for pattern, repl in _PHRASES:
        text = re.sub(pattern, repl, text)
    return text


@contextlib.contextmanager
def _as_options():
    """Re-raise the library's ValidationErrors naming this command's options."""
    try:
        yield
    except ValidationError as exc:
        raise ValidationError(_OPTIONS.get(exc.field, exc.field), _cli_words(exc.problem),
                              None if exc.hint is None else _cli_words(exc.hint)) from None


def _echo_warnings(caught) -> list[str]:
    """The design warnings a user must see, in the command's words, echoed to stderr."""
    messages = [_cli_words(f"{w.category.__name__}: {w.message}") for w in caught
                if w.category.__name__ in ("TargetOutOfReachWarning", "PoorMatchWarning")]
    for m in messages:
        click.echo(f"Warning: {m}", err=True)
    return messages


def _fmt_vec(v) -> str:
    return "(" + ", ".join(f"{x:.3f}" for x in v) + ")"


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("target", nargs=-1, required=True)
@click.option("--row", default=None, help="Row of a CSV TARGET (0-based index or the name in its first column).")
@click.option("--units", type=click.Choice(["GPa", "normalized"]), default="GPa", show_default=True,
              help="Units of TARGET: GPa (divided by --E) or already normalised by the base material's E.")
@click.option("--E", "E", type=float, default=None,
              help=f"Base material's Young's modulus in GPa [default with --units GPa: {DEFAULT_E:g}, Ti-6Al-4V].")
@click.option("--family", type=click.Choice(["truss", "spinodoid", "both", "voxel"]), default="truss",
              show_default=True,
              help="Cell family: truss lattices, spinodoids (Kumar et al. 2020), both side by side, or free-form "
                   "cubic voxel cells generated by the diffusion model (TARGET may then be C11 C12 C44).")
@click.option("--volume-fraction", type=float, default=None,
              help="Voxel family: target volume fraction [default: conditioned on the stiffness alone].")
@click.option("--poisson", type=float, default=None,
              help="Voxel family: guide the generation towards this Poisson's ratio C12 / (C11 + C12), "
                   "a second goal.")
@click.option("--goal-weight", type=float, default=1.0, show_default=True,
              help="Voxel family: weight of the --poisson guidance.")
@click.option("--draws", type=int, default=None,
              help="Candidates drawn and ranked [default: 10000 truss, 256 spinodoid, 16 voxel].")
@click.option("--tau", type=float, default=1.0, show_default=True,
              help="Gumbel-softmax temperature (larger: more varied topologies).")
@click.option("--top", type=int, default=None,
              help="Designs returned and verified by FE [default: 10 truss, 3 spinodoid, 4 voxel].")
@click.option("--realisations", type=int, default=8, show_default=True,
              help="Spinodoid cells (wave sets) homogenized per design: their mean is the design's stiffness, "
                   "the cell closest to the target is kept with its seed.")
@click.option("--no-verify", is_flag=True, help="Skip FE verification (predicted stiffness only).")
@click.option("--refine/--no-refine", default=True, show_default=True,
              help="Refine the continuous parameters: gradient descent through the forward model, then "
                   "Levenberg-Marquardt against the FE solver itself.")
@click.option("--library", "n_library", type=int, default=5, show_default=True,
              help="Of the --top designs, up to this many (at most half) are nearest neighbours from the "
                   "design library of FE-verified cells (0: inverse model only).")
@click.option("--rank-by", type=click.Choice(["mandel", "nmse"]), default="mandel", show_default=True,
              help="Ranking of the designs: relative Mandel (Frobenius) norm error ||C - C_target|| / ||C_target||, "
                   "or the NMSE of main Eq. 8 (dominated by near-zero target entries).")
@click.option("--cell-size", type=float, default=None,
              help="Cell size (reference-cube edge, e.g. mm) for strut diameters.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the sampling (same seed, same designs).")
@click.option("--screen", type=int, default=5, show_default=True,
              help="Also verify by FE starts for every distinct lattice and add the best of this many lattices to "
                   "the designs (0: off).")
@click.option("--final", type=int, default=3, show_default=True,
              help="Polish the best this many designs of distinct cells further against FE (0: off).")
@click.option("--exhaustive", is_flag=True,
              help="Search every one of the 236 distinct lattices, each polished by FE from several starts (library "
                   "cells and network geometries of that lattice), in parallel: the reachable optimum. It is "
                   "recorded, and later designs of the same target say how far they are from it.")
@click.option("--budget", type=float, default=240.0, show_default=True,
              help="Time budget of --exhaustive in seconds (lattices not polished in time keep their best start).")
@click.option("--workers", type=int, default=None, help="Processes of --exhaustive [default: all cores].")
@click.option("--max-error", type=float, default=None,
              help="Percent: when the best truss is further than this from the target (by FE), say so (with the "
                   "reachable optimum where known) and design the best spinodoid beside it.")
@click.option("--weights", type=click.Path(file_okay=False), default=None,
              help="Directory with inverse.* and forward.* weights (voxel family: model.*) [default: shipped].")
@click.option("--plot", type=click.Path(dir_okay=False), default=None,
              help="PNG with the elastic surfaces of the target and the best design (as in Fig. 3A).")
@click.option("--no-progress", is_flag=True, help="No progress bar on stderr.")
@json_option
@handle_errors
def design(target, row, units, E, family, volume_fraction, poisson, goal_weight, draws, tau, top, realisations,
           no_verify, refine, n_library, rank_by, cell_size, seed, screen, final, exhaustive, budget, workers,
           max_error, weights, plot, no_progress, as_json) -> None:
    """Propose truss, spinodoid or voxel unit cells whose stiffness matches TARGET.

    TARGET: 21 constants C11 C12 C13 C14 C15 C16 C22 ... C66 (Voigt order 11,22,33,23,13,12),
    36 numbers of a 6x6 matrix, or a CSV file with --row; with --family voxel also C11 C12 C44
    (any other target is projected onto the nearest cubic stiffness), e.g.

    \b
        graded design examples/data/trabecular_bone_stiffness.csv --row A --plot boneA.png
        graded design 0.05 0.02 0.01 --units normalized --family voxel --volume-fraction 0.3
    """

    if family != "truss" and (exhaustive or cell_size is not None or max_error is not None):
        flag = "--exhaustive" if exhaustive else "--cell-size" if cell_size is not None else "--max-error"
        fail(flag, "applies to truss designs only", "drop it, or use --family truss")
    if max_error is not None and not 0 < max_error < 100:
        fail("--max-error", f"must be a percentage in (0, 100), not {max_error:g}", "e.g. --max-error 5")
    if max_error is not None and no_verify:
        fail("--max-error", "compares the FE-verified best truss with the threshold", "drop --no-verify")
    truss = spin = None

    def default(value, table, fam):
        return table[fam] if value is None else value

    if family != "voxel" and (volume_fraction is not None or poisson is not None):
        fail("--volume-fraction" if volume_fraction is not None else "--poisson", "applies to --family voxel only",
             "drop it, or use --family voxel")
    if family == "voxel":
        from .design_voxel import design_voxel_cli

        design_voxel_cli(target, row, units, DEFAULT_E if units == "GPa" and E is None else E, volume_fraction,
                         poisson, goal_weight, default(draws, DEFAULT_DRAWS, "voxel"),
                         default(top, DEFAULT_TOP, "voxel"), no_verify, seed,
                         None if weights is None else Path(weights) / "model", no_progress, as_json)
        return

    if family in ("truss", "both"):
        payload, best, known = _truss(target, row, units, E, default(draws, DEFAULT_DRAWS, "truss"), tau,
                                      default(top, DEFAULT_TOP, "truss"),
                                      no_verify, refine, n_library, rank_by, cell_size, seed, screen, final,
                                      exhaustive, budget, workers, weights, None if family == "both" else plot,
                                      no_progress, as_json)
        truss = (payload, best)
    if family in ("spinodoid", "both"):
        spin = _spinodoid(target, row, units, E, default(draws, DEFAULT_DRAWS, "spinodoid"),
                          default(top, DEFAULT_TOP, "spinodoid"),
                          realisations, no_verify, seed, None if family == "both" else plot, no_progress, as_json)
    if max_error is not None:
        if _falls_short(truss, known, max_error, as_json):
            spin = _spinodoid(target, row, units, E, DEFAULT_DRAWS["spinodoid"], DEFAULT_TOP["spinodoid"],
                              realisations, no_verify, seed, None, no_progress, as_json)
            _compare_families(truss, spin, plot, as_json)
            return
    if family == "both":
        _compare_families(truss, spin, plot, as_json)
    elif as_json:
        echo_json((truss or spin)[0])


def _truss(target, row, units, E, draws, tau, top, no_verify, refine, n_library, rank_by, cell_size, seed, screen,
           final, exhaustive, budget, workers, weights, plot, no_progress, as_json):
    """The truss design: prints its table (unless ``as_json``); returns (JSON payload or None, best result,
    the reachable optimum's record or None)."""
    import torch

    from graded.elastic import NAMES_21, to_21
    from graded.inverse.design import design as run_design
    from graded.inverse.design import parse_target
    from graded.inverse.exhaustive import exhaustive_design, known_optimum, record_optimum

    torch.set_num_threads(2)
    values, label = read_target(target, row)
    if units == "GPa" and E is None:
        E = DEFAULT_E
    models = None
    if weights is not None:
        from graded.inverse.weights import load_forward, load_inverse

        models = (load_inverse(Path(weights) / "inverse"), load_forward(Path(weights) / "forward"))
    with warnings.catch_warnings(record=True) as caught, _as_options(), \
            ProgressBar("designing", enabled=not no_progress) as bar:
        warnings.simplefilter("always")
        C_t = parse_target(values, E=E, units=units)
        if exhaustive:
            found = exhaustive_design(values, E=E, units=units, n_library=n_library, budget_s=budget, workers=workers,
                                      models=models, cell_size=cell_size, progress=bar)
            results = found.results[:top]
            record_optimum(C_t, found)
        else:
            results = run_design(values, E=E, units=units, n_draws=draws, tau=tau, top_k=top, verify=not no_verify,
                                 refine=refine, n_library=n_library, cell_size=cell_size, seed=seed, models=models,
                                 rank_by=rank_by, screen=screen, final=final, progress=bar)
    known = found.to_dict() | {"designs": None} if exhaustive else known_optimum(C_t)
    messages = _echo_warnings(caught)
    scale = E if E is not None else 1.0
    unit = "GPa" if E is not None else "C/E_s"
    if plot is not None:
        from graded.plot import plot_elastic_surfaces

        best = results[0]
        C_b = best.C_fe if best.C_fe is not None else best.C_pred
        surfaces = {"target": C_t * scale, f"design 1 ({best.topology})": C_b * scale}
        if len(results) > 1 and results[1].distinct:
            r = results[1]
            surfaces[f"design 2 ({r.topology})"] = (r.C_fe if r.C_fe is not None else r.C_pred) * scale
        plot_elastic_surfaces(surfaces, plot, title=f"target {label} vs designs ({unit})",
                              unit="GPa" if E is not None else "E_s")
    if as_json:
        return {
            "target": {"label": label, "units": units, "E_GPa": E,
                       "normalized": dict(zip(NAMES_21, to_21(C_t).tolist()))},
            "settings": {"draws": draws, "tau": tau, "top": top, "verify": not no_verify, "refine": refine,
                         "library": n_library, "rank_by": rank_by, "seed": seed, "cell_size": cell_size,
                         "screen": screen, "final": final, "exhaustive": exhaustive,
                         **({"budget_s": budget, "workers": workers} if exhaustive else {})},
            "reachable_optimum": None if known is None else {k: v for k, v in known.items() if k != "designs"},
            "warnings": messages,
            "designs": [r.to_dict() for r in results],
            "plot": plot,
        }, results[0], known
    ranked = "relative Mandel-norm error" if rank_by == "mandel" else "NMSE (main Eq. 8)"
    if exhaustive:
        click.echo(f"target {label} ({unit}); exhaustive search: {found.cells_polished} of {found.cells_total} "
                   f"lattices polished by FE{'' if found.complete else f' (budget of {budget:g} s spent)'} in "
                   f"{found.seconds['total']:.0f} s; the best of each lattice, ranked by {ranked}")
    else:
        click.echo(f"target {label} ({unit}); {draws} candidates, tau = {tau:g}, seed {seed}; ranked by {ranked}, "
                   f"{'FE-verified' if not no_verify else 'predicted'}")
    head = (f"{'#':>2} {'topology':<14} {'rho':>7} {'U':<21} {'V':<21} {'R1 (th,e1,e2)':<22} {'R2 (th,e1,e2)':<22}"
            + (f" {'d':>7}" if cell_size else "") + f" {'err pred':>8} {'err FE':>7} {'NMSE FE':>10}")
    click.echo(head)
    click.echo("-" * len(head))
    for r in results:
        fe = (f" {100 * r.error_fe:6.2f}% {r.nmse_fe:10.4g}" if r.error_fe is not None else f" {'-':>7} {'-':>10}")
        mark = ("" if r.distinct else " (same cell)") + (f" [{r.source}]" if r.source in ("library", "screen") else "")
        click.echo(f"{r.rank + 1:>2} {r.topology:<14} {r.rho:7.4f} {_fmt_vec(r.U):<21} {_fmt_vec(r.V):<21} "
                   f"{_fmt_vec(r.R1_axis_angle):<22} {_fmt_vec(r.R2_axis_angle):<22}"
                   + (f" {r.diameter:7.4f}" if cell_size else "") + f" {100 * r.error_pred:7.2f}%{fe}{mark}")
    best = results[0]
    C_b = best.C_fe if best.C_fe is not None else best.C_pred
    click.echo(f"\nbest design vs target ({unit}; {'FE' if best.C_fe is not None else 'predicted'}):")
    t21, b21 = to_21(C_t) * scale, to_21(C_b) * scale
    for i in range(0, 21, 7):
        click.echo("  " + "  ".join(f"{NAMES_21[j]:>4} {t21[j]:8.4g}/{b21[j]:<8.4g}" for j in range(i, i + 7)))
    if known is not None and best.error_fe is not None:
        opt = known["optimum"]
        scope = "all" if known["complete"] else f"{known['cells_polished']} of {known['cells_total']}"
        if exhaustive:
            click.echo(f"reachable optimum: {100 * opt:.2f} % ({best.topology}; {scope} lattices searched)")
        else:
            click.echo(f"reachable optimum (exhaustive search, {scope} lattices): {100 * opt:.2f} % "
                       f"({known['topology']}); this design is {100 * (best.error_fe - opt):+.2f} points from it")
    if plot is not None:
        click.echo(f"wrote {plot}")
    return None, results[0], known


def _falls_short(truss, known, max_error, as_json) -> bool:
    """``--max-error``: whether the best truss misses the threshold; says so (and records it in the payload)."""
    payload, best = truss
    err = best.error_fe
    short = err > max_error / 100
    verdict = {"threshold": max_error / 100, "best_truss": err, "short": short,
               "reachable_optimum": None if known is None else known["optimum"]}
    if payload is not None:
        payload["max_error"] = verdict
    if short and not as_json:
        limit = ""
        if known is not None:
            scope = "all" if known["complete"] else f"{known['cells_polished']} of {known['cells_total']}"
            limit = (f"; the reachable optimum ({scope} lattices searched) is {100 * known['optimum']:.2f} %"
                     + (", so trusses do not reach it" if known["optimum"] > max_error / 100 else ""))
        else:
            limit = "; `--exhaustive` tells whether any truss does"
        click.echo(f"\nthe best truss is {100 * err:.2f} % from the target, above --max-error {max_error:g} %"
                   f"{limit}. The best spinodoid for the same target:\n")
    return short


# ---------------------------------------------------------------------------
# spinodoids (--family spinodoid|both)
# ---------------------------------------------------------------------------


def _spinodoid_dict(r, scale: float) -> dict:
    from graded.elastic import NAMES_21, to_21
    from graded.elastic.rotation import matrix_to_axis_angle

    d = r.design
    return {
        "rank": r.rank, "family": "spinodoid", "rho": d.rho, "theta_deg": list(d.theta),
        "R": d.R.tolist(), "R_axis_angle": matrix_to_axis_angle(d.R).tolist(), "wavelength": d.wavelength,
        "n_waves": d.n_waves, "wave_seed": r.wave_seed, "error_pred": r.error_pred, "error_fe": r.error_fe,
        "frobenius_fe": r.frobenius_fe, "nmse_fe": r.nmse_fe, "density_fe": r.density_fe,
        "error_cell": r.error_cell, "frobenius_cell": r.frobenius_cell, "scatter": r.scatter,
        "corrected": r.corrected, "realisation_errors": r.realisation_errors, "target_non_orthotropic": r.residual,
        "C_pred": dict(zip(NAMES_21, (to_21(r.C_pred) * scale).tolist())),
        "C_fe": None if r.C_fe is None else dict(zip(NAMES_21, (to_21(r.C_fe) * scale).tolist())),
        "C_cell": None if r.C_cell is None else dict(zip(NAMES_21, (to_21(r.C_cell) * scale).tolist())),
    }


def _spinodoid(target, row, units, E, draws, top, realisations, no_verify, seed, plot, no_progress, as_json):
    """Design spinodoids for TARGET; prints the table unless ``as_json``.

    Returns (JSON payload or None, best result, normalised target, scale to the user's units).
    """
    import torch

    from graded.elastic import NAMES_21, to_21
    from graded.inverse.design import parse_target
    from graded.inverse.spinodoid.design import design_spinodoid

    torch.set_num_threads(2)
    values, label = read_target(target, row)
    if units == "GPa" and E is None:
        E = DEFAULT_E
    with warnings.catch_warnings(record=True) as caught, _as_options(), \
            ProgressBar("spinodoid FE", enabled=not no_progress) as bar:
        warnings.simplefilter("always")
        C_t = parse_target(values, E=E, units=units)
        results = design_spinodoid(values, E=E, units=units, n_draws=draws, top_k=top, realisations=realisations,
                                   verify=not no_verify, seed=seed, progress=bar)
    messages = _echo_warnings(caught)
    scale = E if E is not None else 1.0
    unit = "GPa" if E is not None else "C/E_s"
    best = results[0]
    if plot is not None:
        from graded.plot import plot_elastic_surfaces

        C_b = best.C_fe if best.C_fe is not None else best.C_pred
        plot_elastic_surfaces({"target": C_t * scale, "spinodoid 1": C_b * scale}, plot,
                              title=f"target {label} vs spinodoid design ({unit})",
                              unit="GPa" if E is not None else "E_s")
    if as_json:
        return {
            "target": {"label": label, "units": units, "E_GPa": E,
                       "normalized": dict(zip(NAMES_21, to_21(C_t).tolist()))},
            "settings": {"family": "spinodoid", "draws": draws, "top": top, "realisations": realisations,
                         "verify": not no_verify, "seed": seed},
            "warnings": messages,
            "designs": [_spinodoid_dict(r, scale) for r in results],
            "plot": plot,
        }, best, C_t, scale
    click.echo(f"target {label} ({unit}); spinodoid cells: {draws} draws refined through the forward model, "
               f"{'mean of ' + str(realisations) + ' FE cells each' if not no_verify else 'predicted'}; "
               f"non-orthotropic part of the target {100 * best.residual:.1f} %")
    head = (f"{'#':>2} {'rho':>6} {'theta (deg)':<22} {'R (th,e1,e2)':<22} {'seed':>10} {'err pred':>8} "
            f"{'err FE':>7} {'cell':>7} {'scatter':>7}")
    click.echo(head)
    click.echo("-" * len(head))
    from graded.elastic.rotation import matrix_to_axis_angle

    for r in results:
        d = r.design
        fe = (f"{100 * r.error_fe:6.2f}% {100 * r.error_cell:6.2f}% {100 * r.scatter:6.1f}%"
              if r.error_fe is not None else f"{'-':>7} {'-':>7} {'-':>7}")
        click.echo(f"{r.rank + 1:>2} {d.rho:6.3f} {_fmt_vec(d.theta):<22} {_fmt_vec(matrix_to_axis_angle(d.R)):<22} "
                   f"{r.wave_seed if r.wave_seed is not None else '-':>10} {100 * r.error_pred:7.2f}% {fe}"
                   f"{'  (FE-corrected)' if r.corrected else ''}")
    if not no_verify:
        click.echo("err FE: the mean of the design's cells (its expected stiffness); cell: the kept cell (seed), "
                   "which a part builds at its point; scatter: median distance of a cell from the mean")
    C_b = best.C_fe if best.C_fe is not None else best.C_pred
    click.echo(f"\nbest spinodoid vs target ({unit}; {'FE' if best.C_fe is not None else 'predicted'}):")
    t21, b21 = to_21(C_t) * scale, to_21(C_b) * scale
    for i in range(0, 21, 7):
        click.echo("  " + "  ".join(f"{NAMES_21[j]:>4} {t21[j]:8.4g}/{b21[j]:<8.4g}" for j in range(i, i + 7)))
    if plot is not None:
        click.echo(f"wrote {plot}")
    return None, best, C_t, scale


def _compare_families(truss, spin, plot, as_json) -> None:
    """The closing comparison of ``--family both``: which family comes closer, by FE (or prediction)."""
    (t_payload, t_best), (s_payload, s_best, C_t, scale) = truss, spin
    t_err = t_best.error_fe if t_best.error_fe is not None else t_best.error_pred
    s_err = s_best.error
    winner = "truss" if t_err <= s_err else "spinodoid"
    verdict = {"truss": {"topology": t_best.topology, "rho": t_best.rho, "error": t_err},
               "spinodoid": {"rho": s_best.design.rho, "theta_deg": list(s_best.design.theta), "error": s_err},
               "closer": winner}
    if plot is not None:
        from graded.plot import plot_elastic_surfaces

        surfaces = {"target": C_t * scale}
        for name, b in (("best truss", t_best), ("best spinodoid", s_best)):
            surfaces[name] = (b.C_fe if b.C_fe is not None else b.C_pred) * scale
        plot_elastic_surfaces(surfaces, plot, title="target vs best truss and best spinodoid",
                              unit="E_s" if scale == 1.0 else "GPa")
    if as_json:
        echo_json({"truss": t_payload, "spinodoid": s_payload, "comparison": verdict})
        return
    click.echo(f"\ncomparison: best truss {100 * t_err:.2f} % ({t_best.topology}, rho {t_best.rho:.3f}); best "
               f"spinodoid {100 * s_err:.2f} % (rho {s_best.design.rho:.3f}, theta "
               f"{_fmt_vec(s_best.design.theta)}); the {winner} comes closer")
    if plot is not None:
        click.echo(f"wrote {plot}")
