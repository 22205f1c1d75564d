"""Document-detector quality against issue #4's targets, on held-out photos
composed *differently* from training (other background photos, textures and page
layouts: ``train/docgen.py`` ``HELDOUT``) and, for contrast, on the training
composition's held-out stream.

    .venv/bin/python benchmarks/document_quality.py [--run runs/default] [--count 200] [--continue-steps 50]

Uses the run's float TFLite export (same numbers as Keras, 2x faster). If the
run folder has no report yet, the default pipeline runs first. With
``--continue-steps N`` it also reloads the last checkpoint (weights and
optimizer state) and trains N more steps at the final phase's size (continuing
its data stream), comparing the loss on 32 fixed held-out images before and after,
to check the loss keeps falling after a reload (the seed's model stopped converging after an
upgrade). Targets: corner error <= 2% of the diagonal on >= 90% of documents,
detection rate >= 95%.
"""
import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edgepipe.evaluate.runners import open_runner  # noqa: E402
from edgepipe.evaluate.taskmetrics import task_metrics  # noqa: E402
from edgepipe.pipeline.recipe import Recipe, load_recipe  # noqa: E402
from edgepipe.train.docgen import generate  # noqa: E402

TARGETS = {"under_2pct": 0.90, "detection_rate": 0.95}


def evaluate(runner, composition: str, seed: int, count: int, size: int) -> dict:
    samples = [generate(seed, i, size, composition=composition) for i in range(count)]
    x = np.stack([s.image for s in samples]).astype(np.float32) / 255.0
    edges = np.concatenate([next(iter(runner.predict(x[i:i + 16]).values())) for i in range(0, count, 16)])
    return task_metrics(edges, np.stack([s.edges for s in samples]), np.stack([s.corners for s in samples]))


def continue_training(run: Path, recipe, steps: int) -> dict:
    """Reload the last checkpoint and train ``steps`` more at the last phase's size."""
    from edgepipe import mobile_models
    from edgepipe.base.backend import tf
    from edgepipe.train.datasets import document_dataset
    from edgepipe.train.fit import compile_hed
    cfg = recipe.train
    model = mobile_models.build(recipe.model.name, input_shape=(None, None, 3))
    compile_hed(model, cfg, sum(p.steps for p in cfg.phases))
    model.optimizer.build(model.trainable_variables)
    ckpt = tf.train.Checkpoint(model=model, optimizer=model.optimizer)
    ckpt.restore(tf.train.latest_checkpoint(str(run / "checkpoints" / "last"))).assert_existing_objects_matched()
    state = json.loads((run / "checkpoints" / "state.json").read_text())
    last = cfg.phases[-1]
    fixed = document_dataset(recipe.data.val_seed + 1, 32, last.size, cfg.batch_size, model.output_names,
                             shuffle=False)
    before = model.evaluate(fixed, verbose=0)[0]
    ds = document_dataset(recipe.data.train_seed + 7919 * (len(cfg.phases) - 1), last.pool, last.size,
                          cfg.batch_size, model.output_names).repeat().skip(last.steps)
    model.fit(ds, steps_per_epoch=steps, epochs=1, verbose=0)
    after = model.evaluate(fixed, verbose=0)[0]
    return {"restored_step": int(state["steps_done"]), "fixed_set_loss_before": float(before),
            "fixed_set_loss_after": float(after), "steps": steps}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", default="runs/default")
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--seed", type=int, default=20_000)
    ap.add_argument("--continue-steps", type=int, default=0)
    args = ap.parse_args()
    run = Path(args.run)
    if not (run / "report.json").is_file():
        from edgepipe.pipeline.run import run as run_pipeline
        run_pipeline(load_recipe(), run)
    report = json.loads((run / "report.json").read_text())
    recipe = Recipe.model_validate(report["recipe"]["config"])
    tflite = next(a["path"] for a in report["artifacts"] if (a["format"], a["variant"]) == ("tflite", "float32"))
    runner, size = open_runner(tflite), recipe.model.input_size
    rows = {}
    for composition, seed in (("train", recipe.data.val_seed), ("heldout", args.seed)):
        t0 = time.time()
        rows[composition] = evaluate(runner, composition, seed, args.count, size) | {"seconds": time.time() - t0}
    print(f"model: {tflite} ({args.count} images per set, {size}x{size})")
    print(f"{'composition':12} {'ODS F':>6} {'F@0.5':>6} {'median %':>9} {'p90 %':>7} {'<2%':>6} {'<5%':>6} {'detected':>9}")
    for name, m in rows.items():
        print(f"{name:12} {m['ods_f']:6.3f} {m['f_score']:6.3f} {m['corner_err_median_pct']:9.2f} "
              f"{m['corner_err_p90_pct']:7.2f} {m['under_2pct']:6.1%} {m['under_5pct']:6.1%} {m['detection_rate']:9.1%}")
    held = rows["heldout"]
    for key, target in TARGETS.items():
        verdict = "met" if held[key] >= target else "NOT met"
        print(f"target {key} >= {target:.0%} on the differently composed set: {held[key]:.1%} ({verdict})")
    print(f"training time of this run: {report['timings_s'].get('train')} s")
    result = {"sets": rows, "targets": TARGETS}
    if args.continue_steps:
        result["continued"] = c = continue_training(run, recipe, args.continue_steps)
        trend = "still falling" if c["fixed_set_loss_after"] < c["fixed_set_loss_before"] else "NOT falling"
        print(f"reloaded step {c['restored_step']} (weights + optimizer state): loss on 32 fixed held-out images "
              f"{c['fixed_set_loss_before']:.4f} -> {c['fixed_set_loss_after']:.4f} after {c['steps']} more "
              f"steps ({trend})")
    print(json.dumps(result, default=float))


if __name__ == "__main__":
    main()
