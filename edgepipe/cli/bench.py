"""``edgepipe bench``: host latency over the shared runners, or a phone over adb."""
import json
from pathlib import Path

from rich.table import Table

from edgepipe.base.errors import EdgePipeError
from edgepipe.cli.args import add_trust, count, int_range, positive, positive_int


def parse_threads(text: str) -> list[int]:
    """'1,4' -> [1, 4]. An empty item ('1,,2') or a repeat is a typo, not a request."""
    items = [t.strip() for t in text.split(",")]
    if not all(t.isdigit() and t.isascii() for t in items):
        raise EdgePipeError(f"--threads takes a comma-separated list of positive integers, got '{text}'")
    threads = [int(t) for t in items]
    if min(threads) < 1:
        raise EdgePipeError(f"--threads needs positive integers, got '{text}'")
    if len(set(threads)) < len(threads):
        raise EdgePipeError(f"--threads names a thread count twice: '{text}'")
    if max(threads) > MAX_THREADS:  # each runtime spawns them all: 20000 threads hang the machine
        raise EdgePipeError(f"--threads {max(threads)}: edgepipe times at most {MAX_THREADS} threads")
    return threads


MAX_THREADS = 256


def model_work(path, trust: bool = False) -> tuple[int | None, list | None]:
    """(mult-adds, per-layer roofline terms): from the profiler for a tf_keras model;
    else mult-adds alone, counted on the TFLite graph (a .tflite; a Keras 3 file or a
    SavedModel signature converted in memory), or as the model card states them, or
    for an ONNX file without a card, counted on its graph."""
    path = Path(path)
    if path.suffix in (".keras", ".h5") or (path / "saved_model.pb").is_file():
        from edgepipe.base.modelio import load_model
        from edgepipe.convert.graphio import is_serving
        model = load_model(path, trust)
        if is_serving(model):  # no tf_keras layers for the profiler to read
            return _tflite_macs(lambda: _converted(model)), None
        from edgepipe.convert.fold import export_graph, roofline_graph
        from edgepipe.mobile_models.profile import profile_model, roofline_terms
        return profile_model(model)["macs"], roofline_terms(profile_model(roofline_graph(export_graph(model))))
    if path.suffix == ".tflite":
        return _tflite_macs(path.read_bytes), None
    macs = _card_macs(path)
    return (_onnx_macs(path) if macs is None and path.suffix == ".onnx" else macs), None


def _card_macs(path: Path) -> int | None:
    """The mult-adds a model card states: the export's own (embedded or ``<file>.model_card.json``),
    else the run's ``model_card.json`` beside it when that card lists this file among its
    artifacts (a user's own model dropped into a run folder is not the run's model)."""
    from edgepipe.convert.inputspec import bundle_card
    from edgepipe.pipeline.cards import run_card_of
    cards = []
    for read in (lambda: bundle_card(path), lambda: run_card_of(path)):
        try:
            cards.append(read())
        except Exception:  # noqa: BLE001  no card, or not one: latency needs no MACs
            pass
    found = [c.get("macs") for c in cards if isinstance(c, dict)]
    return next((m for m in found if isinstance(m, int) and not isinstance(m, bool)), None)


def _onnx_macs(path: Path) -> int | None:
    """Mult-adds counted on an ONNX file's graph; None where it cannot be read (the
    runner reports an unreadable file)."""
    import onnx
    from edgepipe.convert.onnx_macs import count_macs
    try:
        return count_macs(onnx.load(str(path), load_external_data=False))  # shapes are enough
    except Exception:  # noqa: BLE001  onnx's many decode errors
        return None


def _converted(model) -> bytes:
    from edgepipe.convert.tflite import to_tflite_bytes
    return to_tflite_bytes(model)


def _tflite_macs(flatbuffer) -> int | None:
    """Mult-adds counted on the TFLite graph ``flatbuffer()`` returns; None where there is
    none (latency needs no MACs, and a file the runner cannot read is its error to report)."""
    from edgepipe.convert.tflite_macs import count_macs
    try:
        return count_macs(flatbuffer())
    except Exception:  # noqa: BLE001  the converter's and the flatbuffer reader's many errors
        return None


def bench_host(files, threads, args) -> list[dict]:
    from edgepipe.evaluate.latency import measure_host
    for f in files:
        if not Path(f).exists():
            raise EdgePipeError(f"model not found: {f}")
    work = {f: model_work(f, args.trust_model) for f in files}
    options = {"batch": args.batch, "xnnpack": not args.no_xnnpack, "budget_s": args.budget_s,
               "until_stable": args.until_stable, "macs": {str(i): work[f][0] for i, f in enumerate(files)},
               "layer_costs": {str(i): work[f][1] for i, f in enumerate(files) if work[f][1]},
               "compute_units": args.compute_units,
               "trust": args.trust_model}
    results = []
    for t in threads:  # keyed by position: a file named twice is timed twice (an A/A check of the noise)
        stats = measure_host({str(i): str(Path(f).resolve()) for i, f in enumerate(files)}, t, args.warmup,
                             args.runs, **options)
        results += [stats[str(i)] | {"model": f} for i, f in enumerate(files)]
    return results


def bench_device(files, threads, args) -> list[dict]:
    from edgepipe.evaluate.android import Adb, bench_android, pick_device
    if args.check:  # no phone: say so before preparing golden inputs
        pick_device(Adb(), args.serial)
    results = []
    for f in files:
        golden, host = _golden(f) if args.check else (None, None)
        for t in threads:
            r = bench_android(f, t, args.delegate, args.warmup, args.runs, args.serial, args.apk, golden=golden)
            serial, raw = r.pop("serial"), r.pop("golden_outputs", None)
            if golden:
                from edgepipe.evaluate.android_check import check_device
                r["parity"] = check_device(f, host, raw, args.delegate)
            results.append(r | {"model": f, "options": r.get("options", {}) | {"serial": serial}})
    return results


def _golden(model):
    """Golden inputs for the phone and this host's outputs on them."""
    from edgepipe.evaluate.android_check import golden_inputs, host_outputs
    from edgepipe.convert.formats import format_of
    if not Path(model).is_file() or format_of(model) != "tflite":
        raise EdgePipeError(f"{model}: on-device benchmark needs an existing .tflite file")
    golden = golden_inputs(model)
    return golden, host_outputs(model, golden)


def print_parity(results, console) -> bool:
    """One line per output of each --check result; True when every gate holds."""
    ok = True
    for r in results:
        if not r.get("parity"):
            continue
        p = r["parity"]
        ok &= bool(p["pass"])
        for name, m in p["outputs"].items():
            task = ""
            if m.get("edge_f_vs_host") is not None:
                corners = m.get("corner_err_max_pct")
                task = (f", edge F vs host {m['edge_f_vs_host']:.4f}, quads agree {m['quads_agree']:.0%}"
                        + (f", corners within {corners:.2f}%" if corners is not None else ""))
            elif "top1_agreement" in m:
                task = f", top-1 agreement {m['top1_agreement']:.1%}"
            console.print(f"parity on the phone, {Path(r['model']).name} x{r['threads']} {name} "
                          f"({p['golden_inputs']} golden inputs, {p['gate_variant']} gate): max abs "
                          f"{m['max_abs']:.3g}, PSNR {m['psnr_db']:.1f} dB{task}; {m['gate']} "
                          f"{'pass' if m['pass'] else 'FAIL'}", markup=False)
    return ok


def print_results(results, baseline: int = 0, console=None):
    from edgepipe.pipeline.report import wide_console
    console = console or wide_console()
    base_model = results[baseline]["model"]
    base = {r["threads"]: r["p50_ms"] for r in results if r["model"] == base_model}
    t = Table(title=f"latency, batch {results[0].get('batch', 1)} — ratio = p50 / p50 of "
                    f"{Path(results[baseline]['model']).name} at the same threads")
    for col in ("model", "runtime", "thr", "init ms", "first ms", "p50 ms", "p90 ms", "std ms", "ratio",
                "GFLOP/s", "x compute", "x roofline", "RSS +MB"):
        t.add_column(col, justify="left" if col in ("model", "runtime") else "right",
                     min_width=26 if col == "model" else None, overflow="fold")
    for r in results:
        ratio = r["p50_ms"] / base[r["threads"]] if r["threads"] in base else float("nan")
        opt = lambda k, f: format(r[k], f) if r.get(k) is not None else "-"  # noqa: E731
        t.add_row(Path(r["model"]).name, r["runtime"], str(r["threads"]), f"{r['init_ms']:.1f}",
                  f"{r['first_ms']:.1f}", f"{r['p50_ms']:.2f}", f"{r['p90_ms']:.2f}", f"{r['std_ms']:.2f}",
                  f"{ratio:.2f}", opt("achieved_gflops", ".1f"), opt("compute_bound_ratio", ".2f"),
                  opt("roofline_ratio", ".2f"), opt("rss_delta_mb", ".1f"))
    console.print(t)
    if any(r.get("compute_bound_ratio") for r in results):
        console.print("x compute = p50 / (mult-adds at the host's one-thread matmul peak); x roofline adds the "
                      "memory roof: per layer, its traffic at the measured copy bandwidth if that is longer "
                      "(.keras files, 1 thread)", markup=False)
    for note in sorted({n for r in results for n in r.get("notes", [])}):
        console.print(f"note: {note}", markup=False)
    from edgepipe.convert.formats import format_of
    tflites = sorted({r["model"] for r in results if format_of(r["model"]) == "tflite"})
    if tflites:
        from edgepipe.evaluate.opprofile import PER_OP_UNAVAILABLE, tflite_op_histogram
        from edgepipe.evaluate.gpucompat import describe
        gpu = {r["model"]: r["options"].get("gpu_delegate") for r in results if r["options"].get("gpu_delegate")}
        for f in tflites:
            ops = ", ".join(f"{k} x{v}" for k, v in tflite_op_histogram(f).items())
            console.print(f"ops in {Path(f).name}: {ops}", markup=False)
            if f in gpu:
                console.print(f"{Path(f).name}: {describe(gpu[f])}", markup=False, soft_wrap=True)
        console.print(PER_OP_UNAVAILABLE + "; or `edgepipe bench MODEL.keras --per-op` (prefix timing)",
                      markup=False)
    r0 = results[0]
    console.print(f"{r0.get('device', '')} | {r0.get('cpu', '')} | {r0.get('os', '')}. Absolute times hold "
                  f"only for this machine; quote ratios.", markup=False)


def per_op(files, threads, args):
    """``--per-op``: prefix-timing profile of each Keras model's float TFLite export."""
    import tempfile

    from rich.progress import track

    from edgepipe.convert.fold import export_graph
    from edgepipe.evaluate.prefix_profile import profile_prefixes
    from edgepipe.base.modelio import load_keras
    from edgepipe.pipeline.report import wide_console
    console = wide_console()
    for f in files:
        if Path(f).suffix != ".keras":
            raise EdgePipeError(f"--per-op cuts the Keras graph: give the .keras original, not {Path(f).name}")
        model = export_graph(load_keras(f, trust=args.trust_model))
        with tempfile.TemporaryDirectory() as tmp:
            result = profile_prefixes(model, Path(tmp), threads[0], args.runs, args.warmup,
                                      progress=lambda cuts: track(cuts, "converting prefixes", console=console))
        print_per_op(console, Path(f).name, result)
    return 0


def print_per_op(console, name: str, result: dict):
    """The per-op-type table and the segments that lose the most time."""
    from edgepipe.evaluate.prefix_profile import time_lost
    bounded = all("bound_ms" in k for k in result["by_kind"])
    t = Table(title=f"where TFLite float time goes in {name} ({result['threads']} thread, prefix timing; "
                    f"total {result['total_ms']:.2f} ms)")
    for col in ("op", "ms", "share") + (("roofline ms", "x roofline") if bounded else ()):
        t.add_column(col, justify="left" if col == "op" else "right")
    for k in result["by_kind"]:
        bound = (f"{k['bound_ms']:.3f}", f"{k['ms'] / k['bound_ms']:.2f}" if k["bound_ms"] else "-") if bounded else ()
        t.add_row(k["kind"], f"{k['ms']:.3f}", f"{k['share']:.1%}", *bound)
    console.print(t)
    top = sorted(result["segments"], key=lambda s: -s["ms"])[:5]
    console.print("slowest segments: " + "; ".join(f"{s['first']}..{s['last']} {s['ms']:.2f} ms" for s in top),
                  markup=False)
    if bounded:
        lost = time_lost(result["segments"])
        console.print("most time above the roofline bound: " + "; ".join(
            f"{s['first']}..{s['last']} {s['ms']:.2f} ms vs {s['bound_ms']:.2f}" for s in lost), markup=False)
    else:
        console.print("(roofline bounds are one-thread only)")


def cmd_bench(args):
    from edgepipe.evaluate.bench_schema import validate
    threads = parse_threads(args.threads)
    if not 0 <= args.baseline < len(args.files):  # before any model is timed
        raise EdgePipeError(f"--baseline must index one of the {len(args.files)} models (0-based)")
    if args.check and args.device != "android":
        raise EdgePipeError("--check compares a phone's outputs with this host's: use it with --device android")
    phone_only = [f"--{name}" for name, given in (("delegate", args.delegate != "xnnpack"), ("serial", args.serial),
                                                   ("apk", args.apk)) if given]
    if phone_only and args.device != "android":  # else the host is timed as if they were not there
        raise EdgePipeError(f"{', '.join(phone_only)} set{'s' if len(phone_only) == 1 else ''} up a phone: use "
                            "with --device android (on this host, --no-xnnpack times TFLite's plain CPU kernels)")
    if args.per_op:
        return per_op(args.files, threads, args)
    if args.device == "android":
        results = bench_device(args.files, threads, args)
    else:
        results = bench_host(args.files, threads, args)
    results = [r.model_dump() for r in validate(results)]
    if args.json:
        print(json.dumps(results))
        return 0 if all(r["parity"]["pass"] for r in results if r.get("parity")) else 1
    from edgepipe.pipeline.report import wide_console
    console = wide_console()
    print_results(results, args.baseline, console)
    return 0 if print_parity(results, console) else 1  # a failed gate exits 1


def add_parser(sub):
    b = sub.add_parser("bench", help="latency of exported models (host, or an Android phone over adb)")
    b.add_argument("files", nargs="+", help=".keras/.tflite/.onnx/.mlpackage files; timed interleaved")
    b.add_argument("--threads", default="1", help="comma-separated thread counts, e.g. 1,2,4 (default 1)")
    b.add_argument("--runs", type=int_range(1, 1_000_000), default=50, help="timed runs per model; the cap with --until-stable")
    b.add_argument("--warmup", type=int_range(0, 100_000), default=5, help="warm-up runs (default 5)")
    b.add_argument("--batch", type=int_range(1, 4096), default=1, help="batch size (default 1)")
    b.add_argument("--budget-s", type=positive, help="seconds of timed runs instead of a run count "
                   "(after the warm-up runs)")
    b.add_argument("--until-stable", action="store_true", help="stop when every median moves < 1%%")
    b.add_argument("--no-xnnpack", action="store_true", help="TFLite without the XNNPACK delegate")
    b.add_argument("--baseline", type=count, default=0, help="index of the model ratios are taken to")
    b.add_argument("--compute-units", choices=["cpu", "cpu_gpu", "all"], default="all",
                   help="Core ML compute units (macOS only)")
    b.add_argument("--json", action="store_true", help="print a JSON list of results")
    b.add_argument("--per-op", action="store_true", help="time prefixes of a .keras model's TFLite export: "
                   "where the time goes, by op type")
    b.add_argument("--device", choices=["host", "android"], default="host", help="where to run (default host)")
    b.add_argument("--serial", help="adb serial when several phones are attached")
    b.add_argument("--delegate", choices=["xnnpack", "cpu", "gpu"], default="xnnpack", help="Android delegate")
    b.add_argument("--apk", help="demo app APK to install if it is missing")
    b.add_argument("--check", action="store_true", help="with --device android: also run golden inputs on the "
                   "phone and gate its outputs against this host's LiteRT run (max abs, PSNR, task metric)")
    add_trust(b)
    b.set_defaults(func=cmd_bench)
