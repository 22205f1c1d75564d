"""The trainer runs exactly the steps each phase asks for."""
from pathlib import Path

import mobile_models
from pipeline.recipe import Phase, TrainCfg
from train import fit


def test_epoch_chunks_add_up_exactly():
    for steps in (1, 40, 50, 53, 450, 451):
        chunks = fit._epoch_chunks(steps)
        assert sum(n * k for n, k in chunks) == steps


def test_optimizer_takes_exactly_the_phase_steps(tmp_path, monkeypatch):
    monkeypatch.setattr(fit, "STEPS_PER_EPOCH", 2)
    model = mobile_models.build("hed_mobilenet_v2", input_shape=(None, None, 3))
    cfg = TrainCfg(phases=[Phase(size=32, steps=5, pool=4)], batch_size=2)
    history = fit.train_hed(model, cfg, 0, Path(tmp_path), verbose=0)
    assert int(model.optimizer.iterations.numpy()) == 5
    assert len(history["loss"]) == 3  # epochs of 2, 2 and 1 steps
