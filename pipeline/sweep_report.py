"""sweep.json and sweep.html: one row per run x export, the Pareto plot across all
runs, and the best export under the latency and size budgets of the command line."""
import html
import time
from pathlib import Path

from edgepipe.base import atomic
from edgepipe.pipeline import plots
from edgepipe.pipeline.html_report import CSS
from edgepipe.pipeline.report import write_json
from edgepipe.pipeline.sweep import SWEEP_HTML, SWEEP_JSON


def rows_of(job, spec) -> list[dict]:
    """A finished run's exports as rows; a failed run is one row that says why."""
    base = {"run": spec.name, "model": spec.recipe.model.name, "overrides": spec.overrides,
            "folder": job.folder, "retried": job.retried,
            "ran": [k for r in job.results.values() if isinstance(r, dict)
                    for k, v in r.get("stages", {}).items() if not v.get("skipped")],
            "tasks": {label: {k: r.get(k) for k in ("host", "interval")} for label, r in job.results.items()
                      if isinstance(r, dict)}}
    bench = next((r for r in job.results.values() if isinstance(r, dict) and "report" in r), {})
    if job.error or "report" not in bench:
        return [base | {"format": None, "variant": None, "status": "run failed", "reason": job.error or "no report"}]
    report = bench["report"]
    key, rows = report["task"]["accuracy_key"], []
    for a in report["artifacts"]:
        gate = a.get("gate")
        rows.append(base | {
            "format": a["format"], "variant": a["variant"], "status": a["status"], "reason": a.get("reason") or "",
            "size_kb": a["size_bytes"] / 1024 if a.get("size_bytes") else None,
            "metric": a["task"].get(key), "metric_key": key, "metric_label": report["task"]["accuracy_label"],
            "p50_ms": a["latency"].get("p50_ms"), "p90_ms": a["latency"].get("p90_ms"),
            "gate": None if gate is None else ("pass" if gate["pass"] else "fail"),
            "gate_rule": gate and gate["rule"], "host": bench.get("host")})
    return rows


def deployable(row: dict) -> bool:
    """An export that runs, was timed and passed its gate (the Keras original is the reference)."""
    return row["status"] == "ok" and row["format"] not in (None, "keras") and row.get("gate") == "pass" \
        and row.get("p50_ms") is not None and row.get("metric") is not None


def best_under(rows: list[dict], max_latency_ms=None, max_size_kb=None) -> dict | None:
    """The most accurate deployable export within both budgets; ties go to the faster."""
    fits = [r for r in rows if deployable(r)
            and (max_latency_ms is None or r["p50_ms"] <= max_latency_ms)
            and (max_size_kb is None or r["size_kb"] <= max_size_kb)]
    return max(fits, key=lambda r: (r["metric"], -r["p50_ms"], -r["size_kb"]), default=None)


def mark_pareto(rows: list[dict]):
    cands = [r for r in rows if deployable(r)]
    front = plots.pareto_front([(r["size_kb"], r["p50_ms"], r["metric"]) for r in cands])
    for r in rows:
        r["pareto"] = False
    for r, on in zip(cands, front):
        r["pareto"] = bool(on)


def write(out: Path, name: str, rows: list[dict], budgets: dict, wall_s: float) -> dict:
    mark_pareto(rows)
    best = best_under(rows, budgets.get("max_latency_ms"), budgets.get("max_size_kb"))
    runs = sorted({r["run"] for r in rows})
    failed = sorted({r["run"] for r in rows if r["status"] == "run failed"})
    gates = sorted({f"{r['run']}: {r['format']}/{r['variant']}" for r in rows
                    if r.get("gate") == "fail" or r["status"] == "failed"})
    summary = {"name": name, "runs": len(runs), "failed_runs": failed, "failed_gates": gates,
               "budgets": budgets, "best": best and {k: best[k] for k in ("run", "format", "variant", "size_kb",
                                                                          "p50_ms", "metric", "metric_key")},
               "wall_s": round(wall_s, 1), "rows": rows}
    write_json(out / SWEEP_JSON, summary)
    render(summary, out)
    return summary


def _num(v, spec):
    return "–" if v is None else format(v, spec)


def _metric_name(rows: list[dict]) -> str:
    keys = sorted({r["metric_key"] for r in rows if r.get("metric_key")})
    return " / ".join(keys) or "task metric"


def _ran(r: dict) -> str:
    """The stages this sweep ran for the row's run, and its retries."""
    stages = r.get("ran") or []
    ran = "every stage" if {"train", "export", "verify", "bench"} <= set(stages) else (
        ", ".join(stages) or "nothing (up to date)")
    return ran + (f"; {len(r['retried'])} failed attempt(s)" if r.get("retried") else "")


def _table(rows: list[dict], best) -> str:
    head = "".join(f"<th class='l'>{c}</th>" for c in ("run", "model", "format", "variant", "status")) + "".join(
        f"<th>{c}</th>" for c in ("size KB", _metric_name(rows), "p50 ms", "p90 ms")) + \
        "<th class='l'>gate</th><th class='l'>this sweep ran</th>"
    body = []
    for r in rows:
        chosen = best is not None and all(r.get(k) == best[k] for k in ("run", "format", "variant"))
        status = html.escape(r["status"]) + (f" <span class='note'>{html.escape(r['reason'])}</span>"
                                             if r.get("reason") else "")
        gate = {"pass": "<span class='pass'>pass</span>", "fail": "<span class='fail'>FAIL</span>"}.get(
            r.get("gate"), "<span class='skip'>reference</span>" if r["format"] == "keras" else "–")
        marks = (" ★" if chosen else "") + (" ◆" if r.get("pareto") else "")
        cells = [html.escape(r["run"]) + marks, html.escape(r["model"]), html.escape(r["format"] or "–"),
                 html.escape(r["variant"] or "–"), status]
        nums = [_num(r.get("size_kb"), ".1f"), _num(r.get("metric"), ".3f"), _num(r.get("p50_ms"), ".2f"),
                _num(r.get("p90_ms"), ".2f")]
        body.append("<tr" + (" style='background:#fff8d6'" if chosen else "") + ">"
                    + "".join(f"<td class='l'>{c}</td>" for c in cells) + "".join(f"<td>{n}</td>" for n in nums)
                    + f"<td class='l'>{gate}</td><td class='l note' style='white-space:nowrap'>{html.escape(_ran(r))}</td></tr>")
    return f"<table id='sweep'><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _best_text(summary: dict) -> str:
    b, budgets = summary["best"], summary["budgets"]
    words = {"max_latency_ms": "p50 latency ≤ {:g} ms", "max_size_kb": "size ≤ {:g} KB"}
    limits = ", ".join(words[k].format(v) for k, v in budgets.items() if v is not None) or "no budget given"
    if not b:
        return f"<p id='best'><b>Best under {html.escape(limits)}:</b> no export that passed its gate fits.</p>"
    return (f"<p id='best'><b>Best under {html.escape(limits)}:</b> {html.escape(b['run'])} · "
            f"{html.escape(b['format'])} {html.escape(b['variant'])}: {b['metric_key']} {b['metric']:.3f}, "
            f"{b['p50_ms']:.2f} ms p50, {b['size_kb']:.1f} KB (★ in the table)</p>")


def pareto_svg(points: list[dict]) -> str:
    """Size and latency against the task metric, a colour per run and a marker per
    export variant; Pareto-optimal exports filled and named, the others hollow."""
    plt = plots._plt()
    runs = sorted({r["run"] for r in points})
    variants = sorted({f"{r['format']} {r['variant']}" for r in points})
    colours = plt.get_cmap("tab20" if len(runs) > 10 else "tab10")
    markers = "osD^vP*Xph"
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for r in points:
        colour = colours(runs.index(r["run"]) % colours.N)
        marker = markers[variants.index(f"{r['format']} {r['variant']}") % len(markers)]
        for ax, x in zip(axes, (r["size_kb"], r["p50_ms"])):
            ax.scatter([x], [r["metric"]], s=60, marker=marker, color=colour if r["pareto"] else "white",
                       edgecolors=colour, linewidths=1.8, zorder=3)
            if r["pareto"]:
                ax.annotate(f"{r['run']} {r['variant']}", (x, r["metric"]), textcoords="offset points",
                            xytext=(5, 4), fontsize=7)
    for v in variants:
        axes[1].scatter([], [], marker=markers[variants.index(v) % len(markers)], color="grey", label=v)
    axes[0].set_xlabel("size (KB)")
    axes[1].set_xlabel("latency p50 (ms, batch 1, 1 thread)")
    axes[0].set_ylabel(points[0]["metric_label"])
    for ax in axes:
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=8, loc="best", title="export", title_fontsize=8)
    fig.suptitle("every run's exports: size and latency vs accuracy (filled and named: Pareto-optimal; "
                 "colour: run)", fontsize=10)
    return plots._svg(fig)


def _plot(rows: list[dict]) -> str:
    points = [r for r in rows if deployable(r)]
    if not points:
        return "<p class='note'>No export has a latency, a task metric and a passed gate yet.</p>"
    return ("<figure id='pareto'>" + pareto_svg(points)
            + "<figcaption>Every gated, timed export of every run. Filled markers (◆ in the table) are "
              "Pareto-optimal: no other export is smaller, faster and at least as accurate.</figcaption></figure>")


def render(summary: dict, out: Path) -> Path:
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    failed = summary["failed_runs"] + summary["failed_gates"]
    problems = ("<ul class='note'>" + "".join(f"<li class='fail'>{html.escape(f)}</li>" for f in failed)
                + "</ul>") if failed else ""
    hosts = sorted({r["host"] for r in summary["rows"] if r.get("host")})
    page = (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>edgepipe sweep: "
            f"{html.escape(summary['name'])}</title><style>{CSS}</style></head><body>"
            f"<h1>edgepipe sweep: {html.escape(summary['name'])}</h1>"
            f"<p class='meta'>{summary['runs']} runs · {len(summary['failed_runs'])} failed · wall time "
            f"{summary['wall_s']} s · rendered {stamp} · latency timed on {html.escape(', '.join(hosts) or '–')}, "
            f"batch 1, holding every CPU of the node</p>"
            + _best_text(summary) + problems + "<section><h2>Size, accuracy and latency across runs</h2>"
            + _plot(summary["rows"]) + "</section><section><h2>Every run and export</h2>"
            + _table(summary["rows"], summary["best"]) + "</section></body></html>\n")
    return atomic.write_text(Path(out) / SWEEP_HTML, page)
