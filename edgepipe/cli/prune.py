"""``edgepipe prune``: magnitude pruning of a classifier, fine-tuned on its data,
stripped, exported to TFLite float and int8, with the per-layer sparsity table and
file/gzip sizes next to the unpruned model's. ``--structure channel`` removes
whole filters instead (a narrower model): the table then lists channels, with
MACs and one-thread TFLite latency before and after. ``--qat-steps`` makes the
int8 export quantization-aware (PQAT after magnitude pruning). The document
detector (HED) goes through ``cli.prune_hed``: its own loss and documents."""
import functools
import sys
from pathlib import Path

import numpy as np
from rich.table import Table

from edgepipe.base.errors import EdgePipeError
from edgepipe.cli.args import add_trust, fraction, int_range, positive
from edgepipe.quantize.prune import STRUCTURES


def _training_data(args, model):
    from edgepipe.train.data import classes
    shape = tuple(model.input_shape[1:])
    if len(shape) != 3 or shape[-1] not in (1, 3) or None in shape:
        raise EdgePipeError(f"prune fine-tunes a classifier on images (H, W, 3 or 1 channels); the model takes "
                            f"{shape}")
    x, y, names = classes(_data_cfg(args), "train", max(shape[:2]))
    if model.output_shape[-1] != len(names):
        raise EdgePipeError(f"the model has {model.output_shape[-1]} outputs but the data has {len(names)} classes")
    _same_classes(args.model, names)
    _say_assumed_split(args)
    return model_inputs(model, _shaped(x, shape)), y, list(names)


def _same_classes(model, names: list[str]) -> None:
    """The data's classes are the ones the model's run card names, in its order: a folder of
    other classes (as many) would fine-tune class 0 of one onto class 0 of the other."""
    from edgepipe.pipeline.cards import run_card_of
    labels = (run_card_of(str(model)) or {}).get("labels")
    if isinstance(labels, list) and labels and labels != list(names):
        shown = lambda v: ", ".join(map(str, v[:6])) + (", ..." if len(v) > 6 else "")  # noqa: E731
        raise EdgePipeError(f"the model's run card names its classes {shown(labels)}; the data's are "
                            f"{shown(list(names))}: fine-tune on the data it was trained on")


def _data_cfg(args):
    """The classifier's data, split as its training split it: with ``--split-seed``, else the
    ``data.train_seed`` its run's card records (another seed would fine-tune on the model's
    held-out images and score it on ones it trained on), else 0, said in a note."""
    from pydantic import ValidationError
    from edgepipe.pipeline.recipe import DataCfg
    kind = "image_folder" if args.data_folder else "digits"
    seed = args.split_seed if args.split_seed is not None else _recorded_seed(str(args.model), kind) or 0
    try:
        return DataCfg(kind=kind, path=args.data_folder or None, train_seed=seed)
    except ValidationError as e:
        raise EdgePipeError(f"--data-folder: {e.errors()[0]['msg'].removeprefix('Value error, ')}") from None


@functools.lru_cache(maxsize=8)
def _recorded_seed(model: str, kind: str) -> int | None:
    """The ``data.train_seed`` the model's run card records for data of ``kind``, else None."""
    from edgepipe.pipeline.cards import run_card_of
    training = (run_card_of(model) or {}).get("training")
    data = training.get("data") if isinstance(training, dict) else None
    seed = data.get("train_seed") if isinstance(data, dict) and data.get("kind") == kind else None
    return seed if isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0 else None


def _say_assumed_split(args):
    """Said once the data is known to fit the model: a note before a one-line error is noise."""
    kind = "image_folder" if args.data_folder else "digits"
    if args.split_seed is None and _recorded_seed(str(args.model), kind) is None:
        print(f"note: no run card beside {args.model} records the split it trained on; the data is split with "
              "seed 0 (pass --split-seed, the recipe's data.train_seed, if it trained with another)", file=sys.stderr)


def _shaped(x: np.ndarray, shape: tuple) -> np.ndarray:
    """Square RGB images in [0, 1] at the model's own height, width and channels (grayscale: luma)."""
    import cv2
    h, w, channels = shape
    if x.shape[1:3] != (h, w):
        x = np.stack([cv2.resize(im, (w, h), interpolation=cv2.INTER_AREA) for im in x])
    from edgepipe.cli.inputs import luma
    return luma(x).astype(np.float32) if channels == 1 else x


def model_inputs(model, x):
    """Images in [0, 1] as the model takes them: raw pixels for one with its own Rescaling, and so on."""
    from edgepipe.convert.inputspec import DEFAULT, from_model
    return (from_model(model) or DEFAULT).from_unit(x)


EXPORTS = (("float32", ".tflite"), ("int8", ".int8.tflite"))  # written beside --out, each with its model card


def _exports(model, calib, stem: Path, int8_source=None, labels=None) -> dict:
    """TFLite float32 and int8, each with its metadata and a model card that states the model's
    real input and, for a classifier, the class names it fine-tuned on (``labels``)."""
    from edgepipe.convert import tflite
    from edgepipe.convert.fold import fold_batchnorm
    from edgepipe.convert.inputspec import DEFAULT, from_model
    from edgepipe.pipeline.cards import classifier_meta, converted_card, generic_meta
    from edgepipe.pipeline.report import write_json
    from edgepipe.quantize.prune import file_sizes
    folded = fold_batchnorm(model)
    spec = from_model(model) or DEFAULT
    meta = (classifier_meta(model, labels, stem.name.split(".")[0], spec=spec) if labels
            else generic_meta(model, stem.name.split(".")[0], spec=spec))
    out = {}
    for mode, suffix in EXPORTS:
        source = int8_source if mode == "int8" and int8_source is not None else folded
        card = stem.with_name(stem.name + suffix + ".model_card.json")
        card.unlink(missing_ok=True)  # edgepipe's own (checked): an interrupt leaves no old card by a new file
        path = tflite.write(source, stem.with_name(stem.name + suffix), mode, calib if mode == "int8" else None,
                            meta=meta)
        write_json(card, converted_card(meta, "tflite", mode, path))
        out[mode] = file_sizes(path) | {"path": str(path)}
    return out


def cmd_prune(args):
    from edgepipe.base.backend import keras
    from edgepipe.base.modelio import load_keras, save_keras
    from edgepipe.pipeline.report import wide_console
    from edgepipe.quantize import prune
    console = wide_console()
    prune.check_sparsity(args.sparsity, args.structure)
    from edgepipe.base.atomic import check_target
    if Path(args.out).suffix != ".keras":
        raise EdgePipeError(f"--out must be a .keras file, got {args.out}")
    inputs = [args.model, args.data_folder]
    out = check_target(args.out, inputs=inputs)
    for stem in (out.stem, out.stem + ".unpruned"):  # the TFLite exports and their cards, written beside it
        for _, suffix in EXPORTS:
            for name in (stem + suffix, stem + suffix + ".model_card.json"):
                check_target(out.with_name(name), inputs=inputs)
    model = load_keras(args.model, trust=args.trust_model)
    from edgepipe.cli.prune_hed import cmd_prune_hed, is_edge_model
    if is_edge_model(model):
        return cmd_prune_hed(args, model, out, console)
    if len(model.outputs) != 1 or len(model.output_shape) != 2:
        raise EdgePipeError("edgepipe prune fine-tunes classifiers (one (batch, classes) output) and edge "
                            "detectors (one (batch, H, W, 1) edge map)")
    if args.recipe:
        raise EdgePipeError("--recipe sets an edge detector's data and loss; a classifier fine-tunes on "
                            "--data-folder (default: digits)")
    from edgepipe.mobile_models.graph import flatten, is_nested_graph, output_activation
    if any(is_nested_graph(layer) for layer in model.layers):  # a transfer-learning base: prune its convs too
        model = flatten(model)
    x, y, labels = _training_data(args, model)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=output_activation(model) != "softmax")
    if args.structure == "channel":
        return _cmd_channel(args, model, x, y, loss, out, console, labels)
    wrapped = prune.wrap(model, args.sparsity, args.steps, args.structure, args.schedule, args.depthwise)
    with console.status(f"pruning to {args.sparsity:.0%} ({args.structure}) over {args.steps} fine-tuning steps"):
        prune.fine_tune(wrapped, x, y, loss, args.steps, args.batch_size, args.learning_rate)
    pruned = prune.strip(wrapped)
    save_keras(pruned, out)
    qat = _qat(args, pruned, x, y, loss, console, keep_zeros=True)
    rows = prune.sparsity_table(pruned, args.depthwise)
    t = Table(title=f"per-layer sparsity of {out.name} (overall {prune.overall_sparsity(rows):.1%})")
    for col in ("layer", "type", "weights", "zeros", "sparsity"):
        t.add_column(col, justify="left" if col in ("layer", "type") else "right")
    for r in rows:
        t.add_row(r["layer"], r["type"], f"{r['weights']:,}", f"{r['zeros']:,}", f"{r['sparsity']:.1%}")
    console.print(t)
    base = _exports(model, x[:200], out.with_name(out.stem + ".unpruned"), labels=labels)
    mine = _exports(pruned, x[:200], out.with_name(out.stem), qat, labels=labels)
    _print_sizes(console, base, mine)
    acc = _accuracy({"original": model, "pruned": pruned}, args)
    console.print(f"top-1 on the held-out split: {acc['original']:.2%} before, {acc['pruned']:.2%} after pruning")
    return 0


def _cmd_channel(args, model, x, y, loss, out, console, labels=None):
    from edgepipe.mobile_models.profile import profile_model
    from edgepipe.base.modelio import save_keras
    from edgepipe.quantize import channel_prune
    if args.latency_runs < 1:
        raise EdgePipeError(f"--latency-runs must be at least 1, got {args.latency_runs}")
    pruned, rows = channel_prune.prune_channels(model, args.sparsity)
    if not rows:
        raise EdgePipeError("no prunable channels: every conv feeds an add, concat, split or the output")
    untuned = _accuracy({"pruned": pruned}, args)["pruned"]
    with console.status(f"fine-tuning the {args.sparsity:.0%} channel-pruned model for {args.steps} steps"):
        channel_prune.fine_tune(pruned, x, y, loss, args.steps, args.batch_size, args.learning_rate)
    save_keras(pruned, out)
    qat = _qat(args, pruned, x, y, loss, console, keep_zeros=False)
    t = Table(title=f"channels per pruned conv of {out.name} (lowest L1 norm removed)")
    for col in ("layer", "before", "after", "consumer"):
        t.add_column(col, justify="right" if col in ("before", "after") else "left")
    for r in rows:
        t.add_row(r["layer"], str(r["before"]), str(r["after"]), r["consumer"])
    console.print(t)
    before, after = profile_model(model), profile_model(pruned)
    console.print(f"MACs: {before['macs']:,} -> {after['macs']:,} ({after['macs'] / before['macs']:.1%}); "
                  f"params: {before['params']:,} -> {after['params']:,} ({after['params'] / before['params']:.1%})")
    base = _exports(model, x[:200], out.with_name(out.stem + ".unpruned"), labels=labels)
    mine = _exports(pruned, x[:200], out.with_name(out.stem), qat, labels=labels)
    _print_sizes(console, base, mine)
    lat = _latency({"unpruned": base["float32"]["path"], "pruned": mine["float32"]["path"]}, args.latency_runs)
    console.print(f"TFLite float latency, 1 thread, p50 of {args.latency_runs} interleaved runs: "
                  f"{lat['unpruned']:.3f} -> {lat['pruned']:.3f} ms ({lat['pruned'] / lat['unpruned']:.2f}x)")
    acc = _accuracy({"original": model, "pruned": pruned}, args)
    console.print(f"top-1 on the held-out split: {acc['original']:.2%} before, {untuned:.2%} pruned, "
                  f"{acc['pruned']:.2%} after fine-tuning")
    return 0


def _qat(args, pruned, x, y, loss, console, keep_zeros: bool):
    """With ``--qat-steps``: the quantization-aware model the int8 export comes from."""
    if not args.qat_steps:
        return None
    from edgepipe.quantize.stages import quantization_aware
    from edgepipe.train.finetune import array_tuner
    with console.status(f"{'PQAT' if keep_zeros else 'QAT'}: {args.qat_steps} quantization-aware steps"):
        return quantization_aware(pruned, args.qat_steps, args.qat_learning_rate, keep_zeros,
                                  array_tuner(x, y, loss), args.batch_size)


def _latency(paths: dict, runs: int) -> dict:
    """p50 ms per model at one thread, runs interleaved so load on the host hits both alike."""
    import numpy as np

    from edgepipe.evaluate.latency import interleaved
    from edgepipe.evaluate.runners import open_runner
    runners = {k: open_runner(p, threads=1) for k, p in paths.items()}
    batch = np.random.default_rng(0).random((1, *runners["unpruned"].inputs[0].shape[1:]), np.float32)
    stats = interleaved(runners, batch, warmup=max(1, runs // 10), runs=runs)
    return {k: s["p50_ms"] for k, s in stats.items()}


def _print_sizes(console, base, mine):
    for mode in ("float32", "int8"):
        console.print(f"{mode}: {base[mode]['bytes']:,} -> {mine[mode]['bytes']:,} bytes; gzip "
                      f"{base[mode]['gzip_bytes']:,} -> {mine[mode]['gzip_bytes']:,} "
                      f"({mine[mode]['gzip_bytes'] / base['float32']['gzip_bytes']:.1%} of the float model's gzip)")


def _accuracy(models: dict, args) -> dict:
    import numpy as np

    from edgepipe.train.data import classes
    shape = tuple(next(iter(models.values())).input_shape[1:])
    x, y, _ = classes(_data_cfg(args), "test", max(shape[:2]))
    x = _shaped(x, shape)
    return {name: float(np.mean(m.predict(model_inputs(m, x), verbose=0).argmax(-1) == y))
            for name, m in models.items()}


def add_parser(sub):
    p = sub.add_parser("prune", help="magnitude (unstructured, 2:4) or channel pruning with fine-tuning, "
                                     "optionally QAT, for classifiers and the document detector (HED)")
    p.add_argument("--model", required=True, help="a trained classifier or HED edge model (.keras)")
    p.add_argument("--sparsity", type=fraction, required=True,
                   help="target share of zero weights (with --structure channel: of removed channels), in [0, 1)")
    p.add_argument("--structure", default="unstructured", choices=STRUCTURES)
    p.add_argument("--schedule", default="polynomial", choices=["polynomial", "constant"])
    p.add_argument("--depthwise", action="store_true",
                   help="prune depthwise kernels too (tfmot leaves them dense; smaller, less accurate)")
    p.add_argument("--steps", type=int_range(1, 10_000_000), default=300, help="fine-tuning steps")
    p.add_argument("--batch-size", type=int_range(1, 65536), default=32)
    p.add_argument("--learning-rate", type=positive, default=1e-3)
    p.add_argument("--latency-runs", type=int_range(1, 1_000_000), default=50, help="timed runs per model (--structure channel)")
    p.add_argument("--qat-steps", type=int_range(0, 10_000_000), default=0,
                   help="quantization-aware steps for the int8 export (PQAT after magnitude pruning; 0: PTQ)")
    p.add_argument("--qat-learning-rate", type=positive, default=1e-4)
    p.add_argument("--data-folder", help="classifiers: image folder (root/CLASS/*.jpg) to fine-tune on "
                                         "(default: digits)")
    p.add_argument("--split-seed", type=int_range(0, 2**31 - 1),
                   help="classifiers: the data.train_seed the model was trained with, so that fine-tuning and "
                        "scoring use its own train and test splits (default: its run's model_card.json, else 0)")
    p.add_argument("--recipe", help="HED: the recipe whose data, loss and verify settings fine-tune and score "
                                    "it (default: the packaged recipe)")
    p.add_argument("--out", required=True, help="pruned model (.keras); TFLite float/int8 exports go beside it")
    add_trust(p)
    p.set_defaults(func=cmd_prune)
