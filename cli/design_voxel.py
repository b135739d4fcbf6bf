"""The voxel branch of ``graded design`` (``--family voxel``): generated free-form cubic cells."""

from __future__ import annotations

import click
import numpy as np

from graded.validation import fail

from .options import ProgressBar, echo_json

__all__ = ["voxel_target", "design_voxel_cli"]

NAMES = ("C11", "C12", "C44")


def voxel_target(target: tuple[str, ...], row: str | None, units: str, E: float | None):
    """The cubic target (3,) / E_s from TARGET, its label and the share of it no cubic cell has.

    TARGET is three numbers (C11 C12 C44) or anything :func:`cli.design.read_target` reads (21
    constants, a 6x6 matrix, a CSV row), which is projected onto the nearest cubic stiffness.
    """
    from graded.voxelcell import cubic_projection

    from .design import read_target

    parts = [p for a in target for p in a.replace(",", " ").split()]
    if row is None and len(parts) == 3:
        try:
            C3, label, residual = np.array([float(p) for p in parts]), "command line", 0.0
        except ValueError:
            fail("TARGET", f"{parts!r} are not all numbers", "give C11 C12 C44")
    else:
        values, label = read_target(target, row)
        from graded.elastic import from_21

        m = values if values.shape == (6, 6) else from_21(values) if values.size == 21 else None
        if m is None:
            fail("TARGET", f"has {values.size} numbers", "give C11 C12 C44, 21 constants or a 6x6 matrix")
        C3, residual = cubic_projection(m)
    if units == "GPa":
        C3 = C3 / E
    return C3, label, residual


def design_voxel_cli(target, row, units, E, volume_fraction, poisson, goal_weight, draws, top, no_verify, seed,
                     weights, no_progress, as_json) -> None:
    """Generate voxel cells for TARGET, print the table (or the JSON payload)."""
    import torch

    from graded.inverse.voxelcell.design import design_voxel, poisson_goal
    from graded.inverse.voxelcell.model import load_voxel_model

    torch.set_num_threads(2)
    C3, label, residual = voxel_target(target, row, units, E)
    model = load_voxel_model(weights)
    goal = None
    if poisson is not None:
        rho_goal = volume_fraction if volume_fraction is not None else float(np.mean(model.config.rho_range))
        goal = poisson_goal(model, poisson, rho_goal)
    with ProgressBar("voxel design", enabled=not no_progress) as bar:
        bar(0, 1, f"generating {draws} cells")
        d = design_voxel(model, C3, volume_fraction, n_samples=draws, n_verify=top, verify=not no_verify,
                         goal=goal, goal_weight=goal_weight if goal is not None else 0.0, seed=seed)
        bar(1, 1, "done")
    scale = E if units == "GPa" else 1.0
    unit = "GPa" if units == "GPa" else "C/E_s"
    rows = []
    for k, idx in enumerate(d.verified):
        rows.append({"rank": k, "cell": int(idx), "volume_fraction": float(d.fe[k, 3]),
                     "C_fe": dict(zip(NAMES, (d.fe[k, :3] * scale).tolist())),
                     "C_pred": dict(zip(NAMES, (d.predicted[idx, :3] * scale).tolist())),
                     "paper_error": float(d.paper_error[k]), "relative_error": float(d.relative_error[k]),
                     "poisson_ratio_fe": float(d.fe[k, 1] / (d.fe[k, 0] + d.fe[k, 1]))})
    if as_json:
        echo_json({"target": {"label": label, "units": units, "E_GPa": E if units == "GPa" else None,
                              "C": dict(zip(NAMES, (C3 * scale).tolist())), "volume_fraction": volume_fraction,
                              "non_cubic": residual},
                   "settings": {"family": "voxel", "draws": draws, "top": top, "verify": not no_verify, "seed": seed,
                                "poisson": poisson, "goal_weight": goal_weight},
                   "accepted": len(d.solids), "rejected": list(d.rejected), "seconds": d.seconds,
                   "designs": rows, "best": d.best if rows else None})
        return
    click.echo(f"target {label} ({unit}): C11 {C3[0] * scale:.4g}, C12 {C3[1] * scale:.4g}, C44 {C3[2] * scale:.4g}"
               + (f", volume fraction {volume_fraction:g}" if volume_fraction is not None else "")
               + (f"; non-cubic part of the target {100 * residual:.1f} % (no cubic cell has it)" if residual else ""))
    click.echo(f"{len(d.solids)} of {d.n_drawn} generated cells connected and printable; "
               f"generation {d.seconds['sample'] + d.seconds['decode']:.2f} s, FE {d.seconds['fe']:.1f} s")
    if not rows:
        pred = d.predicted[0]
        click.echo(f"regressor's best (not verified): C11 {pred[0] * scale:.4g}, C12 {pred[1] * scale:.4g}, "
                   f"C44 {pred[2] * scale:.4g}, volume fraction {pred[3]:.3f}")
        return
    head = f"{'#':>2} {'V':>6} {'C11':>9} {'C12':>9} {'C44':>9} {'nu':>6} {'Eq. 4':>7} {'rel. F':>7}"
    click.echo(head)
    click.echo("-" * len(head))
    for r in rows:
        c = r["C_fe"]
        click.echo(f"{r['rank'] + 1:>2} {r['volume_fraction']:6.3f} {c['C11']:9.4g} {c['C12']:9.4g} {c['C44']:9.4g} "
                   f"{r['poisson_ratio_fe']:6.3f} {100 * r['paper_error']:6.2f}% {100 * r['relative_error']:6.2f}%"
                   + ("  <- kept" if r["rank"] == d.best else ""))
    click.echo("Eq. 4: the paper's error (mean over C11, C12, C44 of the error over the data's range); "
               "rel. F: relative Frobenius error of the stiffness matrix; by FE")
