"""The trainer: exact steps, resume after a kill (same steps, same losses), NaN
guard, early stopping, LR schedules, weight decay that skips BN and biases, and
MirroredStrategy on two logical CPU devices."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from edgepipe.base.backend import keras, tf
from edgepipe.base.errors import EdgePipeError
from edgepipe.pipeline.recipe import Phase, TrainCfg
from edgepipe.train import fit, loop

ROOT = Path(__file__).resolve().parent.parent
# A small classifier on digits: the trainer's kill, resume and replicas are the same for every task,
# and each of these tests starts several training processes (HED's trace alone took most of their time)
TRAIN = {"name": "tiny", "model": {"name": "tiny_cnn", "input_size": 32}, "data": {"kind": "digits"},
         "profile": "quick", "profiles": {"quick": {
             "phases": [{"size": 32, "steps": 16, "pool": 1}, {"size": 32, "steps": 6, "pool": 1}],
             "batch_size": 8, "steps_per_epoch": 2, "val_size": 16}},
         "export": {"variants": ["tflite_float32"]}}


def test_epoch_plan_runs_exactly_each_phase():
    for steps in ([1], [40, 3], [50], [53, 450], [451]):
        plan = loop.epoch_plan(steps, 50)
        assert [sum(e.steps for e in plan if e.phase == i) for i in range(len(steps))] == steps


def _train(out, *extra, recipe=TRAIN, relative=False):
    """``relative``: give --out as a path relative to the working folder, as `runs/default` is."""
    side = out.with_name(out.name + "-inputs")  # the recipe and logs: beside the run folder, which is edgepipe's
    side.mkdir(parents=True, exist_ok=True)
    (side / "r.yaml").write_text(yaml.safe_dump(recipe))
    args = [sys.executable, "-m", "edgepipe.cli.main", "train", "--recipe", str(side / "r.yaml"), "--out",
            os.path.relpath(out, ROOT) if relative else str(out), *extra]
    log = open(side / f"log{len(list(side.glob('log*')))}.txt", "w+")  # a file: a full pipe would stall it
    proc = subprocess.Popen(args, cwd=ROOT, env=os.environ | {"PYTHONPATH": str(ROOT)}, stdout=log,
                            stderr=subprocess.STDOUT, text=True)
    proc.output = lambda: (proc.wait(), log.seek(0), log.read())[2]
    return proc


def _state(out):
    p = out / "checkpoints" / "state.json"
    return json.loads(p.read_text()) if p.is_file() else None


def test_a_checkpoint_of_other_data_is_not_sent_to_resume(tmp_path, capsys, tiny_run):
    """After the data changed, train said "pass --resume", and --resume said the checkpoint
    could not be continued: each message sent the user to the other."""
    import copy
    import shutil
    from edgepipe.cli.main import main
    from tests.conftest import TINY
    shutil.copytree(tiny_run, tmp_path / "run", symlinks=True)
    changed = copy.deepcopy(TINY)
    changed["data"]["train_seed"] = 7  # other training data
    recipe = tmp_path / "changed.yaml"
    recipe.write_text(yaml.safe_dump(changed))
    capsys.readouterr()
    assert main(["train", "--recipe", str(recipe), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "another recipe or data" in err and "pass --resume" not in err, err
    assert (tmp_path / "run" / "checkpoints" / "state.json").is_file()  # the user deletes it, not edgepipe


def test_killed_training_resumes_with_the_same_steps_and_losses(tmp_path):
    reference = _train(tmp_path / "ref")
    killed = _train(tmp_path / "run", relative=True)
    deadline = time.time() + 900  # a safety net only: on a loaded machine epochs can take minutes
    while (time.time() < deadline and killed.poll() is None
           and (_state(tmp_path / "run") or {}).get("epochs_done", 0) < 3):
        time.sleep(0.01)  # an epoch of this small net takes a fraction of a second
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    at_kill = _state(tmp_path / "run")
    assert at_kill and 3 <= at_kill["epochs_done"] < 11, "kill landed mid-training"
    assert reference.wait() == 0, reference.output()[-2000:]
    again = _train(tmp_path / "run")  # without --resume: refuses to overwrite
    assert again.wait() == 2 and "pass --resume" in again.output()
    resumed = _train(tmp_path / "run", "--resume", relative=True)  # TF's state file names were joined twice
    log = resumed.output()
    assert resumed.returncode == 0, log[-2000:]
    assert f"resuming training after epoch {at_kill['epochs_done']}" in log
    ref, got = _state(tmp_path / "ref"), _state(tmp_path / "run")
    assert got["steps_done"] == ref["steps_done"] == 22 and got["epochs_done"] == 11
    # optimizer state and data position restored: the loss curve continues as if never killed
    np.testing.assert_allclose(got["history"]["loss"], ref["history"]["loss"], rtol=2e-3)
    assert (tmp_path / "run" / "tiny_cnn.keras").is_file()


def test_mirrored_strategy_on_two_logical_cpus(tmp_path):
    recipe = json.loads(json.dumps(TRAIN))
    # one phase: each phase traces the replicated step again, and the trace is the slow part
    recipe["profiles"]["quick"].update(distribute="mirrored", cpu_replicas=2, batch_size=4,
                                       phases=[{"size": 32, "steps": 4, "pool": 8}])
    proc = _train(tmp_path / "m", recipe=recipe)
    log = proc.output()
    assert proc.returncode == 0, log[-2000:]
    assert "on 2 replica(s) (MirroredStrategy)" in " ".join(log.split())
    assert _state(tmp_path / "m")["steps_done"] == 4


def _toy_model():
    keras.utils.set_random_seed(0)
    x = keras.Input((4,))
    h = keras.layers.BatchNormalization()(keras.layers.Dense(8, activation="relu")(x))
    return keras.Model(x, keras.layers.Dense(1)(h))


def _toy_data(x_fill=1.0, y=1.0):
    def dataset_for(phase, skip):
        xs = np.full((64, 4), x_fill, np.float32)
        return tf.data.Dataset.from_tensor_slices((xs, np.full((64, 1), y, np.float32))).batch(4).repeat().skip(skip)
    return dataset_for


def test_nan_loss_stops_reports_the_step_and_keeps_the_last_good_checkpoint(tmp_path):
    model = _toy_model()
    model.compile(keras.optimizers.SGD(0.01), "mse")
    plan = loop.epoch_plan([9], 3)
    good = loop.run_epochs(model, plan[:2], _toy_data(), tmp_path, loop.TrainState("k"), verbose=0)
    assert good.epochs_done == 2
    with pytest.raises(EdgePipeError, match=r"NaN at step 7.*epoch 2, step 6"):
        loop.run_epochs(model, plan, _toy_data(x_fill=np.nan), tmp_path, good, verbose=0)
    assert json.loads((tmp_path / "state.json").read_text())["steps_done"] == 6


class _AbsorbNaN(keras.layers.Layer):
    """What ReLU does on a CPU whose max returns the non-NaN operand (AVX-512):
    NaN activations become 0, so the loss stays finite. Made explicit here so the
    test behaves the same on every CPU."""

    def call(self, x):
        return tf.where(tf.math.is_nan(x), tf.zeros_like(x), x)


def test_nan_guard_holds_when_the_network_hides_nan_from_the_loss(tmp_path):
    keras.utils.set_random_seed(0)
    x = keras.Input((4,))
    model = keras.Model(x, keras.layers.Dense(1)(_AbsorbNaN()(keras.layers.Dense(8)(x))))
    model.compile(keras.optimizers.SGD(0.01), "mse")
    plan = loop.epoch_plan([9], 3)
    good = loop.run_epochs(model, plan[:2], _toy_data(), tmp_path, loop.TrainState("k"), verbose=0)
    with pytest.raises(EdgePipeError, match=r"NaN at step 7.*epoch 2, step 6"):
        loop.run_epochs(model, plan, _toy_data(x_fill=np.nan), tmp_path, good, verbose=0)
    assert json.loads((tmp_path / "state.json").read_text())["steps_done"] == 6
    fresh = keras.models.clone_model(model)  # the kept checkpoint holds finite weights
    fresh.compile(keras.optimizers.SGD(0.01), "mse")
    fresh.optimizer.build(fresh.trainable_variables)
    tf.train.Checkpoint(model=fresh, optimizer=fresh.optimizer).restore(
        tf.train.latest_checkpoint(str(tmp_path / "last"))).expect_partial()
    assert loop.weights_finite(fresh) and not loop.weights_finite(model)


def test_truncated_checkpoint_on_resume_is_one_error(tmp_path):
    model = _toy_model()
    model.compile(keras.optimizers.SGD(0.01), "mse")
    plan = loop.epoch_plan([6], 3)
    state = loop.run_epochs(model, plan[:1], _toy_data(), tmp_path, loop.TrainState("k"), verbose=0)
    for data in (tmp_path / "last").glob("*.data-*"):
        data.write_bytes(data.read_bytes()[:7])  # a disk that filled up, a copy cut short
    fresh = _toy_model()
    fresh.compile(keras.optimizers.SGD(0.01), "mse")
    with pytest.raises(EdgePipeError, match="cannot be restored.*delete the folder"):
        loop.run_epochs(fresh, plan, _toy_data(), tmp_path, state, verbose=0)


def test_early_stopping_when_validation_gets_worse(tmp_path):
    model = _toy_model()
    model.compile(keras.optimizers.SGD(0.05), "mse")
    val = (np.ones((8, 4), np.float32), np.full((8, 1), -5.0, np.float32))  # training pulls away from it
    state = loop.run_epochs(model, loop.epoch_plan([40], 4), _toy_data(y=5.0), tmp_path, loop.TrainState("k"),
                            val_data=val, patience=2, verbose=0)
    assert state.stopped_early and state.epochs_done < 10 and state.bad_epochs == 2
    best = state.history["val_loss"].index(min(state.history["val_loss"])) + 1
    assert best < state.epochs_done and loop.restore_best(model, tmp_path)
    assert model.evaluate(*val, verbose=0) == pytest.approx(state.best_val, rel=1e-5)


def test_step_schedule_and_weight_decay_skip_batchnorm_and_bias():
    cfg = TrainCfg(phases=[Phase(size=32, steps=40, pool=4)], schedule="step", step_every_epochs=1,
                   steps_per_epoch=10, step_gamma=0.5, learning_rate=0.1, weight_decay=1e-4)
    optimizer, schedule = fit.make_optimizer(cfg, 40)
    assert [round(float(schedule(s)), 6) for s in (0, 9, 11, 25, 39)] == [0.1, 0.1, 0.05, 0.025, 0.0125]
    model = _toy_model()
    optimizer.build(model.trainable_variables)
    decayed = {v.name.split("/")[-1].split(":")[0]: optimizer._use_weight_decay(v) for v in model.trainable_variables}
    assert decayed == {"kernel": True, "bias": False, "gamma": False, "beta": False}


def test_bn_momentum_is_set_for_training_and_bounded():
    from pydantic import ValidationError
    model = _toy_model()
    fit.set_bn_momentum(model, 0.9)
    assert [layer.momentum for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)] == [0.9]
    with pytest.raises(ValidationError, match="bn_momentum"):
        TrainCfg(phases=[Phase(size=32, steps=1, pool=1)], bn_momentum=1.5)


def test_keras_callback_timing_note_is_dropped_and_other_warnings_kept(caplog):
    """A successful run printed Keras' "Callback method `on_train_batch_end` is slow compared
    to the batch time" (edgepipe's per-step NaN check, on a tiny batch) on stderr."""
    import logging

    from edgepipe.base.quiet import callback_timing_notes_dropped
    callback_timing_notes_dropped()
    callback_timing_notes_dropped()
    logger = logging.getLogger("tensorflow")
    with caplog.at_level(logging.WARNING, logger="tensorflow"):
        logger.warning("Callback method `on_train_batch_end` is slow compared to the batch time "
                       "(batch time: 0.0010s vs `on_train_batch_end` time: 0.0030s). Check your callbacks.")
        logger.warning("something else")
    assert [r.getMessage() for r in caplog.records] == ["something else"]


def test_saving_the_best_weights_again_keeps_a_users_file_in_their_folder(tmp_path):
    """`run --force` swapped checkpoints/best whole and deleted a note the user kept there."""
    from edgepipe.base.backend import keras
    from edgepipe.train.loop import restore_best, save_best
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    save_best(model, tmp_path)
    (tmp_path / "best" / "MY_NOTES.txt").write_text("mine")
    save_best(model, tmp_path)
    assert (tmp_path / "best" / "MY_NOTES.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best"] and restore_best(model, tmp_path)
