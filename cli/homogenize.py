"""``graded homogenize``: FE stiffness of one unit cell."""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np

from .options import echo_json, handle_errors, json_option

__all__ = ["homogenize"]


def _triple(ctx, param, value):
    if value is None:
        return None
    try:
        vals = [float(v) for v in value.replace(",", " ").split()]
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a list of numbers", param=param) from None
    if len(vals) == 1 and param.name in ("U", "V"):
        vals = vals * 3
    if len(vals) != 3:
        raise click.BadParameter(f"expected 3 numbers, got {len(vals)}", param=param)
    return vals


@click.command()
@click.argument("cell")
@click.option("--rho", type=float, help="Relative density (SI Table S1: 0.002 to 0.1).")
@click.option("--U", "U", callback=_triple, help="Stretches U1,U2,U3 (or one value for all) [1].")
@click.option("--V", "V", callback=_triple, help="Stretches V1,V2,V3 (or one value) [1].")
@click.option("--R1", "R1", callback=_triple, help="Rotation R_I as axis-angle theta,e1,e2 [0,0,0].")
@click.option("--R2", "R2", callback=_triple, help="Rotation R_II as axis-angle theta,e1,e2 [0,0,0].")
@click.option("--cell-size", type=float, default=1.0, show_default=True,
              help="Edge of the reference cube in mm (sets the strut diameter).")
@click.option("--E", "E", type=float, default=None, help="Base material Young's modulus in GPa: print C in GPa.")
@click.option("--nu", type=float, default=0.3, show_default=True, help="Base material Poisson's ratio.")
@click.option("--no-strict", is_flag=True, help="Allow parameters outside SI Table S1.")
@click.option("--plot", "plot", type=click.Path(dir_okay=False), help="Write the elastic surface E(d) as PNG.")
@json_option
@handle_errors
def homogenize(cell, rho, U, V, R1, R2, cell_size, E, nu, no_strict, plot, as_json):
    """Homogenized stiffness of CELL by periodic Timoshenko-beam FE.

    CELL is a topology string such as 2x1+1x3+2x5 (tessellation x topology id, three
    parts) or a YAML/JSON file with topology, rho, U, V, R1, R2. Options override the
    file's values. C is printed in Voigt order 11,22,33,23,13,12, normalised by the base
    material's E unless --E is given.
    """
    from graded.elastic import directional_modulus
    from graded.tol import TOL
    from graded.unitcell import UnitCell
    from graded.validation import check_positive, check_range

    strict = not no_strict
    if Path(cell).suffix.lower() in (".yaml", ".yml", ".json"):
        from graded.cellfile import load_cell

        base = load_cell(cell, strict=strict).to_dict()
    else:
        base = {"topology": cell}
    for key, val in (("rho", rho), ("U", U), ("V", V), ("R1", R1), ("R2", R2)):
        if val is not None:
            base[key] = val
    if "rho" not in base:
        raise click.UsageError("rho: missing; pass --rho (0.002 to 0.1) or put rho in the cell file")
    check_positive("--cell-size", cell_size, hint="the cube edge in mm must be > 0")
    check_range("--nu", nu, -1.0, 0.5, inclusive=False, hint="Poisson's ratio of an isotropic solid lies in (-1, 0.5)")
    uc = UnitCell.from_dict(base, strict=strict)
    C = uc.stiffness(nu=nu)
    C[np.abs(C) < TOL.stiffness_roundoff * np.abs(C).max()] = 0.0  # round-off, not stiffness
    scale = 1.0 if E is None else float(check_positive("--E", E, hint="Young's modulus in GPa"))
    unit = "normalised by E_s" if E is None else "GPa"
    d = uc.diameter(cell_size)
    E_axes = directional_modulus(C * scale, np.eye(3))
    if plot:
        from graded.plot import plot_elastic_surfaces

        plot_elastic_surfaces({uc.topology_string: C * scale}, plot, title=f"{uc.topology_string}, rho = {uc.rho:.4g}",
                              unit="E_s" if E is None else "GPa")
    if as_json:
        echo_json({
            "cell": uc.to_dict(),
            "C": (C * scale).tolist(),
            "unit": unit,
            "rho": uc.rho,
            "diameter_mm": d,
            "cell_size_mm": cell_size,
            "E_axes": E_axes.tolist(),
            "plot": plot,
        })
        return
    click.echo(f"cell      {uc.topology_string}   rho = {uc.rho:.6g}")
    click.echo(f"diameter  {d:.6g} mm (cube edge {cell_size:g} mm)")
    click.echo(f"C ({unit}), Voigt 11,22,33,23,13,12:")
    for row in C * scale:
        click.echo("  " + " ".join(f"{v: .5e}" for v in row))
    click.echo("E(e1), E(e2), E(e3): " + ", ".join(f"{v:.5e}" for v in E_axes))
    if plot:
        click.echo(f"elastic surface written to {plot}")
