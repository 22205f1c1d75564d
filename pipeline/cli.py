"""The ``edgepipe`` command line. Errors a user can cause print one line and exit 2."""
import argparse
import sys

from pipeline.errors import EdgePipeError


def _cmd_run(args):
    from pipeline.recipe import load_recipe
    from pipeline.atomic import ensure_writable_dir
    recipe = load_recipe(args.recipe, args.profile)
    ensure_writable_dir(args.out)  # fail on a bad --out before TensorFlow even loads
    from pipeline.run import run
    run(recipe, args.out, force=args.force)
    return 0


def _cmd_train(args):
    from pipeline.atomic import ensure_writable_dir
    from pipeline.recipe import load_recipe
    recipe = load_recipe(args.recipe, args.profile)
    out = ensure_writable_dir(args.out)
    if (out / "checkpoints" / "state.json").is_file() and not args.resume:
        raise EdgePipeError(f"{out / 'checkpoints'} holds an earlier training: pass --resume to continue it, "
                            "or choose another --out")
    from pipeline.report import wide_console, write_json
    from pipeline.tasks import task_for, train_key
    task = task_for(recipe)
    if args.resume:
        from train.loop import load_state
        load_state(out / "checkpoints", train_key(recipe), True)  # refuses another recipe's checkpoint
    console = wide_console()
    _, history = task.train(out, console, resume=args.resume)
    write_json(out / "history.json", history)
    console.log(f"wrote {out / (recipe.model.name + '.keras')} (best weights), checkpoints in "
                f"{out / 'checkpoints'}, TensorBoard logs in {out / 'logs'}")
    return 0


def _cmd_profile(args):
    import json

    import mobile_models
    from mobile_models.profile import profile_model
    from pipeline.profile_table import print_profile

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


def _cmd_report(args):
    import json
    from pathlib import Path
    run_dir = Path(args.run_dir)
    path = run_dir / "report.json"
    if not path.is_file():
        raise EdgePipeError(f"{path} not found: give the folder of a finished `edgepipe run`")
    try:
        report = json.loads(path.read_text())
        report["artifacts"]
    except (ValueError, KeyError, TypeError):
        raise EdgePipeError(f"{path} is not an edgepipe report") from None
    from pipeline.html_report import render
    print(f"wrote {render(report, run_dir)}")
    return 0


def _recipe_parser(sub, name: str, help_text: str, default_out: str):
    c = sub.add_parser(name, help=help_text)
    c.add_argument("--recipe", help="recipe YAML (default: recipes/default.yaml)")
    c.add_argument("--out", default=default_out, help=f"output folder (default: {default_out})")
    c.add_argument("--profile", help="training profile from the recipe (default: the recipe's `profile`)")
    return c


def build_parser():
    p = argparse.ArgumentParser(prog="edgepipe", description="Train, quantize, export and check mobile vision models.")
    sub = p.add_subparsers(dest="command", required=True)
    r = _recipe_parser(sub, "run", "run a recipe end to end (train, export, verify, bench, report)", "runs/default")
    r.add_argument("--force", action="store_true", help="re-run every stage, even those up to date")
    r.set_defaults(func=_cmd_run)
    t = _recipe_parser(sub, "train", "train the recipe's model only (checkpoints, TensorBoard, --resume)",
                       "runs/train")
    t.add_argument("--resume", action="store_true", help="continue from OUT/checkpoints (weights, optimizer, data)")
    t.set_defaults(func=_cmd_train)

    pr = sub.add_parser("profile", help="per-layer params, mult-adds, memory-access cost, peak memory")
    pr.add_argument("name", help="a registered network: hed_mobilenet_v2, hed_vgg, mobilenet_v1, mobilenet_v2, shufflenet_v1, shufflenet_v2, tiny_cnn")
    pr.add_argument("--alpha", type=float, help="width multiplier (MobileNet)")
    pr.add_argument("--groups", type=int, help="groups g (ShuffleNet v1)")
    pr.add_argument("--scale", type=float, help="scale (ShuffleNet)")
    pr.add_argument("--classes", type=int, help="classifier outputs")
    pr.add_argument("--size", type=int, help="square input side")
    pr.add_argument("--json", action="store_true", help="print JSON instead of a table")
    pr.set_defaults(func=_cmd_profile)

    rp = sub.add_parser("report", help="re-render RUN_DIR/report.html from its report.json")
    rp.add_argument("run_dir", help="folder of an `edgepipe run`")
    rp.set_defaults(func=_cmd_report)

    from pipeline import bench_cli, prune_cli, quantize_cli, scan_cli, verify_cli
    quantize_cli.add_parser(sub)
    prune_cli.add_parser(sub)
    bench_cli.add_parser(sub)
    scan_cli.add_parser(sub)
    verify_cli.add_parsers(sub)
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except EdgePipeError as e:
        print(f"edgepipe: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("edgepipe: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
