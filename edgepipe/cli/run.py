"""``edgepipe run``: a recipe end to end (train, export, verify, bench, report)."""
import sys

from edgepipe.cli.args import recipe_parser


def cmd_run(args):
    from edgepipe.pipeline.recipe import load_recipe
    from edgepipe.base.atomic import ensure_writable_dir
    from edgepipe.pipeline.tasks import check_out_outside_data
    recipe = load_recipe(args.recipe, args.profile)
    check_out_outside_data(recipe, args.out)
    ensure_writable_dir(args.out)  # fail on a bad --out before TensorFlow even loads
    from edgepipe.pipeline.run import gate_failures, run, train_as_worker
    from edgepipe.train.workers import is_chief
    if recipe.train.distribute == "multi_worker" and not is_chief():
        from edgepipe.pipeline.report import wide_console
        train_as_worker(recipe, args.out, wide_console())
        return 0
    failures = gate_failures(run(recipe, args.out, force=args.force))
    for failure in failures:
        print(f"edgepipe: gate: {failure}", file=sys.stderr)
    if failures:
        print(f"edgepipe: {len(failures)} export(s) failed their release gate; exit 1", file=sys.stderr)
    return 1 if failures else 0


def add_parser(sub):
    r = recipe_parser(sub, "run", "run a recipe end to end (train, export, verify, bench, report); "
                      "exit 1 when an export fails its gate", "runs/default")
    r.add_argument("--force", action="store_true", help="re-run every stage, even those up to date")
    r.set_defaults(func=cmd_run)
