"""The latency harness: statistics on a fake clock (exact), interleaving order,
stopping rules, and the result schema round trip."""
import json

import numpy as np
import pytest

from edgepipe.evaluate.bench_schema import BenchResult, validate
from edgepipe.evaluate.latency import interleaved, summarize
from edgepipe.evaluate.runners import Runner


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


class FakeRunner(Runner):
    """Each predict (and so each timed call) advances the fake clock by the next scripted duration."""

    def __init__(self, name, durations, clock, log):
        self.name, self.durations, self.clock, self.log = name, list(durations), clock, log

    def predict(self, batch):
        self.log.append(self.name)
        self.clock.now += self.durations.pop(0) if self.durations else 0.001
        return {}


def test_summary_statistics_are_exact():
    s = summarize([0.004, 0.001, 0.003, 0.002, 0.005])
    assert s["count"] == 5 and s["mean_ms"] == pytest.approx(3.0) and s["min_ms"] == pytest.approx(1.0)
    assert s["p50_ms"] == pytest.approx(3.0) and s["p90_ms"] == pytest.approx(4.6)
    assert s["std_ms"] == pytest.approx(np.sqrt(2.0)) and s["max_ms"] == pytest.approx(5.0)


def test_fake_clock_gives_exact_first_warmup_and_steady_state():
    clock, log = FakeClock(), []
    a = FakeRunner("A", [0.050, 0.010, 0.010, 0.002, 0.004, 0.006], clock, log)
    stats = interleaved({"A": a}, None, warmup=2, runs=3, clock=clock)["A"]
    assert stats["first_ms"] == pytest.approx(50.0) and stats["warmup"] == 2
    assert stats["count"] == 3 and stats["mean_ms"] == pytest.approx(4.0) and stats["p50_ms"] == pytest.approx(4.0)


def test_timed_runs_interleave_models():
    clock, log = FakeClock(), []
    runners = {n: FakeRunner(n, [], clock, log) for n in "ABC"}
    interleaved(runners, None, warmup=1, runs=3, clock=clock)
    assert log[:6] == ["A", "A", "B", "B", "C", "C"]  # first + warm-up, model by model
    assert log[6:] == ["A", "B", "C"] * 3                # then round-robin


def test_time_budget_stops_the_rounds():
    clock, log = FakeClock(), []
    runners = {"A": FakeRunner("A", [], clock, log)}  # 1 ms per run
    stats = interleaved(runners, None, warmup=0, runs=10_000, clock=clock, budget_s=0.05)["A"]
    assert 45 <= stats["count"] <= 55
    # a budget shorter than one run still times one (it timed none, and the summary failed on no samples)
    stats = interleaved(runners, None, warmup=0, runs=10_000, clock=clock, budget_s=1e-300)["A"]
    assert stats["count"] == 1


def test_until_stable_stops_early_on_a_steady_model():
    clock, log = FakeClock(), []
    runners = {"A": FakeRunner("A", [], clock, log)}
    stats = interleaved(runners, None, warmup=0, runs=500, clock=clock, until_stable=True)["A"]
    assert stats["count"] == 20


def test_until_stable_keeps_going_while_the_median_moves():
    clock, log = FakeClock(), []
    drifting = [0.001 * (1 + i) for i in range(200)]
    stats = interleaved({"A": FakeRunner("A", drifting, clock, log)}, None, 0, 60, clock=clock,
                        until_stable=True)["A"]
    assert stats["count"] == 60


def test_result_schema_round_trip():
    r = {"model": "m.tflite", "model_sha256": "ab" * 32, "runtime": "litert", "runtime_version": "2.3.0",
         "device": "host", "os": "Linux", "cpu": "x86", "threads": 1, "batch": 1, "options": {"xnnpack": True},
         "init_ms": 3.0, "first_ms": 9.0, "warmup": 5, "count": 50, "mean_ms": 8.0, "std_ms": 0.3,
         "min_ms": 7.5, "p50_ms": 7.9, "p90_ms": 8.4, "p99_ms": 9.0, "max_ms": 9.1, "rss_delta_mb": 12.0,
         "macs": 1000, "achieved_gflops": 0.25, "roofline_bound_ms": 1.0, "roofline_ratio": 7.9, "notes": []}
    (parsed,) = validate([r])
    assert BenchResult.model_validate(json.loads(json.dumps(parsed.model_dump()))) == parsed
    with pytest.raises(Exception):
        validate([r | {"unexpected": 1}])


def test_roofline_bound_takes_the_longer_of_compute_and_traffic_per_layer():
    from edgepipe.evaluate.latency import _roofline
    curve = [[1e3, 1.0], [1e6, 10.0]]  # 1 GB/s for 1 kB of traffic, 10 GB/s from 1 MB
    # layer 1: 1e6 MACs = 2e6 FLOP at 1 GFLOP/s = 2 ms, 1 kB at 1 GB/s = 1 us -> compute-bound, 2 ms
    # layer 2: 0 MACs, 1e7 bytes at 10 GB/s = 1 ms -> memory-bound
    out = _roofline({"p50_ms": 6.0}, 1_000_000, [[1_000_000, 1_000], [0, 10_000_000]], 1.0, curve, 1)
    assert out["compute_bound_ms"] == pytest.approx(2.0) and out["compute_bound_ratio"] == pytest.approx(3.0)
    assert out["roofline_bound_ms"] == pytest.approx(3.0) and out["roofline_ratio"] == pytest.approx(2.0)
    assert "roofline_ratio" not in _roofline({"p50_ms": 6.0}, 1_000_000, None, 1.0, curve, 1)


def test_bandwidth_interpolates_in_log_size_and_clamps():
    from edgepipe.evaluate.hostinfo import bandwidth_at, copy_bandwidth_curve
    curve = [[1e3, 1.0], [1e5, 3.0]]
    assert bandwidth_at(curve, 1e4) == pytest.approx(2.0)
    assert bandwidth_at(curve, 10) == 1.0 and bandwidth_at(curve, 1e9) == 3.0
    measured = copy_bandwidth_curve(sizes=(2 ** 16, 2 ** 18), repeats=1)
    assert [c[0] for c in measured] == [2 ** 17, 2 ** 19] and all(c[1] > 0 for c in measured)
    assert measured[0][1] >= measured[1][1]  # never rises with size


def test_the_roofs_are_the_best_of_the_readings_before_and_after_timing():
    from edgepipe.evaluate.hostinfo import best_roofs
    before = (90.0, [[1e3, 50.0], [1e6, 20.0]])
    after = (93.0, [[1e3, 6.0], [1e6, 24.0]])  # a burst next door during the small copy
    assert best_roofs(before, after) == (93.0, [[1e3, 50.0], [1e6, 24.0]])
    assert best_roofs((90.0, None), (91.0, None)) == (91.0, None)


def test_a_timed_tflite_run_is_invoke_on_bound_inputs(tmp_path):
    """What bench times for LiteRT is Invoke() on an input set beforehand (as
    benchmark_model does); it computes what predict computes."""
    from edgepipe import mobile_models
    from edgepipe.convert import tflite
    from edgepipe.evaluate.runners import open_runner
    model = mobile_models.build("tiny_cnn", input_shape=(16, 16, 3), classes=4)
    runner = open_runner(tflite.write(model, tmp_path / "m.tflite"))
    x = np.random.default_rng(0).random((1, 16, 16, 3), np.float32)
    call = runner.bound(x)
    assert call == runner.interp.invoke
    call()
    got = runner.interp.get_tensor(runner._out[0]["index"])
    assert np.allclose(got, next(iter(runner.predict(x).values())), atol=1e-6)


def _tflite(fn, shape):
    from edgepipe.base.backend import tf
    concrete = tf.function(fn).get_concrete_function(tf.TensorSpec(shape, tf.float32))
    return tf.lite.TFLiteConverter.from_concrete_functions([concrete]).convert()


def test_xnnpack_coverage_names_the_ops_left_outside_and_the_partitions(tmp_path):
    """PACK has no XNNPACK kernel: between two delegated ops it splits the graph
    in two partitions and runs on the reference kernels; bench says so in a note."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    from edgepipe.evaluate.latency import measure_host
    from edgepipe.evaluate.opprofile import xnnpack_coverage
    from edgepipe.base.backend import tf
    split = tmp_path / "split.tflite"
    split.write_bytes(_tflite(lambda x: tf.nn.relu(tf.reshape(tf.stack([tf.nn.relu(x), x * 2.0], -1), (1, 4, 4, 6))) * 3.0,
                              (1, 4, 4, 3)))
    plain = tmp_path / "plain.tflite"
    plain.write_bytes(_tflite(lambda x: tf.nn.relu(x * 2.0) + 1.0, (1, 4, 4, 3)))

    def coverage(path, resolver=OpResolverType.AUTO):
        interp = Interpreter(model_path=str(path), experimental_op_resolver_type=resolver)
        interp.allocate_tensors()
        return xnnpack_coverage(interp)
    got = coverage(split)
    assert got["outside"] == {"PACK": 1} and got["partitions"] == 2
    assert coverage(plain)["outside"] == {} and coverage(plain)["partitions"] == 1
    off = coverage(plain, OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    assert off["partitions"] == 0 and sum(off["outside"].values()) == off["ops"]
    res = measure_host({"split": str(split), "plain": str(plain)}, 1, 1, 3)
    assert res["split"]["options"]["xnnpack_coverage"]["outside"] == {"PACK": 1}
    assert any("split.tflite: 1 of" in n and "PACK x1" in n for n in res["split"]["notes"])
    assert not any("outside XNNPACK" in n for n in res["plain"]["notes"])
