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
    run(recipe, args.out)
    return 0


def build_parser():
    p = argparse.ArgumentParser(prog="edgepipe", description="Train, quantize, export and check mobile vision models.")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run a recipe end to end (train, export, verify, bench, report)")
    r.add_argument("--recipe", help="recipe YAML (default: recipes/default.yaml)")
    r.add_argument("--out", default="runs/default", help="run directory (default: runs/default)")
    r.add_argument("--profile", help="training profile from the recipe (default: the recipe's `profile`)")
    r.set_defaults(func=_cmd_run)
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
