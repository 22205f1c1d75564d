"""Host latency: warm-up, then timed runs interleaved across models (A B A B ...)
so that drift on a shared machine affects every model alike.

A timed run is the runner's ``bound`` call: inference on inputs already inside
the runtime, as LiteRT's benchmark_model times ``Invoke()``. Converting and
copying inputs and outputs is left out of the steady-state figures (it is in
``first_ms``); it is the app's cost, not the model's, and for a tensor as large
as a 256x256x36 activation it can cost more than the layers that made it.

Run as ``python -m evaluate.latency SPEC.json`` in a fresh process: TensorFlow's
and BLAS's thread pools can only be sized before they start, and training has
already started them in the pipeline's process.
"""
import json
import os
import re
import sys
import time
from pathlib import Path

import numpy as np

from edgepipe.base.errors import EdgePipeError

STABLE_CHUNK = 10      # runs per model between stability checks
STABLE_REL_TOL = 0.01  # median moved less than 1% -> stable


def summarize(times_s) -> dict:
    ms = np.asarray(times_s, np.float64) * 1e3
    return {
        "count": int(ms.size), "mean_ms": float(ms.mean()), "std_ms": float(ms.std()),
        "min_ms": float(ms.min()), "p50_ms": float(np.percentile(ms, 50)),
        "p90_ms": float(np.percentile(ms, 90)), "p99_ms": float(np.percentile(ms, 99)),
        "max_ms": float(ms.max()),
    }


def _keep_going(samples, runs, budget_s, until_stable, started, clock):
    n = len(next(iter(samples.values())))
    if budget_s is not None:  # at least one timed round, however small the budget
        return n == 0 or clock() - started < budget_s
    if until_stable and n >= 2 * STABLE_CHUNK and n % STABLE_CHUNK == 0:
        moved = [abs(np.median(s) - np.median(s[:-STABLE_CHUNK])) / np.median(s) for s in samples.values()]
        if max(moved) < STABLE_REL_TOL:
            return False
    return n < runs


def interleaved(runners: dict, batch, warmup: int, runs: int, clock=time.perf_counter,
                budget_s: float | None = None, until_stable: bool = False) -> dict:
    """Time ``runners`` (name -> runner) round-robin; returns name -> stats.

    ``batch`` is one array for all, or a dict name -> array. Stops after ``runs``
    rounds, or when ``budget_s`` is spent, or (``until_stable``) when every
    median moved less than 1% over the last chunk (``runs`` is then the cap).
    """
    batches = batch if isinstance(batch, dict) else {name: batch for name in runners}
    first, calls = {}, {}
    for name, r in runners.items():
        t0 = clock()
        r.predict(batches[name])
        first[name] = (clock() - t0) * 1e3
        calls[name] = r.bound(batches[name])
        for _ in range(warmup):
            calls[name]()
    samples = {name: [] for name in runners}
    started = clock()
    while _keep_going(samples, runs, budget_s, until_stable, started, clock):
        for name, call in calls.items():
            t0 = clock()
            call()
            samples[name].append(clock() - t0)
    return {name: summarize(samples[name]) | {"first_ms": first[name], "warmup": warmup,
                                              "samples_ms": [round(t * 1e3, 4) for t in samples[name]]}
            for name in runners}


def _rss_mb() -> float:
    """Resident memory now (the peak would hide a later model behind an earlier one)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _open_all(spec, batches_for):
    """Load each model and run its first inference, measuring time and memory each took."""
    from edgepipe.evaluate.runners import open_runner
    runners, extra = {}, {}
    for key, path in spec["models"].items():
        rss0, t0 = _rss_mb(), time.perf_counter()
        runners[key] = open_runner(path, spec["threads"], xnnpack=spec.get("xnnpack", True),
                                   compute_units=spec.get("compute_units", "all"), trust=spec.get("trust", False))
        extra[key] = {"init_ms": (time.perf_counter() - t0) * 1e3}
        try:
            x = batches_for(runners[key])
        except EdgePipeError as e:  # which of the files, when several are timed
            raise EdgePipeError(f"{Path(path).name}: {e}") from None
        t1 = time.perf_counter()
        runners[key].predict(x)
        extra[key] |= {"first_ms": (time.perf_counter() - t1) * 1e3, "rss_delta": _rss_mb() - rss0}
    return runners, extra


def _roofline(result, macs, terms, peak_gflops, curve, threads, calls: int = 1):
    """Compute bound: all mult-adds at the host's matmul peak. Roofline bound
    (one thread): per layer the longer of compute at peak and traffic at the
    copy bandwidth for that much traffic, summed (``mobile_models.profile.roofline_terms``).
    ``macs`` and ``terms`` are one call's of the file as it is (one item, or a fixed batch's);
    the time is for ``calls`` of them (``--batch``), so the work is too."""
    if not macs:
        return {}
    work = 2 * macs * calls
    compute_ms = work / (peak_gflops * threads * 1e9) * 1e3
    out = {"macs": int(macs), "achieved_gflops": work / (result["p50_ms"] / 1e3) / 1e9,
           "compute_bound_ms": compute_ms, "compute_bound_ratio": result["p50_ms"] / compute_ms}
    if terms and threads == 1:  # each call's own traffic: weights re-read per item, as batch-1 kernels do
        bound_ms = calls * sum(layer_bound_ms(m, b, peak_gflops, curve) for m, b in terms)
        out |= {"roofline_bound_ms": bound_ms, "roofline_ratio": result["p50_ms"] / bound_ms}
    return out


def layer_bound_ms(macs: int, nbytes: int, peak_gflops: float, curve) -> float:
    """One layer's one-thread roofline time: the longer of its mult-adds at the
    matmul peak and its traffic at the copy bandwidth for that much traffic."""
    from edgepipe.evaluate.hostinfo import bandwidth_at
    return max(2 * macs / (peak_gflops * 1e9), nbytes / (bandwidth_at(curve, nbytes) * 1e9)) * 1e3


def _unbatched(runner) -> bool:
    """A rank-1 input (a feature vector, no batch axis): its one fixed dimension is no batch."""
    return len(runner.inputs) == 1 and len(runner.inputs[0].shape or ()) == 1


def _notes(runner, machine, coverage=None, name=""):
    notes = []
    if coverage and coverage["partitions"] and coverage["outside"]:
        ops = ", ".join(f"{k} x{v}" for k, v in coverage["outside"].items())
        notes.append(f"{name}: {sum(coverage['outside'].values())} of {coverage['ops']} ops run "
                     f"outside XNNPACK ({ops}), in {coverage['partitions']} partitions; on a phone they run on "
                     f"reference kernels and each partition boundary costs a hand-over")
    fixed = runner.call_items()
    if _unbatched(runner):
        notes.append(f"{name}: its input {tuple(runner.inputs[0].shape)} has no batch axis: each call runs it whole")
    elif fixed > 1:
        notes.append(f"{name}: fixed at batch {fixed}: each call runs {fixed} items")
    if runner.runtime == "litert" and runner.inputs[0].dtype in ("int8", "uint8"):
        if machine in ("x86_64", "AMD64", "i686"):
            notes.append("int8 on x86 is not representative of ARM phones; measure on the device")
    return notes


def _main(spec_path):
    spec = json.loads(open(spec_path).read())
    from edgepipe.evaluate.hostinfo import best_roofs, copy_bandwidth_curve, file_sha256, host, matmul_peak_gflops
    from edgepipe.evaluate.gpucompat import gpu_report
    from edgepipe.evaluate.opprofile import xnnpack_coverage
    from edgepipe.evaluate.runners import fixed_dims, set_tf_threads, shape_text
    set_tf_threads(spec["threads"])
    rng = np.random.default_rng(0)
    batch = spec.get("batch", 1)

    def batch_for(runner):
        if len(runner.inputs) != 1:
            raise EdgePipeError(f"bench feeds one input; the model has {len(runner.inputs)} "
                                f"({', '.join(i.name for i in runner.inputs)})")
        shape = spec.get("input_shape") or runner.inputs[0].shape[1:]
        if None in fixed_dims(shape):
            raise EdgePipeError(f"the input has free dimensions (N, {shape_text(shape)[1:]}; bench times a fixed "
                                "shape: export it at one (from Keras: `edgepipe convert --input-shape`)")
        step = runner.call_items()  # a file fixed at batch N is timed on whole calls of N items
        return rng.random([-(-batch // step) * step, *fixed_dims(shape)], np.float32)

    def roofs():
        return matmul_peak_gflops(), copy_bandwidth_curve() if spec.get("layer_costs") else None

    runners, extra = _open_all(spec, batch_for)
    batches = {k: batch_for(r) for k, r in runners.items()}  # each checked in _open_all
    before = roofs()
    stats = interleaved(runners, batches, spec["warmup"], spec["runs"], budget_s=spec.get("budget_s"),
                        until_stable=spec.get("until_stable", False))
    peak, curve = best_roofs(before, roofs())
    info = host()
    out = {}
    for k, r in runners.items():
        coverage = xnnpack_coverage(r.interp) if r.runtime == "litert" and spec.get("xnnpack", True) else None
        gpu = gpu_report(spec["models"][k]) if r.runtime == "litert" else None  # after timing: no interference
        res = stats[k] | {"model": spec["models"][k], "model_sha256": file_sha256(spec["models"][k]),
                          "runtime": r.runtime, "runtime_version": r.version, "device": info["device"],
                          "os": info["os"], "cpu": info["cpu"], "threads": spec["threads"],
                          "batch": 1 if _unbatched(r) else len(batches[k]),
                          "options": {"xnnpack": spec.get("xnnpack", True), "budget_s": spec.get("budget_s"),
                                      "compute_units": spec.get("compute_units", "all"),
                                      "until_stable": spec.get("until_stable", False),
                                      "timed": "inference on bound inputs (benchmark_model's Invoke)",
                                      "host_peak_gflops_per_thread": peak,
                                      "host_copy_gbps_by_bytes": curve, "xnnpack_coverage": coverage,
                                      "gpu_delegate": gpu},
                          "init_ms": extra[k]["init_ms"], "first_ms": extra[k]["first_ms"],
                          "rss_delta_mb": extra[k]["rss_delta"],
                          "notes": _notes(r, info["machine"], coverage, os.path.basename(spec["models"][k]))}
        out[k] = res | _roofline(res, (spec.get("macs") or {}).get(k), (spec.get("layer_costs") or {}).get(k),
                                 peak, curve, spec["threads"], len(batches[k]) // r.call_items())
    print(json.dumps(out))


def measure_host(models: dict, threads: int, warmup: int, runs: int, input_shape=None, **options) -> dict:
    """Run the timing in a fresh Python process and return key -> result.
    ``options``: batch, xnnpack, budget_s, until_stable, macs (key -> int),
    layer_costs (key -> ``roofline_terms``, for the memory-aware roofline bound)."""
    import subprocess
    import tempfile
    from pathlib import Path

    from edgepipe.base.errors import EdgePipeError
    from edgepipe.convert.coreml import can_predict
    from edgepipe.convert.formats import format_of
    coreml = [p for p in models.values() if format_of(p) == "coreml"]
    if coreml and not can_predict()[0]:
        raise EdgePipeError(f"{coreml[0]}: Core ML latency needs macOS; here an .mlpackage runs only in the numpy "
                            f"reference interpreter, which gives numerics (edgepipe verify), not timings")
    import edgepipe
    root = Path(edgepipe.__file__).resolve().parent.parent  # where `edgepipe` imports from
    spec = {"models": models, "threads": threads, "warmup": warmup, "runs": runs, "input_shape": input_shape,
            **options}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(spec, f)
    n = str(threads)  # size BLAS/OpenMP pools before numpy loads in the worker
    env = os.environ | {"PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")])), "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": n,
                        "OPENBLAS_NUM_THREADS": n, "MKL_NUM_THREADS": n}
    try:
        proc = subprocess.run([sys.executable, "-m", "edgepipe.evaluate.latency", f.name], capture_output=True, text=True,
                              env=env)
    finally:
        os.unlink(f.name)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["unknown error"])[-1]
        theirs = re.match(r"(?:edgepipe\.base\.errors\.)?EdgePipeError: (.+)", last)  # one the user can fix
        raise EdgePipeError(theirs.group(1) if theirs else f"latency measurement failed: {last}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    try:
        _main(sys.argv[1])
    except Exception as e:  # reported by measure_host as one line
        from edgepipe.base.errors import first_line
        print(f"{type(e).__name__}: {first_line(e, 400)}", file=sys.stderr)
        sys.exit(2)
