"""``graded design TARGET``: propose unit cells for a target stiffness, verified by FE."""

from __future__ import annotations

import csv
import warnings
from pathlib import Path

import click
import numpy as np

from graded.validation import fail

from .options import echo_json, handle_errors, json_option

__all__ = ["design", "read_target"]

#: Ti-6Al-4V (main text, ref. 60).
DEFAULT_E = 114.0


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
        path = Path(args[0])
        with open(path, newline="", encoding="utf-8") as f:
            rows = [r for r in csv.reader(line for line in f if line.strip() and not line.lstrip().startswith("#"))]
        data = []
        for r in rows:
            r = [c.strip() for c in r if c.strip() != ""]
            try:
                float(r[-1])
            except (ValueError, IndexError):
                continue
            try:
                vals = [float(c) for c in r]
                name = None
            except ValueError:
                vals = [float(c) for c in r[1:]]
                name = r[0]
            data.append((name, vals))
        if not data:
            fail("TARGET", f"{path} has no numeric rows", "give a CSV with one target per row")
        if row is None:
            if len(data) > 1:
                names = [n if n is not None else str(i) for i, (n, _) in enumerate(data)]
                fail("--row", f"{path} has {len(data)} targets", f"choose one with --row (index or name: {names})")
            idx = 0
        else:
            names = [n for n, _ in data]
            if row in names:
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
    if row is not None:
        fail("--row", "only applies to a CSV file TARGET", "drop --row or give a file")
    parts = [p for a in args for p in a.replace(",", " ").split()]
    unknown = [p for p in parts if p.startswith("--")]
    if unknown:
        fail("TARGET", f"{unknown[0]!r} is not an option of graded design", "see graded design --help")
    return _shape(_floats(parts, "TARGET")), "command line"


def _shape(values: np.ndarray) -> np.ndarray:
    """36 numbers are a 6x6 matrix row by row; anything else is left to the library's checks."""
    return values.reshape(6, 6) if values.size == 36 else values


def _fmt_vec(v) -> str:
    return "(" + ", ".join(f"{x:.3f}" for x in v) + ")"


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("target", nargs=-1, required=True)
@click.option("--row", default=None, help="Row of a CSV TARGET (0-based index or the name in its first column).")
@click.option("--units", type=click.Choice(["GPa", "normalized"]), default="GPa", show_default=True,
              help="Units of TARGET: GPa (divided by --E) or already normalised by the base material's E.")
@click.option("--E", "E", type=float, default=None,
              help=f"Base material's Young's modulus in GPa [default with --units GPa: {DEFAULT_E:g}, Ti-6Al-4V].")
@click.option("--draws", type=int, default=10000, show_default=True, help="Candidates drawn and ranked.")
@click.option("--tau", type=float, default=1.0, show_default=True,
              help="Gumbel-softmax temperature (larger: more varied topologies).")
@click.option("--top", type=int, default=10, show_default=True, help="Designs returned and verified by FE.")
@click.option("--no-verify", is_flag=True, help="Skip FE verification (predicted stiffness only).")
@click.option("--refine/--no-refine", default=True, show_default=True,
              help="Refine the continuous parameters: gradient descent through the forward model, then "
                   "Levenberg-Marquardt against the FE solver itself.")
@click.option("--library", "n_library", type=int, default=5, show_default=True,
              help="Of the --top designs, up to this many (at most half) are nearest neighbours from the "
                   "design library of FE-verified cells (0: inverse model only).")
@click.option("--cell-size", type=float, default=None, help="Cell size (reference-cube edge, e.g. mm) for strut diameters.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the sampling (same seed, same designs).")
@click.option("--weights", type=click.Path(file_okay=False), default=None,
              help="Directory with inverse.* and forward.* weights [default: shipped].")
@click.option("--plot", type=click.Path(dir_okay=False), default=None,
              help="PNG with the elastic surfaces of the target and the best design (as in Fig. 3A).")
@json_option
@handle_errors
def design(target, row, units, E, draws, tau, top, no_verify, refine, n_library, cell_size, seed, weights, plot,
           as_json) -> None:
    """Propose truss unit cells whose stiffness matches TARGET.

    TARGET: 21 constants C11 C12 C13 C14 C15 C16 C22 ... C66 (Voigt order 11,22,33,23,13,12),
    36 numbers of a 6x6 matrix, or a CSV file with --row, e.g.

    \b
        graded design examples/data/trabecular_bone_stiffness.csv --row A --plot boneA.png
    """
    import torch

    from graded.elastic import NAMES_21, to_21
    from graded.elastic.metrics import relative_error
    from graded.inverse.design import design as run_design

    torch.set_num_threads(2)
    values, label = read_target(target, row)
    if units == "GPa" and E is None:
        E = DEFAULT_E
    models = None
    if weights is not None:
        from graded.inverse.weights import load_forward, load_inverse

        models = (load_inverse(Path(weights) / "inverse"), load_forward(Path(weights) / "forward"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        results = run_design(values, E=E, units=units, n_draws=draws, tau=tau, top_k=top, verify=not no_verify,
                             refine=refine, n_library=n_library, cell_size=cell_size, seed=seed, models=models)
    messages = [f"{w.category.__name__}: {w.message}" for w in caught
                if w.category.__name__ in ("TargetOutOfReachWarning", "PoorMatchWarning")]
    for m in messages:
        click.echo(f"Warning: {m}", err=True)
    scale = E if E is not None else 1.0
    unit = "GPa" if E is not None else "C/E_s"
    from graded.inverse.design import parse_target

    C_t = parse_target(values, E=E, units=units)
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
        echo_json({
            "target": {"label": label, "units": units, "E_GPa": E, "normalized": dict(zip(NAMES_21, to_21(C_t).tolist()))},
            "settings": {"draws": draws, "tau": tau, "top": top, "verify": not no_verify, "refine": refine,
                         "library": n_library, "seed": seed, "cell_size": cell_size},
            "warnings": messages,
            "designs": [r.to_dict() for r in results],
            "plot": plot,
        })
        return
    click.echo(f"target {label} ({unit}); {draws} candidates, tau = {tau:g}, seed {seed}")
    head = (f"{'#':>2} {'topology':<14} {'rho':>7} {'U':<21} {'V':<21} {'R1 (th,e1,e2)':<22} {'R2 (th,e1,e2)':<22}"
            + (f" {'d':>7}" if cell_size else "") + f" {'NMSE pred':>10} {'NMSE FE':>10} {'err FE':>7}")
    click.echo(head)
    click.echo("-" * len(head))
    for r in results:
        fe = f"{r.nmse_fe:10.4g}" if r.nmse_fe is not None else f"{'-':>10}"
        fe += f" {100 * float(relative_error(C_t, r.C_fe)):6.2f}%" if r.C_fe is not None else f" {'-':>7}"
        mark = ("" if r.distinct else " (same topology)") + (" [library]" if r.source == "library" else "")
        click.echo(f"{r.rank + 1:>2} {r.topology:<14} {r.rho:7.4f} {_fmt_vec(r.U):<21} {_fmt_vec(r.V):<21} "
                   f"{_fmt_vec(r.R1_axis_angle):<22} {_fmt_vec(r.R2_axis_angle):<22}"
                   + (f" {r.diameter:7.4f}" if cell_size else "") + f" {r.nmse_pred:10.4g} {fe}{mark}")
    best = results[0]
    C_b = best.C_fe if best.C_fe is not None else best.C_pred
    click.echo(f"\nbest design vs target ({unit}; {'FE' if best.C_fe is not None else 'predicted'}):")
    t21, b21 = to_21(C_t) * scale, to_21(C_b) * scale
    for i in range(0, 21, 7):
        click.echo("  " + "  ".join(f"{NAMES_21[j]:>4} {t21[j]:8.4g}/{b21[j]:<8.4g}" for j in range(i, i + 7)))
    if plot is not None:
        click.echo(f"wrote {plot}")
