import os
import sys
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # Workers share the cores: TensorFlow's default pools (one thread per core each, for ops and
    # between ops) oversubscribe them. Measured on 2 cores, two workers training a small
    # ShuffleNet side by side: 57 s with the default pools, 37 s with one thread each.
    # the cores this process may use (a container's CPU limit), not the host's
    _cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    _threads = str(max(1, _cores // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))))
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", _threads)
    os.environ.setdefault("TF_NUM_INTEROP_THREADS", _threads)
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
TINY = {
    "name": "tiny",
    "model": {"name": "hed_mobilenet_v2", "input_size": 64},
    "data": {"train_seed": 1, "val_seed": 2, "val_size": 4},
    "profile": "quick",
    "profiles": {"quick": {"phases": [{"size": 32, "steps": 2, "pool": 8}, {"size": 64, "steps": 1, "pool": 4}],
                           "batch_size": 4}},
    "export": {"calibration_samples": 4},
    "bench": {"warmup": 1, "runs": 3},
    # three steps leave every edge probability within 0.01 of the F-score's 0.5 threshold: the int8
    # F-score drop is a cliff there, not a measure; the gate itself is tested on trained models
    "verify": {"gate_task_drop": 1.0},
}


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """The whole pipeline once on the TINY recipe; tests read its run folder (or copy it
    to change it). Under xdist the workers share one: the first to ask builds it, under
    a lock (each worker built its own, a minute of the suite's two cores)."""
    import fcntl
    import yaml
    from edgepipe.cli.main import main
    shared = tmp_path_factory.getbasetemp()
    shared = shared.parent if os.environ.get("PYTEST_XDIST_WORKER") else shared  # the workers' common folder
    root = shared / "tiny_run"
    with open(shared / "tiny_run.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not (root / "built").is_file():
            root.mkdir(exist_ok=True)
            recipe = root / "tiny.yaml"
            recipe.write_text(yaml.safe_dump(TINY))
            assert main(["run", "--recipe", str(recipe), "--out", str(root / "run")]) == 0
            (root / "built").write_text("ok")
    return root / "run"


@pytest.fixture(scope="session")
def tiny_hed():
    """A 64x64 MobileNetV2-style HED inference model with non-trivial BN statistics."""
    from edgepipe import mobile_models
    from edgepipe.mobile_models.hed import inference_model

    model = inference_model(mobile_models.build("hed_mobilenet_v2", input_shape=(64, 64, 3)))
    return randomise_batchnorm(model)


def randomise_batchnorm(model, seed: int = 0):
    """Non-trivial BN statistics, as a trained net has (fresh ones make BN an identity)."""
    from edgepipe.base.backend import layers
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            g, b, m, v = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 1.5, g.shape), rng.normal(0, 0.1, b.shape),
                               rng.normal(0, 0.1, m.shape), rng.uniform(0.5, 2.0, v.shape)])
    return model


@pytest.fixture
def shallow_zoo(monkeypatch):
    """The zoo's classifiers with fewer units per stage: every layer kind (each stage's
    strided first unit, a residual or shuffle unit after it) at a fraction of the depth,
    for tests about layer kinds rather than depth. ShuffleNet v1's 16 units become 4."""
    from edgepipe.mobile_models import mobilenet, shufflenet
    monkeypatch.setattr(shufflenet, "SHUFFLENET_V1_REPEATS", (1, 2, 1))
    monkeypatch.setattr(shufflenet, "SHUFFLENET_V2_REPEATS", (1, 2, 1))
    first_repeated = next(i for i, row in enumerate(mobilenet.MOBILENET_V2) if row[2] > 1)
    monkeypatch.setattr(mobilenet, "MOBILENET_V2", [(t, c, 2 if i == first_repeated else 1, s)
                                                    for i, (t, c, n, s) in enumerate(mobilenet.MOBILENET_V2)])
    v1 = mobilenet.MOBILENET_V1
    monkeypatch.setattr(mobilenet, "MOBILENET_V1", [row for i, row in enumerate(v1) if i == 0 or row != v1[i - 1]])


@pytest.fixture(scope="session")
def tiny_images():
    from edgepipe.train.docgen import generate
    return np.stack([generate(123, i, 64).image for i in range(8)]).astype(np.float32) / 255.0


def _system_tool_missing(what: str):
    """Reference tools the test setup installs (scripts/test.sh, .ci/run): CI must
    have them, so there a missing one fails; elsewhere the test is skipped."""
    if os.environ.get("CI"):
        pytest.fail(f"{what} is missing; .ci/run installs it")
    pytest.skip(f"{what} is not installed (bash scripts/test.sh and .ci/run install it)")


@pytest.fixture(scope="session")
def tflite_support_metadata():
    """Google's own metadata reader (tflite-support 0.4.4, installed --no-deps into
    .venv/reference by scripts/test.sh): an independent check of our writer."""
    sys.path.append(str(ROOT / ".venv" / "reference"))
    try:
        from tensorflow_lite_support.metadata.python import metadata
    except ImportError as e:
        _system_tool_missing(f"tflite-support's metadata reader ({e})")
    return metadata



# The slowest files, slowest first (seconds on 2 cores, two workers: zoo_export 353, compress 324,
# hed_compress 142, keras_applications 139, exports 128, train 127, resume 122, sweep 105).
# pytest-xdist's --dist loadfile hands out files in collection order: run alphabetically, the
# slowest (test_zoo_export) came last and ran alone for minutes while the other worker idled.
SLOWEST_FIRST = ("test_zoo_export.py", "test_compress.py", "test_hed_compress.py", "test_user_models.py",
                 "test_keras_applications.py", "test_exports.py", "test_train.py", "test_resume.py", "test_sweep.py",
                 "test_verify_cli.py", "test_input_spec.py", "test_cli.py", "test_variants.py", "test_run_truth.py",
                 "test_zoo.py", "test_multi_worker.py")


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(Path(str(item.fspath)).name, len(rank)))  # stable: the rest keep their order
