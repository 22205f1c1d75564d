"""``edgepipe bench``: host latency over the shared runners, or a phone over adb."""
import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from pipeline.errors import EdgePipeError


def parse_threads(text: str) -> list[int]:
    try:
        threads = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise EdgePipeError(f"--threads takes a comma-separated list of integers, got '{text}'") from None
    if not threads or min(threads) < 1:
        raise EdgePipeError(f"--threads needs positive integers, got '{text}'")
    return threads


def bench_host(files, threads, warmup, runs) -> list[dict]:
    from evaluate.latency import measure_host
    for f in files:
        if not Path(f).exists():
            raise EdgePipeError(f"model not found: {f}")
    results = []
    for t in threads:
        stats = measure_host({f: str(Path(f).resolve()) for f in files}, t, warmup, runs)
        results += [{"model": f, **stats[f]} for f in files]
    return results


def bench_device(files, threads, warmup, runs, args) -> list[dict]:
    from evaluate.android import bench_android
    results = []
    for f in files:
        for t in threads:
            r = bench_android(f, t, args.delegate, warmup, runs, args.serial, args.apk)
            results.append({"model": f, "runtime": r.get("runtime", "litert-android"), "threads": t,
                            "device": r.get("device"), "init_ms": r.get("init_ms"), **r["stats"]})
    return results


def print_results(results, console=None):
    console = console or Console(width=max(Console().width, 110))
    base = {}
    t = Table(title="latency, batch 1 (ratios to the first model at the same thread count)")
    for col in ("model", "runtime", "threads", "init ms", "p50 ms", "p90 ms", "mean ms", "std ms", "ratio"):
        t.add_column(col, justify="left" if col in ("model", "runtime") else "right")
    for r in results:
        base.setdefault(r["threads"], r["p50_ms"])
        t.add_row(Path(r["model"]).name, r["runtime"], str(r["threads"]), f"{r['init_ms']:.1f}",
                  f"{r['p50_ms']:.2f}", f"{r['p90_ms']:.2f}", f"{r['mean_ms']:.2f}", f"{r['std_ms']:.2f}",
                  f"{r['p50_ms'] / base[r['threads']]:.2f}x")
    console.print(t)
    console.print("Absolute times hold only for the machine they were taken on; quote ratios.", markup=False)


def cmd_bench(args):
    threads = parse_threads(args.threads)
    if args.device == "android":
        results = bench_device(args.files, threads, args.warmup, args.runs, args)
    else:
        results = bench_host(args.files, threads, args.warmup, args.runs)
    if args.json:
        print(json.dumps(results))
    else:
        print_results(results)
    return 0


def add_parser(sub):
    b = sub.add_parser("bench", help="latency of exported models (host, or an Android phone over adb)")
    b.add_argument("files", nargs="+", help=".keras/.tflite/.onnx/.mlpackage files; timed interleaved")
    b.add_argument("--threads", default="1", help="comma-separated thread counts (default 1)")
    b.add_argument("--runs", type=int, default=50, help="timed runs per model (default 50)")
    b.add_argument("--warmup", type=int, default=5, help="warm-up runs (default 5)")
    b.add_argument("--json", action="store_true", help="print a JSON list of results")
    b.add_argument("--device", choices=["host", "android"], default="host", help="where to run (default host)")
    b.add_argument("--serial", help="adb serial when several phones are attached")
    b.add_argument("--delegate", choices=["xnnpack", "cpu", "gpu"], default="xnnpack", help="Android delegate")
    b.add_argument("--apk", help="demo app APK to install if it is missing")
    b.set_defaults(func=cmd_bench)
