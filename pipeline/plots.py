"""Figures for report.html, returned as inline SVG or PNG data URIs (no network)."""
import base64
import io

import numpy as np

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    matplotlib.rcParams["text.parse_math"] = False  # labels are names ("$x" from a report.json), not TeX
    import matplotlib.pyplot as plt
    return plt


def _quiet_numerics():
    """Values near float's limits in a hand-edited report.json (a loss of 1e308) overflow in
    matplotlib's transforms: the plot is drawn clipped, with no numpy warning on stderr."""
    return np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore")


def _svg(fig) -> str:
    buf = io.StringIO()
    with _quiet_numerics():
        fig.savefig(buf, format="svg", bbox_inches="tight")
    _plt().close(fig)
    text = buf.getvalue()
    return text[text.index("<svg"):]  # drop the XML prolog and doctype: inline in HTML


def _png_uri(fig) -> str:
    buf = io.BytesIO()
    with _quiet_numerics():
        fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    _plt().close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def pareto_front(points: list[tuple[float, float, float]]) -> list[bool]:
    """Which (size, latency, accuracy) points no other point beats on all three
    (smaller, faster and at least as accurate, and strictly better on one)."""
    def beats(a, b):
        no_worse = a[0] <= b[0] and a[1] <= b[1] and a[2] >= b[2]
        return no_worse and (a[0] < b[0] or a[1] < b[1] or a[2] > b[2])
    return [not any(beats(q, p) for q in points if q is not p) for p in points]


def pareto_svg(rows: list[dict], accuracy_label: str) -> str:
    """rows: label, size_mb, p50_ms (None: not timed here, e.g. Core ML on Linux), accuracy.
    Size and latency against accuracy, Pareto-optimal exports filled, the others hollow;
    an untimed export appears in the size panel, and counts as slowest for the front."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    front = pareto_front([(r["size_mb"], r["p50_ms"] or float("inf"), r["accuracy"]) for r in rows])
    for i, (r, best) in enumerate(zip(rows, front)):
        color = PALETTE[i % len(PALETTE)]
        for ax, x in zip(axes, (r["size_mb"], r["p50_ms"])):
            if x is None:
                continue
            ax.scatter([x], [r["accuracy"]], s=70, color=color if best else "white", edgecolors=color,
                       linewidths=2, label=r["label"] + (" (Pareto)" if best else ""), zorder=3)
            ax.annotate(r["label"], (x, r["accuracy"]), textcoords="offset points", xytext=(6, 4), fontsize=8)
    axes[0].set_xlabel("size (MB)")
    axes[1].set_xlabel("latency p50 (ms, 1 thread, this host)")
    axes[0].set_ylabel(accuracy_label)
    for ax in axes:
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=8, loc="best")
    fig.suptitle("size vs accuracy vs latency (filled: Pareto-optimal)", fontsize=10)
    return _svg(fig)


def layer_error_svg(layers: list[dict], noise_floor: float) -> str:
    """Horizontal bars of each int8 layer's RMSE in units of its quantization step."""
    plt = _plt()
    names = [r["layer"] for r in layers]
    values = np.array([r["rmse_per_scale"] for r in layers], np.float64)
    fig, ax = plt.subplots(figsize=(8, max(2.5, 0.16 * len(layers) + 1)))
    colors = ["#d62728" if v > 2 * noise_floor else "#1f77b4" for v in values]
    ax.barh(range(len(names)), np.nan_to_num(values), color=colors)
    ax.axvline(noise_floor, color="k", ls="--", lw=1, label=f"rounding noise ({noise_floor:.2f} step)")
    ax.set_yticks(range(len(names)), names, fontsize=6)
    ax.invert_yaxis()
    ax.set_xlabel("RMSE vs float, in quantization steps (red: > 2x rounding noise)")
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title("per-layer int8 error (TFLite QuantizationDebugger)", fontsize=10)
    return _svg(fig)


def latency_svg(samples: dict[str, list[float]]) -> str:
    """One box per runnable artifact, every timed run as a dot."""
    plt = _plt()
    labels = list(samples)
    fig, ax = plt.subplots(figsize=(8, 0.5 * len(labels) + 1.5))
    data = [samples[k] for k in labels]
    ax.boxplot(data, vert=False, showfliers=False, widths=0.6)
    rng = np.random.default_rng(0)
    for i, d in enumerate(data, start=1):
        d = _some(d, rng)
        ax.scatter(d, i + rng.uniform(-0.15, 0.15, len(d)), s=6, alpha=0.5, color=PALETTE[(i - 1) % len(PALETTE)])
    ax.set_yticks(range(1, len(labels) + 1), labels, fontsize=8)
    ax.set_xlabel("ms per inference (batch 1)")
    ax.set_title("latency distribution (interleaved runs)", fontsize=10)
    ax.grid(alpha=0.3, axis="x")
    return _svg(fig)


def _some(values, rng, most: int = 2000):
    """At most ``most`` of the values, for dots: a million timed runs would make a 100 MB page."""
    values = np.asarray(values, np.float64)
    return values if len(values) <= most else rng.choice(values, most, replace=False)


def loss_svg(loss: list[float], val_loss: list | None = None) -> str:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 2.6))
    epochs = np.arange(1, len(loss) + 1)
    marker = "o" if len(loss) <= 200 else None  # a marker per epoch, while they can be told apart
    ax.plot(epochs, loss, marker=marker, ms=3, label="training")
    if val_loss and any(v is not None for v in val_loss):
        ax.plot(np.arange(1, len(val_loss) + 1), [np.nan if v is None else v for v in val_loss],  # its own epochs marker=marker and "s", ms=3,
                label="validation (deployed size)")
        ax.legend(fontsize=8)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    return _svg(fig)


def scans_png(samples: list[dict]) -> str:
    """Rows of photo (found quad in green, truth dashed), edge map (with the page-region
    map's 0.5 contour in cyan, for a model that has one) and rectified page."""
    plt = _plt()
    fig, axes = plt.subplots(len(samples), 3, figsize=(9, 3 * len(samples)), squeeze=False)
    for row, s in zip(axes, samples):
        row[0].imshow(s["photo"])
        quad = np.vstack([s["truth"], s["truth"][:1]])
        row[0].plot(quad[:, 0], quad[:, 1], "w--", lw=1)
        if s["corners"] is not None:
            found = np.vstack([s["corners"], s["corners"][:1]])
            row[0].plot(found[:, 0], found[:, 1], "-", color="lime", lw=2)
        row[0].set_title(s["title"], fontsize=8)
        row[1].imshow(s["edges"], cmap="magma", vmin=0, vmax=1)
        if s.get("region") is not None:
            row[1].contour(s["region"], levels=[0.5], colors="cyan", linewidths=0.8)
        row[1].set_title("edge map" + (" + page region" if s.get("region") is not None else ""), fontsize=8)
        if s["page"] is not None:
            row[2].imshow(s["page"])
        row[2].set_title("rectified page" if s["page"] is not None else "no document found", fontsize=8)
        for ax in row:
            ax.axis("off")
    return _png_uri(fig)


def confusion_svg(matrix: list[list[int]], labels: list[str] | None = None) -> str:
    plt = _plt()
    m = np.asarray(matrix)
    labels = labels or [str(i) for i in range(len(m))]
    side = min(0.45 * len(m), 12)  # many classes: a heat map, counts only while they can be read
    fig, ax = plt.subplots(figsize=(side + 2.5, side + 2))
    ax.imshow(m.astype(np.float64), cmap="Blues")  # counts past int64 (a hand-edited report) are objects
    for (i, j), v in np.ndenumerate(m if len(m) <= 30 else np.zeros((0, 0))):
        if v:
            ax.text(j, i, str(v), ha="center", va="center", fontsize=7, color="white" if v > m.max() / 2 else "black")
    if len(m) <= 30:
        ax.set_xticks(range(len(m)), labels, fontsize=7)
        ax.set_yticks(range(len(m)), labels, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    return _svg(fig)
