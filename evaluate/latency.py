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
    """Time ``runners`` (name -> runner) round-robin; returns name -> stats.
    ``batch`` is one array for all, or a dict name -> array."""
    batches = batch if isinstance(batch, dict) else {name: batch for name in runners}
    first = {}
    for name, r in runners.items():
        t0 = clock()
        r.predict(batches[name])
        first[name] = (clock() - t0) * 1e3
        for _ in range(warmup):
            r.predict(batches[name])
    samples = {name: [] for name in runners}
    for _ in range(runs):
        for name, r in runners.items():
            t0 = clock()
            r.predict(batches[name])
            samples[name].append(clock() - t0)
    return {name: summarize(samples[name]) | {"first_ms": first[name], "warmup": warmup}
            for name in runners}


def measure_host(models: dict, threads: int, warmup: int, runs: int, input_shape=None) -> dict:
    """Run the timing in a fresh Python process and return key -> result."""
    import os
    import subprocess
    import tempfile
    from pathlib import Path

    from pipeline.errors import EdgePipeError
    root = Path(__file__).resolve().parent.parent
    spec = {"models": models, "threads": threads, "warmup": warmup, "runs": runs, "input_shape": input_shape}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(spec, f)
    env = os.environ | {"PYTHONPATH": str(root), "CUDA_VISIBLE_DEVICES": ""}
    try:
        proc = subprocess.run([sys.executable, "-m", "evaluate.latency", f.name], capture_output=True, text=True,
                              env=env, cwd=root)
    finally:
        os.unlink(f.name)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["unknown error"])[-1]
        raise EdgePipeError(f"latency measurement failed: {last}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _main(spec_path):
    spec = json.loads(open(spec_path).read())
    from evaluate.runners import open_runner, set_tf_threads
    set_tf_threads(spec["threads"])
    runners, init = {}, {}
    for key, path in spec["models"].items():
        t0 = time.perf_counter()
        runners[key] = open_runner(path, spec["threads"])
        init[key] = (time.perf_counter() - t0) * 1e3
    rng = np.random.default_rng(0)
    batches = {k: rng.random([1, *(spec.get("input_shape") or r.inputs[0].shape[1:])], np.float32)
               for k, r in runners.items()}
    stats = interleaved(runners, batches, spec["warmup"], spec["runs"])
    out = {k: stats[k] | {"init_ms": init[k], "threads": spec["threads"], "runtime": runners[k].runtime,
                          "runtime_version": runners[k].version} for k in runners}
    print(json.dumps(out))


if __name__ == "__main__":
    try:
        _main(sys.argv[1])
    except Exception as e:  # reported by measure_host as one line
        print(f"{type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(2)
