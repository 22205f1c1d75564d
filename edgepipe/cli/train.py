"""``edgepipe train``: the recipe's model only, with checkpoints and --resume."""
import sys
from contextlib import nullcontext

from edgepipe.base.errors import EdgePipeError
from edgepipe.cli.args import recipe_parser


def cmd_train(args):
    from edgepipe.base.atomic import ensure_writable_dir, exclusive
    from edgepipe.pipeline.recipe import load_recipe
    from edgepipe.train.workers import is_chief
    recipe = load_recipe(args.recipe, args.profile)
    from edgepipe.pipeline.tasks import check_out_outside_data
    check_out_outside_data(recipe, args.out)
    out = ensure_writable_dir(args.out)
    # the chief alone holds the folder: the other workers of one training share it by design
    with exclusive(out) if is_chief() else nullcontext():
        return _train(args, recipe, out)


def _train(args, recipe, out):
    from edgepipe.pipeline.report import wide_console, write_json
    from edgepipe.pipeline.tasks import task_for, train_key
    ckpt = out / "checkpoints"
    if (ckpt / "state.json").is_file() and not args.resume:
        if _made_by(ckpt, train_key(recipe)):
            raise EdgePipeError(f"{ckpt} holds an earlier training: pass --resume to continue it, or choose "
                                "another --out")
        raise EdgePipeError(f"{ckpt} holds a training of another recipe or data, which --resume cannot "
                            f"continue: choose another --out, or delete {ckpt} to train from the start")
    task = task_for(recipe)
    if args.resume and not (out / "checkpoints" / "state.json").is_file():
        print(f"note: no checkpoint in {out / 'checkpoints'} to resume; training from the start", file=sys.stderr)
    if args.resume:
        from edgepipe.train.loop import load_state
        load_state(out / "checkpoints", train_key(recipe), True)  # refuses another recipe's checkpoint
    console = wide_console()
    _, history = task.train(out, console, resume=args.resume)
    from edgepipe.train.workers import is_chief
    if not is_chief():  # multi-worker: the chief writes the run's files
        return 0
    write_json(out / "history.json", history)
    console.log(f"wrote {out / (recipe.model.name + '.keras')} (best weights), checkpoints in "
                f"{out / 'checkpoints'}, TensorBoard logs in {out / 'logs'}")
    return 0


def add_parser(sub):
    t = recipe_parser(sub, "train", "train the recipe's model only (checkpoints, TensorBoard, --resume)",
                      "runs/train")
    t.add_argument("--resume", action="store_true", help="continue from OUT/checkpoints (weights, optimizer, data)")
    t.set_defaults(func=cmd_train)


def _made_by(ckpt, key: str) -> bool:
    """Whether the checkpoint's state was written for this recipe and data (``train_key``)."""
    import json
    try:
        return json.loads((ckpt / "state.json").read_text()).get("key") == key
    except (OSError, ValueError, AttributeError, RecursionError):
        return False
