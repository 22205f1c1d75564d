"""``edgepipe profile``: per-layer params, mult-adds, memory-access cost, peak memory."""
from edgepipe import mobile_models
from edgepipe.cli.args import int_range, positive, positive_int


def cmd_profile(args):
    import json

    from edgepipe.mobile_models.profile import profile_model
    from edgepipe.pipeline.profile_table import print_profile

    entry = mobile_models.entry(args.name)
    opts = {k: v for k, v in (("alpha", args.alpha), ("groups", args.groups), ("scale", args.scale),
                              ("classes", args.classes)) if v is not None}
    if args.size:
        opts["input_shape"] = (args.size, args.size, 3)
    result = profile_model(mobile_models.build(entry.name, **opts))
    if args.json:
        print(json.dumps(result))
    else:
        print_profile(result)
    return 0


def add_parser(sub):
    pr = sub.add_parser("profile", help="per-layer params, mult-adds, memory-access cost, peak memory")
    pr.add_argument("name", choices=mobile_models.names(), metavar="NAME",
                    help="a registered network: " + ", ".join(mobile_models.names()))
    pr.add_argument("--alpha", type=positive, help="width multiplier (MobileNet)")
    pr.add_argument("--groups", type=positive_int, help="groups g (ShuffleNet v1)")
    pr.add_argument("--scale", type=positive, help="scale (ShuffleNet)")
    pr.add_argument("--classes", type=int_range(1, 100_000), help="classifier outputs")
    pr.add_argument("--size", type=int_range(8, 4096), help="square input side")
    pr.add_argument("--json", action="store_true", help="print JSON instead of a table")
    pr.set_defaults(func=cmd_profile)
