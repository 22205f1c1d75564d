"""Host latency: warm-up, then timed runs interleaved across models (A B A B ...)
so that drift on a shared machine affects every model alike.

Run as ``python -m evaluate.latency SPEC.json`` in a fresh process: TensorFlow's
thread pools can only be sized before TensorFlow starts, and training has
already started it in the pipeline's process.
"""
import json
import sys
import time

import numpy as np


def summarize(times_s) -> dict:
    ms = np.asarray(times_s, np.float64) * 1e3
    return {
        "count": int(ms.size), "mean_ms": float(ms.mean()), "std_ms": float(ms.std()),
        "min_ms": float(ms.min()), "p50_ms": float(np.percentile(ms, 50)),
        "p90_ms": float(np.percentile(ms, 90)), "p99_ms": float(np.percentile(ms, 99)),
        "max_ms": float(ms.max()),
    }


def interleaved(runners: dict, batch, warmup: int, runs: int, clock=time.perf_counter) -> dict:
    """Time ``runners`` (name -> runner) round-robin; returns name -> stats."""
    first = {}
    for name, r in runners.items():
        t0 = clock()
        r.predict(batch)
        first[name] = (clock() - t0) * 1e3
        for _ in range(warmup):
            r.predict(batch)
    samples = {name: [] for name in runners}
    for _ in range(runs):
        for name, r in runners.items():
            t0 = clock()
            r.predict(batch)
            samples[name].append(clock() - t0)
    return {name: summarize(samples[name]) | {"first_ms": first[name], "warmup": warmup}
            for name in runners}


def _main(spec_path):
    spec = json.loads(open(spec_path).read())
    from evaluate.runners import open_runner, set_tf_threads
    set_tf_threads(spec["threads"])
    runners, init = {}, {}
    for key, path in spec["models"].items():
        t0 = time.perf_counter()
        runners[key] = open_runner(path, spec["threads"])
        init[key] = (time.perf_counter() - t0) * 1e3
    shape = [1, *spec["input_shape"]]
    batch = np.random.default_rng(0).random(shape, np.float32)
    stats = interleaved(runners, batch, spec["warmup"], spec["runs"])
    out = {k: stats[k] | {"init_ms": init[k], "threads": spec["threads"], "runtime": runners[k].runtime,
                          "runtime_version": runners[k].version} for k in runners}
    print(json.dumps(out))


if __name__ == "__main__":
    _main(sys.argv[1])
