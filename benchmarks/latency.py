"""The headline latency table: every zoo backbone x {Keras, TFLite float, TFLite
int8, ONNX Runtime} at one thread, batch 1, plus our MobileNetV2 against
keras.applications' MobileNetV2 exported by the same pipeline.

    .venv/bin/python benchmarks/latency.py [--runs 30] [--rounds 3] [--out runs/bench-latency]

Weights are random (latency does not depend on them); classifiers run at 224,
HED at 256. Models of one backbone are timed interleaved in one fresh process;
each backbone is timed in ``--rounds`` such processes and its least disturbed
round is kept.
Ratios are what to quote; absolute times hold only for this machine.
"""
import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edgepipe import mobile_models  # noqa: E402
from edgepipe.convert.fold import export_graph, roofline_graph  # noqa: E402
from edgepipe.convert.formats import VARIANTS, export  # noqa: E402
from edgepipe.evaluate.latency import measure_host  # noqa: E402
from edgepipe.base.backend import keras  # noqa: E402
from edgepipe.mobile_models.hed import inference_model  # noqa: E402
from edgepipe.mobile_models.profile import profile_model, roofline_terms  # noqa: E402
from edgepipe.base.modelio import save_keras  # noqa: E402

BACKBONES = {
    "mobilenet_v1": {}, "mobilenet_v2": {}, "shufflenet_v1": {"groups": 3}, "shufflenet_v2": {"scale": 1.0},
    "hed_mobilenet_v2": {}, "hed_vgg": {},
}
FORMATS = ("tflite_float32", "tflite_int8", "onnx_float32")


def build(name):
    if name == "keras_apps_mobilenet_v2":
        return keras.applications.MobileNetV2(weights=None, input_shape=(224, 224, 3))
    model = mobile_models.build(name, **BACKBONES[name])
    return inference_model(model) if mobile_models.entry(name).task == "edges" else model


def export_all(name, model, folded, out: Path) -> dict:
    """The Keras original and every format, converted from ``folded`` (its export graph)."""
    shape = model.input_shape[1:]
    calib = np.random.default_rng(0).random((32, *shape), np.float32)
    files = {"keras": save_keras(model, out / f"{name}.keras")}
    for v in FORMATS:
        files[v] = export(VARIANTS[v], folded, out / f"{name}{VARIANTS[v].suffix}", calib)
    return {k: str(p) for k, p in files.items()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--out", default="runs/bench-latency")
    ap.add_argument("--per-op", default="hed_mobilenet_v2",
                    help="backbone whose TFLite float time is broken down by op type (prefix timing); '' for none")
    ap.add_argument("--rounds", type=int, default=3,
                    help="time every backbone this many times, round robin; keep its least disturbed round")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    files, work = {}, {}
    for name in [*BACKBONES, "keras_apps_mobilenet_v2"]:
        model = build(name)
        macs = profile_model(model)["macs"]
        exported = export_graph(model)
        terms = roofline_terms(profile_model(roofline_graph(exported)))  # the least work an export does
        files[name] = export_all(name, model, exported, out)
        work[name] = {"macs": {k: macs for k in files[name]}, "layer_costs": {k: terms for k in files[name]}}
    rows = least_disturbed(files, work, args.runs, args.rounds)
    # the two MobileNetV2 exports head to head, interleaved in one process
    pair = measure_host({"ours": files["mobilenet_v2"]["tflite_float32"],
                         "keras_applications": files["keras_apps_mobilenet_v2"]["tflite_float32"]},
                        1, 5, 3 * args.runs)
    breakdown = per_op(args.per_op, out, args.runs) if args.per_op else None
    (out / "latency.json").write_text(json.dumps({"backbones": rows, "mobilenet_v2_pair": pair,
                                                  "per_op": breakdown}, indent=1))
    print_table(rows, pair)
    if breakdown:
        print_per_op(args.per_op, breakdown, rows[args.per_op])


def least_disturbed(files, work, runs: int, rounds: int) -> dict:
    """Backbone -> the round (one fresh process, its models interleaved) with the
    lowest summed p50. This host is a shared VM: a neighbour's burst can slow one
    process by a third, and it slows every model of that round alike, so every
    ratio in a row still comes from one process."""
    rows = {}
    for r in range(rounds):
        for name in files:
            got = measure_host(files[name], 1, 5, runs, **work[name])
            total = sum(v["p50_ms"] for v in got.values())
            if name not in rows or total < sum(v["p50_ms"] for v in rows[name].values()):
                rows[name] = got
            print(f"round {r + 1}/{rounds} {name}: " + ", ".join(f"{k} {v['p50_ms']:.2f} ms" for k, v in got.items()),
                  flush=True)
    return rows


def per_op(name, out: Path, runs: int) -> dict:
    """Where one backbone's TFLite float time goes: prefixes of its folded graph, timed."""
    from edgepipe.evaluate.prefix_profile import profile_prefixes
    work = out / f"prefixes_{name}"
    work.mkdir(exist_ok=True)
    return profile_prefixes(export_graph(build(name)), work, runs=runs)


def print_per_op(name, breakdown, row):
    from edgepipe.cli.bench import print_per_op as table
    from edgepipe.pipeline.report import wide_console
    f = row["tflite_float32"]
    print(f"\n{name}: full-model TFLite float p50 {f['p50_ms']:.2f} ms; compute-bound floor "
          f"{f['compute_bound_ms']:.2f} ms, roofline bound {f['roofline_bound_ms']:.2f} ms")
    table(wide_console(), name, breakdown)


def print_table(rows, pair):
    head = f"{'backbone':26} {'MMACs':>7} {'keras':>8} {'tflite':>8} {'int8':>8} {'onnx':>8} " \
           f"{'keras/tfl':>9} {'int8/fp':>8} {'tfl x comp':>10} {'tfl x roof':>10}"
    print("\np50 ms at 1 thread, batch 1\n" + head + "\n" + "-" * len(head))
    for name, r in rows.items():
        k, f, i, o = (r[x]["p50_ms"] for x in ("keras", "tflite_float32", "tflite_int8", "onnx_float32"))
        print(f"{name:26} {r['keras']['macs'] / 1e6:7.1f} {k:8.2f} {f:8.2f} {i:8.2f} {o:8.2f} "
              f"{k / f:9.2f} {i / f:8.2f} {r['tflite_float32']['compute_bound_ratio']:10.2f} "
              f"{r['tflite_float32']['roofline_ratio']:10.2f}")
    ours, theirs = pair["ours"], pair["keras_applications"]
    print(f"\nour MobileNetV2 TFLite / keras.applications MobileNetV2 TFLite (interleaved): "
          f"{ours['p50_ms'] / theirs['p50_ms']:.3f} (p50 {ours['p50_ms']:.2f} vs {theirs['p50_ms']:.2f} ms)")
    print(f"host single-core matmul peak: {ours['options']['host_peak_gflops_per_thread']:.1f} GFLOP/s; "
          f"{ours['cpu']}")
    fp = next(iter(rows.values()))["tflite_float32"]["options"]["host_copy_gbps_by_bytes"]
    print("one-thread copy bandwidth: " + ", ".join(f"{b / 2**20:.1f} MiB moved {g:.0f} GB/s" for b, g in fp))
    print("x comp: p50 over all mult-adds at that peak. x roof: p50 over the roofline bound, per layer the "
          "longer of its compute at peak and its traffic at the copy bandwidth for that traffic.")
    print("int8 on x86 is not representative of ARM phones.")


if __name__ == "__main__":
    main()
