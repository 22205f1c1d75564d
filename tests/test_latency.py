"""The latency harness: statistics on a fake clock (exact), interleaving order,
stopping rules, and the result schema round trip."""
import json

import numpy as np
import pytest

from evaluate.bench_schema import BenchResult, validate
from evaluate.latency import interleaved, summarize


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


class FakeRunner:
    """Each predict advances the fake clock by the next scripted duration."""

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
