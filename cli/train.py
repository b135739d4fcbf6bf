"""``graded train forward|inverse``: train the networks on an FE dataset."""

from __future__ import annotations

import json
from pathlib import Path

import click

from graded.validation import fail

from .options import ProgressBar, echo_json, handle_errors, json_option

__all__ = ["train"]


def _out(out: str | None, kind: str, force: bool, weights_dir: Path | None = None) -> Path:
    """The weights NAME to write; refuses, before any training, to replace existing weights
    -- the shipped ones (``weights_dir / kind``, the truss models' folder by default) -- without
    --force."""
    if weights_dir is None:
        from graded.inverse.weights import WEIGHTS_DIR as weights_dir

    shipped_stem = weights_dir / kind
    stem = Path(out) if out is not None else shipped_stem
    if stem.suffix in (".safetensors", ".json"):
        stem = stem.with_suffix("")
    existing = [p for p in (stem.with_suffix(".safetensors"), stem.with_suffix(".json")) if p.exists()]
    if existing and not force:
        shipped = stem.resolve() == shipped_stem.resolve()
        fail("--out", f"{existing[0]} exists" + (" (the shipped weights)" if shipped else ""),
             "give another --out NAME, or --force to replace it")
    return stem


def _widths(text: str) -> tuple[int, ...]:
    try:
        w = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a comma-separated list of integers") from None
    if not w or any(v < 1 for v in w):
        raise click.BadParameter(f"{text!r}: give positive widths, e.g. 512,512,512")
    return w


def _threads(n: int | None) -> None:
    import torch

    if n:
        torch.set_num_threads(n)


@click.group()
def train() -> None:
    """Train the forward model (F1, F2) or the inverse model (G1, G2)."""


@train.command("forward")
@click.argument("dataset_path", metavar="DATASET", type=click.Path(exists=True))
@click.option("--out", default=None, help="Output NAME (writes NAME.safetensors + NAME.json) "
                                          "[default: the shipped inverse/weights/forward, only with --force].")
@click.option("--force", is_flag=True, help="Replace the weights at --out if they exist.")
@click.option("--f1-widths", default="256,256,256", show_default=True, help="Hidden widths of F1.")
@click.option("--f2-widths", default="1024,1024,1024", show_default=True, help="Hidden widths of F2.")
@click.option("--epochs", nargs=2, type=int, default=(60, 60), show_default=True, help="Max epochs of F1 and F2.")
@click.option("--batch-size", type=int, default=1024, show_default=True)
@click.option("--lr", type=float, default=2e-3, show_default=True, help="Initial Adam learning rate.")
@click.option("--patience", type=int, default=4, show_default=True, help="Plateau patience (epochs).")
@click.option("--time-limit", type=float, default=None, help="Wall minutes per sub-network.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--no-augment", is_flag=True, help="No cube-rotation augmentation of F2.")
@click.option("--threads", type=int, default=2, show_default=True, help="torch threads.")
@click.option("--no-progress", is_flag=True)
@json_option
@handle_errors
def forward(dataset_path, out, force, f1_widths, f2_widths, epochs, batch_size, lr, patience, time_limit, seed,
            no_augment, threads, no_progress, as_json) -> None:
    """Train F1 and F2 on the FE dataset DATASET (a directory written by `graded dataset`)."""
    from graded.inverse.dataset import load_dataset
    from graded.inverse.train import train_forward
    from graded.inverse.weights import save_weights

    stem = _out(out, "forward", force)
    _threads(threads)
    ds = load_dataset(dataset_path)
    limit = None if time_limit is None else 60.0 * time_limit
    with ProgressBar("training F1, F2", enabled=not no_progress) as bar:
        model, hist = train_forward(ds, f1_widths=_widths(f1_widths), f2_widths=_widths(f2_widths),
                                    epochs=tuple(epochs), batch_size=batch_size, lr=lr, patience=patience, seed=seed,
                                    augment=not no_augment, time_limit=limit, progress=bar)
    info = {"dataset": {"path": str(dataset_path), "n": len(ds), "seed": ds.meta.get("seed")},
            "seed": seed, "history": {k: h.to_dict() for k, h in hist.items()}}
    st, js = save_weights(model, stem, kind="forward", config=model.config.to_dict(), info=info)
    result = {"weights": str(st), "sidecar": str(js),
              **{f"{k}_seconds": round(h.seconds, 1) for k, h in hist.items()},
              **{f"{k}_epochs": h.epochs for k, h in hist.items()},
              **{f"{k}_val_loss": min(h.val_loss) for k, h in hist.items()}}
    if as_json:
        echo_json(result)
    else:
        click.echo(json.dumps(result, indent=1))


@train.command("inverse")
@click.argument("dataset_path", metavar="DATASET", type=click.Path(exists=True))
@click.option("--forward", "forward_path", default=None, help="Forward model NAME [default: shipped].")
@click.option("--out", default=None,
              help="Output NAME [default: the shipped inverse/weights/inverse, only with --force].")
@click.option("--force", is_flag=True, help="Replace the weights at --out if they exist.")
@click.option("--g1-widths", default="512,512,512", show_default=True)
@click.option("--g2-widths", default="512,512,512", show_default=True)
@click.option("--epochs", type=int, default=60, show_default=True)
@click.option("--batch-size", type=int, default=1024, show_default=True)
@click.option("--lr", type=float, default=1e-3, show_default=True)
@click.option("--patience", type=int, default=4, show_default=True)
@click.option("--tau", type=float, default=1.0, show_default=True, help="Gumbel-softmax temperature.")
@click.option("--warmup-epochs", type=int, default=2, show_default=True,
              help="Epochs with the supervised warm-start term (0 to disable).")
@click.option("--size-weight", type=float, default=2.0, show_default=True,
              help="Exponent of the per-target weight (s / mean s); 0 weighs targets equally, 1 favours stiff "
                   "targets, 2 with --metric r2 makes the loss the summed 1 - R^2.")
@click.option("--posterior-weight", type=float, default=1.0, show_default=True,
              help="Weight of the data-posterior term (G1 learns which topologies produced each target; "
                   "0 = the reconstruction loss alone).")
@click.option("--heads", "n_heads", type=click.IntRange(1, 64), default=None,
              help="Geometry heads of G2 (multiple-choice loss); a one-head --init model is widened "
                   "[default: the --init model's, else 4].")
@click.option("--head-eps", type=click.FloatRange(0.0, 1.0), default=0.05, show_default=True,
              help="Weight share of the losing heads in the multiple-choice loss.")
@click.option("--metric", type=click.Choice(["r2", "mandel"]), default="r2", show_default=True,
              help="Reconstruction error: the Mandel norm, or the 21 constants weighted by 1/variance in the "
                   "target's frame (with --size-weight 2 the sum of 1 - R^2 over the components).")
@click.option("--init", "init_path", default=None, help="Continue training this inverse model NAME.")
@click.option("--no-canonical", is_flag=True, help="Do not rotate targets into their canonical frame "
                                                   "(then random target rotations are used as augmentation).")
@click.option("--time-limit", type=float, default=None, help="Wall minutes.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--threads", type=int, default=2, show_default=True)
@click.option("--no-progress", is_flag=True)
@json_option
@handle_errors
def inverse(dataset_path, forward_path, out, force, g1_widths, g2_widths, epochs, batch_size, lr, patience, tau,
            warmup_epochs, size_weight, posterior_weight, n_heads, head_eps, metric, init_path,
            no_canonical, time_limit, seed, threads, no_progress, as_json) -> None:
    """Train G1 and G2 jointly through the frozen forward model on the targets of DATASET."""
    import numpy as np

    from graded.elastic.metrics import component_weights
    from graded.inverse.dataset import load_dataset
    from graded.inverse.train import train_inverse
    from graded.inverse.weights import WEIGHTS_DIR, load_forward, load_inverse, read_sidecar, save_weights

    stem = _out(out, "inverse", force)
    _threads(threads)
    ds = load_dataset(dataset_path)
    fwd = load_forward(forward_path)
    fside = read_sidecar(forward_path or WEIGHTS_DIR / "forward", kind="forward")
    limit = None if time_limit is None else 60.0 * time_limit
    init = load_inverse(init_path) if init_path else None
    with ProgressBar("training G1+G2", enabled=not no_progress) as bar:
        model, hist = train_inverse(ds, fwd, model=init, n_heads=n_heads, head_eps=head_eps, metric=metric,
                                    g1_widths=_widths(g1_widths), g2_widths=_widths(g2_widths),
                                    warmup_epochs=warmup_epochs, size_weight=size_weight,
                                    posterior_weight=posterior_weight, canonical=not no_canonical, epochs=epochs,
                                    batch_size=batch_size, lr=lr, patience=patience, tau=tau, seed=seed,
                                    time_limit=limit, progress=bar)
    info = {"dataset": {"path": str(dataset_path), "n": len(ds), "seed": ds.meta.get("seed")},
            "forward_sha256": fside["sha256"], "seed": seed, "tau": tau, "posterior_weight": posterior_weight,
            "size_weight": size_weight, "n_heads": model.config.n_heads, "head_eps": head_eps, "metric": metric,
            "init": None if init is None else {"path": str(init_path), "sha256": init.sha256,
                                                "n_heads": init.config.n_heads},
            "lr": lr, "history": hist.to_dict(),
            # the evaluation's "r2" selection weighs the constants as the training targets vary
            "component_weights": [float(w) for w in component_weights(np.asarray(ds.C))]}
    st, js = save_weights(model, stem, kind="inverse", config=model.config.to_dict(), info=info)
    result = {"weights": str(st), "sidecar": str(js), "seconds": round(hist.seconds, 1), "epochs": hist.epochs,
              "val_loss": min(hist.val_loss)}
    if as_json:
        echo_json(result)
    else:
        click.echo(json.dumps(result, indent=1))


@train.command("spinodoid")
@click.argument("dataset_path", metavar="DATASET", type=click.Path(exists=True))
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Output directory (writes forward.* and inverse.*) [default: the shipped "
                   "inverse/spinodoid/weights, only with --force].")
@click.option("--force", is_flag=True, help="Replace the weights in --out if they exist.")
@click.option("--widths", default="128,128,128,128", show_default=True, help="Hidden widths of both networks.")
@click.option("--epochs", nargs=2, type=int, default=(1500, 400), show_default=True,
              help="Epochs of the forward and of the inverse model.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--threads", type=int, default=2, show_default=True, help="torch threads.")
@click.option("--no-progress", is_flag=True)
@json_option
@handle_errors
def spinodoid(dataset_path, out, force, widths, epochs, seed, threads, no_progress, as_json) -> None:
    """Train the spinodoid forward model and the tandem inverse model through it on DATASET
    (written by `graded dataset --family spinodoid`)."""
    from graded.inverse.spinodoid.dataset import load_spinodoid_dataset
    from graded.inverse.spinodoid.design import WEIGHTS_DIR
    from graded.inverse.spinodoid.train import train_spinodoid_forward, train_spinodoid_inverse
    from graded.inverse.weights import save_weights

    folder = Path(out) if out is not None else WEIGHTS_DIR
    stems = {k: folder / k for k in ("forward", "inverse")}
    existing = [p for s in stems.values() for p in (s.with_suffix(".safetensors"), s.with_suffix(".json"))
                if p.exists()]
    if existing and not force:
        shipped = folder.resolve() == WEIGHTS_DIR.resolve()
        fail("--out", f"{existing[0]} exists" + (" (the shipped weights)" if shipped else ""),
             "give another --out DIR, or --force to replace it")
    _threads(threads)
    ds = load_spinodoid_dataset(dataset_path)
    w = _widths(widths)
    with ProgressBar("training spinodoid forward", enabled=not no_progress) as bar:
        fwd, fh = train_spinodoid_forward(ds, widths=w, epochs=epochs[0], seed=seed, progress=bar)
    with ProgressBar("training spinodoid inverse", enabled=not no_progress) as bar:
        inv, ih = train_spinodoid_inverse(fwd, ds, widths=w, epochs=epochs[1], seed=seed, progress=bar)
    folder.mkdir(parents=True, exist_ok=True)
    data_info = {"path": str(dataset_path), "n": len(ds), "seed": ds.meta.get("seed")}
    st_f, _ = save_weights(fwd, stems["forward"], kind="spinodoid-forward", config=fwd.config.to_dict(),
                           info={"dataset": data_info, "seed": seed, "epochs": epochs[0], "seconds": fh.seconds,
                                 "val_loss": min(fh.val)})
    st_i, _ = save_weights(inv, stems["inverse"], kind="spinodoid-inverse", config=inv.config.to_dict(),
                           info={"dataset": data_info, "seed": seed, "epochs": epochs[1], "seconds": ih.seconds,
                                 "val_loss": min(ih.val), "forward_sha256": _sha(st_f)})
    result = {"forward": str(st_f), "inverse": str(st_i), "forward_seconds": round(fh.seconds, 1),
              "inverse_seconds": round(ih.seconds, 1), "forward_val_loss": min(fh.val),
              "inverse_val_loss": min(ih.val)}
    if as_json:
        echo_json(result)
    else:
        click.echo(json.dumps(result, indent=1))


def _sha(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


@train.command("voxel")
@click.argument("dataset_path", metavar="DATASET", type=click.Path(exists=True))
@click.option("--out", default=None,
              help="Output NAME (writes NAME.safetensors + NAME.json) [default: the shipped "
                   "inverse/voxelcell/weights/model, only with --force].")
@click.option("--force", is_flag=True, help="Replace the weights at --out if they exist.")
@click.option("--dim", type=int, default=64, show_default=True, help="Components of the cell code.")
@click.option("--epochs", nargs=2, type=int, default=(40, 600), show_default=True,
              help="Epochs of the regressor and of the denoiser.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--threads", type=int, default=2, show_default=True, help="torch threads.")
@click.option("--no-progress", is_flag=True)
@json_option
@handle_errors
def voxel(dataset_path, out, force, dim, epochs, seed, threads, no_progress, as_json) -> None:
    """Fit the cell code, the property regressor and the conditional diffusion model of the voxel
    family on DATASET (written by `graded dataset --family voxel`)."""
    from graded.inverse.voxelcell.dataset import load_voxel_dataset
    from graded.inverse.voxelcell.model import WEIGHTS_DIR
    from graded.inverse.voxelcell.train import train_voxel_model
    from graded.inverse.weights import save_weights

    stem = _out(out, "model", force, WEIGHTS_DIR)
    _threads(threads)
    ds = load_voxel_dataset(dataset_path)
    with ProgressBar("training voxel model", enabled=not no_progress) as bar:
        model, hist = train_voxel_model(ds, dim=dim, regressor_epochs=epochs[0], denoiser_epochs=epochs[1],
                                        seed=seed, progress=bar)
    stem.parent.mkdir(parents=True, exist_ok=True)
    info = {"dataset": {"path": str(dataset_path), "n": len(ds), "seed": ds.meta.get("seed")}, "seed": seed,
            "epochs": list(epochs), "history": hist.to_dict()}
    st, _ = save_weights(model, stem, kind="voxel", config=model.config.to_dict(), info=info)
    result = {"weights": str(st), "code_seconds": round(hist.code_seconds, 1),
              "regressor_seconds": round(hist.regressor_seconds, 1),
              "denoiser_seconds": round(hist.denoiser_seconds, 1),
              "regressor_val_loss": min(hist.regressor_val), "denoiser_val_loss": min(hist.denoiser_val)}
    if as_json:
        echo_json(result)
    else:
        click.echo(json.dumps(result, indent=1))
