"""``graded evaluate forward|inverse``: accuracy against FE on a test set."""

from __future__ import annotations

import click

from .options import ProgressBar, echo_json, handle_errors, json_option

__all__ = ["evaluate"]


@click.group()
def evaluate() -> None:
    """R^2 tables and parity plots of the networks against FE."""


@evaluate.command("forward")
@click.argument("dataset_path", metavar="TESTSET", type=click.Path(exists=True))
@click.option("--weights", default=None, help="Forward model NAME [default: shipped].")
@click.option("--plots", type=click.Path(file_okay=False), default=None, help="Directory for parity plots (PNG).")
@click.option("--threads", type=int, default=2, show_default=True)
@json_option
@handle_errors
def forward(dataset_path, weights, plots, threads, as_json) -> None:
    """R^2 per component of C (21), C_hat (21) and C_ort (9) of the forward model vs FE labels of TESTSET."""
    import torch

    from graded.inverse.dataset import load_dataset
    from graded.inverse.evaluate import evaluate_forward
    from graded.inverse.weights import load_forward

    torch.set_num_threads(threads)
    rep = evaluate_forward(load_forward(weights), load_dataset(dataset_path), plot_dir=plots)
    if as_json:
        echo_json(rep.to_dict())
    else:
        click.echo(rep.table())
        for p in rep.plots:
            click.echo(f"wrote {p}")


@evaluate.command("inverse")
@click.argument("dataset_path", metavar="[TESTSET]", type=click.Path(exists=True), required=False)
@click.option("--inverse", "inverse_path", default=None, help="Inverse model NAME [default: shipped].")
@click.option("--forward", "forward_path", default=None, help="Forward model NAME [default: shipped].")
@click.option("--targets", type=int, default=1000, show_default=True, help="Number of targets (the first ones).")
@click.option("--draws", type=int, default=100, show_default=True, help="Draws per target for the best-of figure.")
@click.option("--top-k", type=int, default=3, show_default=True,
              help="Best draws (distinct topologies first, by --rank-by) verified by FE.")
@click.option("--tau", type=float, default=1.0, show_default=True, help="Temperature of the single draw.")
@click.option("--tau-best", type=float, default=6.0, show_default=True,
              help="Temperature of the --draws draws of the best-of figure (larger explores more topologies).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--rank-by", type=click.Choice(["r2", "mandel", "nmse"]), default="r2", show_default=True,
              help="Ranking of the draws and choice of the best verified one: the target's share of the summed "
                   "1 - R^2 over the 21 constants (what the R^2 figure measures), the relative Mandel-norm error "
                   "(what `graded design` ranks by), or NMSE (main Eq. 8).")
@click.option("--refine", is_flag=True,
              help="Refine the verified draws as `graded design` does (surrogate, then FE polish).")
@click.option("--refine-steps", type=int, default=0, show_default=True,
              help="Also report the single and best-of draws after this many gradient steps through the forward "
                   "model (no FE in the loop), verified by FE; 0: the network alone.")
@click.option("--heads", type=click.Choice(["forward", "posterior"]), default="forward", show_default=True,
              help="Geometry head of each draw: the one the forward model puts nearest the target, or one drawn "
                   "from G2's head posterior.")
@click.option("--library", "n_library", type=int, default=0, show_default=True,
              help="Also verify this many nearest neighbours from the design library (reported separately).")
@click.option("--bone-targets", type=int, default=10, show_default=True,
              help="Also run `graded design` (its defaults, FE-verified) on this many targets of the shipped bone-like "
                   "set (Zysset-Curnier fabric-elasticity tensors; 0: skip). Each takes seconds to a minute.")
@click.option("--bone-draws", type=int, default=10000, show_default=True,
              help="Candidates drawn per bone-like target (graded design --draws).")
@click.option("--plots", type=click.Path(file_okay=False), default=None, help="Directory for parity plots (PNG).")
@click.option("--threads", type=int, default=2, show_default=True)
@click.option("--no-progress", is_flag=True)
@json_option
@handle_errors
def inverse(dataset_path, inverse_path, forward_path, targets, draws, top_k, tau, tau_best, seed, rank_by, refine,
            refine_steps, n_library, heads, bone_targets, bone_draws, plots, threads, no_progress, as_json) -> None:
    """Inverse-design the targets of TESTSET (default: the shipped FE test set) and of the
    shipped bone-like set, and homogenize the designs by FE.

    Reports R^2 per component for one draw (by FE and by the forward model) and for the
    best of --draws draws (the --top-k best by --rank-by, predicted, verified by FE; the best by FE counts), and the
    median / 90th percentile of the NMSE (main text Eq. 8). Then, for the first --bone-targets bone-like targets,
    the FE-verified relative error of what `graded design` returns (median, p90, max, per target).
    """
    import torch

    from graded.inverse.bone import shipped_bone_targets
    from graded.inverse.dataset import load_dataset, shipped_test_set
    from graded.inverse.evaluate import evaluate_inverse
    from graded.inverse.report import evaluate_design
    from graded.inverse.weights import load_forward, load_inverse

    if bone_targets < 0:
        raise click.BadParameter(f"{bone_targets} is negative (0 skips the bone-like set)", param_hint="--bone-targets")
    torch.set_num_threads(threads)
    inv, fwd = load_inverse(inverse_path), load_forward(forward_path)
    data = load_dataset(dataset_path) if dataset_path is not None else shipped_test_set()
    with ProgressBar("FE verification", enabled=not no_progress) as bar:
        rep = evaluate_inverse(inv, fwd, data,
                               n_targets=targets, n_draws=draws, top_k=top_k, tau=tau, tau_best=tau_best, seed=seed,
                               rank_by=rank_by, refine=refine, refine_steps=refine_steps, n_library=n_library,
                               heads=heads, plot_dir=plots, progress=bar)
    bone = None
    if bone_targets > 0:
        b = shipped_bone_targets()
        with ProgressBar("bone-like targets", enabled=not no_progress) as bar:
            bone = evaluate_design(b.C, names=b.names, n_targets=bone_targets, models=(inv, fwd),
                                   label="bone-like targets (shipped set, Zysset-Curnier)", n_draws=bone_draws,
                                   seed=seed, progress=bar)
    if as_json:
        echo_json(rep.to_dict() | {"bone": None if bone is None else bone.to_dict()})
    else:
        click.echo(rep.table())
        for p in rep.plots:
            click.echo(f"wrote {p}")
        if bone is not None:
            click.echo("")
            click.echo(bone.table())


@evaluate.command("spinodoid")
@click.argument("dataset_path", metavar="[TESTSET]", type=click.Path(exists=True), required=False)
@click.option("--targets", type=int, default=20, show_default=True,
              help="Held-out targets designed and FE-verified (0: forward model only).")
@click.option("--target-kind", type=click.Choice(["cell", "mean"]), default="cell", show_default=True,
              help="cell: one held-out FE cell's constants (with its own realisation scatter); mean: the mean of "
                   "--target-cells fresh FE cells of each held-out design (the design space's expected stiffness).")
@click.option("--target-cells", type=int, default=8, show_default=True, help="FE cells per target with "
              "--target-kind mean.")
@click.option("--realisations", type=int, default=8, show_default=True, help="FE cells per returned design.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--plots", type=click.Path(file_okay=False), default=None, help="Directory for parity plots (PNG).")
@click.option("--threads", type=int, default=2, show_default=True)
@click.option("--no-progress", is_flag=True)
@json_option
@handle_errors
def spinodoid(dataset_path, targets, target_kind, target_cells, realisations, seed, plots, threads, no_progress,
              as_json) -> None:
    """R^2 of the spinodoid forward model and FE-verified inverse design on TESTSET
    [default: the shipped spinodoid test set]."""
    import torch

    from graded.inverse.spinodoid.dataset import load_spinodoid_dataset, shipped_spinodoid_test_set
    from graded.inverse.spinodoid.design import default_spinodoid_models
    from graded.inverse.spinodoid.evaluate import evaluate_spinodoid_forward, evaluate_spinodoid_inverse

    torch.set_num_threads(threads)
    data = load_spinodoid_dataset(dataset_path) if dataset_path else shipped_spinodoid_test_set()
    inv, fwd = default_spinodoid_models()
    rep = evaluate_spinodoid_forward(fwd, data, plot_dir=plots)
    out = {"forward": rep.to_dict()}
    if not as_json:
        click.echo(rep.table())
    if targets > 0:
        with ProgressBar("inverse design", enabled=not no_progress) as bar:
            irep = evaluate_spinodoid_inverse(data, n_targets=targets, targets=target_kind, target_cells=target_cells,
                                              realisations=realisations, seed=seed, models=(inv, fwd), plot_dir=plots,
                                              progress=bar)
        out["inverse"] = irep.to_dict()
        if not as_json:
            click.echo("\n" + irep.table())
    if as_json:
        echo_json(out)
    else:
        for p in out["forward"]["plots"] + out.get("inverse", {}).get("plots", []):
            click.echo(f"wrote {p}")
