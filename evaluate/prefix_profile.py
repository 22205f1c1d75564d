"""Where TFLite time goes, by timing prefixes of the graph.

LiteRT's Python interpreter has no per-op timer. Instead the (BN-folded) Keras
model is cut after successive layers; each prefix (with every tensor still
needed downstream as an output) is converted to float TFLite, and all prefixes
are timed interleaved in one fresh process. The difference between consecutive
prefixes is the cost of the layers in between. Deltas carry timing noise (a few
percent of a prefix's time); the per-type totals are what to read. At one
thread each segment and op type also gets its roofline bound (the same
per-layer bound as ``bench``'s ``x roofline``), so the report shows where time
is lost, not only where it is spent.
"""
from collections import defaultdict
from pathlib import Path

import numpy as np

WEIGHTED = ("Conv2D", "DepthwiseConv2D", "Conv2DTranspose", "Dense", "SeparableConv2D")


def layer_kind(layer) -> str:
    """A short op description: type, kernel and stride for convolutions."""
    name = type(layer).__name__
    if name in ("Conv2D", "DepthwiseConv2D", "Conv2DTranspose"):
        k, s = layer.kernel_size, layer.strides
        kind = "Conv2D (grouped)" if name == "Conv2D" and getattr(layer, "groups", 1) > 1 else name
        return f"{kind} {k[0]}x{k[1]}" + (f" /{s[0]}" if s[0] > 1 else "")
    return name


def prefix_model(model, k: int):
    """Layers ``[0..k]`` (topological order) with every tensor that a later layer
    or the model's output still needs as an output."""
    from edgepipe.base.backend import keras
    kept = model.layers[: k + 1]
    names = {layer.name for layer in kept}
    from edgepipe.mobile_models.graph import consumers
    readers = {name: {r.name for r in rs} for name, rs in consumers(model).items()}
    finals = {t.node.layer.name for t in model.outputs}
    outs = [layer.output for layer in kept if type(layer).__name__ != "InputLayer"
            and (layer.name in finals or not readers.get(layer.name, set()) <= names)]
    return keras.Model(model.inputs, outs, name=f"prefix_{k}")


def cut_points(model, max_cuts: int = 48) -> list[int]:
    """Indices after which to cut: every weighted layer, thinned to ``max_cuts``."""
    idx = [i for i, layer in enumerate(model.layers) if type(layer).__name__ in WEIGHTED]
    idx = idx[:-1] + [len(model.layers) - 1]  # the last prefix is the whole model
    if len(idx) > max_cuts:
        keep = np.linspace(0, len(idx) - 1, max_cuts).round().astype(int)
        idx = [idx[i] for i in sorted(set(keep))]
    return idx


def profile_prefixes(model, workdir: Path, threads: int = 1, runs: int = 30, warmup: int = 5,
                     max_cuts: int = 48, progress=None) -> dict:
    """Segment and per-op-type latency from prefix timings (model should be BN-folded)."""
    from edgepipe.convert import tflite
    from edgepipe.evaluate.latency import measure_host
    from edgepipe.mobile_models.profile import profile_model, roofline_terms
    cuts = cut_points(model, max_cuts)
    paths = {}
    for k in cuts if progress is None else progress(cuts):
        paths[f"p{k:04d}"] = str(tflite.write(prefix_model(model, k), workdir / f"prefix_{k:04d}.tflite"))
    profile = profile_model(model)
    full = f"p{cuts[-1]:04d}"  # the whole model: its result carries the host's roofs
    stats = measure_host(paths, threads, warmup, runs, layer_costs={full: roofline_terms(profile)})
    bounds = _layer_bounds(profile, stats[full]["options"]) if threads == 1 else {}
    cumulative = monotone([stats[f"p{k:04d}"]["p50_ms"] for k in cuts])
    segments, previous, start = [], 0.0, 0
    for k, t in zip(cuts, cumulative):
        layers = [layer for layer in model.layers[start:k + 1] if type(layer).__name__ != "InputLayer"]
        segments.append({"first": layers[0].name if layers else "", "last": model.layers[k].name,
                         "kinds": [layer_kind(layer) for layer in layers], "cumulative_ms": t,
                         "ms": t - previous}
                        | ({"bound_ms": sum(bounds.get(layer.name, 0.0) for layer in layers)} if bounds else {}))
        previous, start = t, k + 1
    return {"segments": segments, "by_kind": by_kind(segments), "total_ms": previous,
            "threads": threads, "runs": runs}


def _layer_bounds(profile, options) -> dict:
    """Layer name -> its one-thread roofline time (ms) on this host."""
    from edgepipe.evaluate.latency import layer_bound_ms
    from edgepipe.mobile_models.profile import FUSED_OR_VIEW
    peak, curve = options["host_peak_gflops_per_thread"], options["host_copy_gbps_by_bytes"]
    return {r["name"]: layer_bound_ms(r["macs"], 4 * r["mac"], peak, curve)
            for r in profile["layers"] if r["kind"] not in FUSED_OR_VIEW}


def monotone(times: list[float]) -> list[float]:
    """The closest non-decreasing sequence (pool-adjacent-violators): a longer
    prefix cannot be faster, so a dip is timing noise, spread over its neighbours."""
    blocks = []  # [mean, count]
    for t in times:
        blocks.append([t, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            (m2, n2), (m1, n1) = blocks.pop(), blocks.pop()
            blocks.append([(m1 * n1 + m2 * n2) / (n1 + n2), n1 + n2])
    return [m for m, n in blocks for _ in range(n)]


def by_kind(segments) -> list[dict]:
    """Each segment's time (and bound, where known) to the weighted op that
    dominates it (a conv carries its fused bias/activation), else split evenly
    over the segment's layers."""
    totals, bounds = defaultdict(float), defaultdict(float)
    for s in segments:
        weighted = [k for k in s["kinds"] if k.split()[0] in WEIGHTED or k.startswith("Conv2D (grouped)")]
        owners = weighted or s["kinds"] or ["(input)"]
        for kind in owners:
            totals[kind] += s["ms"] / len(owners)
            bounds[kind] += s.get("bound_ms", 0.0) / len(owners)
    total = sum(totals.values()) or 1.0
    known = all("bound_ms" in s for s in segments)
    return [{"kind": k, "ms": v, "share": v / total} | ({"bound_ms": bounds[k]} if known else {})
            for k, v in sorted(totals.items(), key=lambda kv: -kv[1])]


def time_lost(segments, top: int = 6) -> list[dict]:
    """The segments furthest above their roofline bound, in ms: where to look first."""
    return sorted((s for s in segments if "bound_ms" in s), key=lambda s: s["bound_ms"] - s["ms"])[:top]
