"""``edgepipe profile``: per-layer params, mult-adds, memory-access cost, peak
memory, of a registered network or of a user's model file."""
from pathlib import Path

from edgepipe import mobile_models
from edgepipe.base.errors import EdgePipeError
from edgepipe.cli.args import add_trust, int_range, positive, positive_int

BUILD_OPTIONS = ("alpha", "groups", "scale", "classes", "size")


def cmd_profile(args):
    import json

    from edgepipe.mobile_models.profile import profile_model
    from edgepipe.pipeline.profile_table import print_profile
    result = profile_model(_model(args))
    if args.json:
        print(json.dumps(result))
    else:
        print_profile(result)
    return 0


def _model(args):
    """The registered network built with the options, or the user's file as it is."""
    if args.name in mobile_models.names():
        opts = {k: getattr(args, k) for k in ("alpha", "groups", "scale", "classes") if getattr(args, k) is not None}
        if args.size:
            opts["input_shape"] = (args.size, args.size, 3)
        return mobile_models.build(args.name, **opts)
    if not Path(args.name).exists():
        raise EdgePipeError(f"'{args.name}' is neither a registered network ({', '.join(mobile_models.names())}) "
                            "nor a model file")
    given = [f"--{k}" for k in BUILD_OPTIONS if k != "size" and getattr(args, k) is not None]
    if given:
        raise EdgePipeError(f"{', '.join(given)} build a registered network; a model file is profiled as it is")
    from edgepipe.base.modelio import load_keras
    model = load_keras(args.name, trust=args.trust_model)
    free = [t for t in model.inputs if any(d is None for d in t.shape[1:])]
    if free and (len(model.inputs) > 1 or not args.size):
        hint = ": pass --size N for an N x N input" if len(model.inputs) == 1 else ""
        raise EdgePipeError(f"{args.name} has a free input size {model.input_shape}; profile counts a fixed one{hint}")
    if free:
        return _at_size(model, args.size, args.name)
    if args.size:
        raise EdgePipeError(f"{args.name} takes {model.input_shape} already; --size fixes a free input size only")
    return model


def _at_size(model, size: int, path):
    """The user's model rebuilt on an input of ``size`` where its height and width are free
    (the weights are not needed: the profile counts shapes)."""
    from edgepipe.base.backend import keras
    from edgepipe.base.errors import first_line
    shape = tuple(size if d is None else d for d in model.inputs[0].shape[1:])
    try:
        return keras.models.clone_model(model, input_tensors=keras.Input(shape, dtype=model.inputs[0].dtype))
    except Exception as e:  # noqa: BLE001  a subclassed model or a layer that cannot be rebuilt
        raise EdgePipeError(f"{path}: cannot be rebuilt on a {shape} input to profile it ({first_line(e)})") from None


def add_parser(sub):
    pr = sub.add_parser("profile", help="per-layer params, mult-adds, memory-access cost, peak memory")
    pr.add_argument("name", metavar="NAME_OR_FILE",
                    help="a registered network (" + ", ".join(mobile_models.names()) + ") or a .keras/.h5/SavedModel")
    pr.add_argument("--alpha", type=positive, help="width multiplier (MobileNet)")
    pr.add_argument("--groups", type=positive_int, help="groups g (ShuffleNet v1)")
    pr.add_argument("--scale", type=positive, help="scale (ShuffleNet)")
    pr.add_argument("--classes", type=int_range(1, 100_000), help="classifier outputs")
    pr.add_argument("--size", type=int_range(8, 4096), help="square input side (a registered network, or a model file "
                    "whose input size is free)")
    pr.add_argument("--json", action="store_true", help="print JSON instead of a table")
    add_trust(pr)
    pr.set_defaults(func=cmd_profile)
