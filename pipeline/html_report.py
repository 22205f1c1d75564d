"""report.html: one self-contained page (inline SVG and PNG, no scripts, no
network) with the summary table, the size/accuracy/latency Pareto plot, per-layer
int8 error, the latency distribution and, for HED, sample scans."""
import html
import time
from functools import lru_cache
from pathlib import Path

import cv2

from edgepipe.base import atomic
from edgepipe.pipeline import plots

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1100px;color:#222}
h1{font-size:1.6em;margin-bottom:0}.meta{color:#666;font-size:.9em}
table{border-collapse:collapse;font-size:.85em;margin:1em 0}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}th{background:#f3f3f3}
td.l,th.l{text-align:left}.pass{color:#1a7f37;font-weight:600}.fail{color:#c62828;font-weight:600}
.skip{color:#888}figure{margin:1.5em 0}figcaption{color:#555;font-size:.85em;margin-top:.3em}
section{margin-top:2em}.note{color:#555;font-size:.85em}
"""


def _num(v, spec):
    """A metric cell; report.json stores an infinite one as the string "inf"."""
    if isinstance(v, str) and v:
        return html.escape(v)
    return format(v, spec) if isinstance(v, (int, float)) and not isinstance(v, bool) else "–"


def _gate_cell(a: dict) -> str:
    gate = a.get("gate")
    if a["status"] != "ok":
        return f'<span class="skip">{html.escape(a["status"])}</span>'
    if not gate:
        return '<span class="skip">reference</span>'
    cls, word = ("pass", "pass") if gate["pass"] else ("fail", "FAIL")
    return f'<span class="{cls}">{word}</span> <span class="note">{html.escape(gate["rule"])}</span>'


def _gpu_cell(a: dict) -> str:
    """TFLite only: does the GPU delegate take every op (evaluate.gpucompat)?"""
    gpu = a.get("gpu_delegate")
    if not gpu:
        return '<span class="skip">–</span>'
    if gpu["compatible"]:
        return f'<span class="pass">all {gpu["ops"]} ops</span>'
    ops = ", ".join(f'{u["op"]} x{u["count"]}' for u in gpu["unsupported"])
    why = "; ".join(f'{u["op"]}: {u["why"]}' for u in gpu["unsupported"])
    return f'<span class="fail" title="{html.escape(why)}">not {html.escape(ops)}</span>'


def summary_table(artifacts: list[dict], task_columns: list) -> str:
    columns = ["format", "variant", "status", "size MB", "PSNR dB", "max abs", *[c[0] for c in task_columns],
               "p50 ms", "p90 ms", "gate", "GPU delegate"]
    head = "".join(f'<th class="{"l" if c in ("format", "variant", "status", "gate", "GPU delegate") else ""}">'
                   f'{html.escape(c)}</th>' for c in columns)
    rows = []
    for a in artifacts:
        p, k, lat = a["parity"], a["task"], a["latency"]
        cells = [html.escape(a["format"]), html.escape(a["variant"]), html.escape(a["status"])]
        values = [_num(a["size_bytes"] and a["size_bytes"] / 1e6, ".2f"), _num(p.get("psnr_db"), ".1f"),
                  _num(p.get("max_abs"), ".1e"), *[_num(k.get(key), spec) for _, key, spec in task_columns],
                  _num(lat.get("p50_ms"), ".2f"), _num(lat.get("p90_ms"), ".2f")]
        tds = "".join(f'<td class="l">{c}</td>' for c in cells) + "".join(f"<td>{v}</td>" for v in values)
        rows.append(f"<tr>{tds}<td class='l'>{_gate_cell(a)}</td><td class='l'>{_gpu_cell(a)}</td></tr>")
    notes = "".join(f"<li>{html.escape(a['format'])} {html.escape(a['variant'])}: {html.escape(a['reason'])}</li>"
                    for a in artifacts if a.get("reason"))
    return (f'<table id="summary"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
            + (f'<ul class="note">{notes}</ul>' if notes else ""))


def _figure(fig_id: str, body: str, caption: str) -> str:
    return f'<figure id="{fig_id}">{body}<figcaption>{html.escape(caption)}</figcaption></figure>'


def _pareto(artifacts, task: dict) -> str:
    key = task.get("accuracy_key", "under_5pct")
    rows = [{"label": f"{a['format']} {a['variant']}", "size_mb": a["size_bytes"] / 1e6,
             "p50_ms": a["latency"].get("p50_ms"), "accuracy": a["task"][key]}
            for a in artifacts if a["status"] == "ok" and a["size_bytes"] and key in a["task"]]
    if not any(r["p50_ms"] for r in rows):
        return '<p class="note">No artifact has both latency and task metrics yet.</p>'
    label = task.get("accuracy_label", "documents with corner error < 5% of diagonal")
    untimed = [r["label"] for r in rows if not r["p50_ms"]]
    return _figure("pareto", plots.pareto_svg(rows, label),
                   "Each export's file size and latency against task accuracy. Filled markers are "
                   "Pareto-optimal: nothing else is smaller, faster and at least as accurate."
                   + (f" Not timed on this host, so in the size panel only: {', '.join(untimed)}"
                      " (Core ML latency needs macOS)." if untimed else ""))


def _layer_errors(artifacts) -> str:
    from edgepipe.quantize.debug import ROUNDING_NOISE
    layers = next((a.get("layers") for a in artifacts if a.get("layers")), None)
    if not layers:
        return '<p class="note">No int8 export with per-layer statistics in this run.</p>'
    return _figure("layer-errors", plots.layer_error_svg(layers, ROUNDING_NOISE),
                   "RMSE between each int8 layer and its float twin, in units of the layer's quantization "
                   "step. Pure rounding gives about 0.29; red layers are candidates to keep in float.")


def _latency(artifacts) -> str:
    samples = {f"{a['format']} {a['variant']}": a["latency"]["samples_ms"]
               for a in artifacts if a["latency"].get("samples_ms")}
    if not samples:
        return '<p class="note">No latency samples in this run.</p>'
    return _figure("latency", plots.latency_svg(samples),
                   "Every timed inference, models interleaved (A B A B ...) so machine drift hits all alike. "
                   "Absolute times belong to this host; compare ratios.")


def _scans(report: dict, run_dir: Path, count: int = 2, phone: int = 7, worst: int = 3, trust: bool = False) -> str:
    """Re-run the int8 TFLite export (what ships; else float, else Keras) on
    held-out documents and on phone-like photos from evaluation sources, and show
    the worst of those beside the first held-out ones."""
    config = _recipe_config(report)
    usable = [a | {"path": _in_run(a["path"], run_dir)} for a in report["artifacts"] if a["status"] == "ok"]
    usable = [a for a in usable if a["path"]]
    order = [("tflite", "int8"), ("tflite", "float32"), ("keras", "float32")]
    pick = next((a for key in order for a in usable if (a["format"], a["variant"]) == key),
                next((a for a in usable if a["format"] == "keras"), None))
    if not config or pick is None:
        return '<p class="note">Sample scans need the run\'s recipe and a float export.</p>'
    from edgepipe.evaluate.runners import open_runner
    from edgepipe.evaluate.taskmetrics import worst_corner_error
    from edgepipe.mobile_models.scan import scan
    from edgepipe.train.docgen import generate
    runner, size = open_runner(pick["path"], trust=trust), config["model"]["input_size"]
    samples = []
    for i in range(count):
        doc = generate(config["data"]["val_seed"], i, size)
        samples.append(_scan_sample(scan(doc.image, runner), doc.image, doc.corners, f"held-out #{i}"))
    shots = []
    for shot in _phone_shots(phone):
        r = scan(shot.image, runner)
        err = worst_corner_error(r.corners, shot.corners, shot.image.shape[1], shot.image.shape[0])
        title = f"{shot.condition} {shot.image.shape[1]}x{shot.image.shape[0]}: worst corner {err:.1f}%"
        shots.append((err, _scan_sample(r, shot.image, shot.corners, title)))
    samples += [s for _, s in sorted(shots, key=lambda e: -e[0])[:worst]]
    return _figure("scans", f'<img alt="sample scans" src="{plots.scans_png(samples)}" style="max-width:100%">',
                   f"Scanned with {pick['format']} {pick['variant']}: held-out documents, then the worst "
                   f"{worst} of {phone} phone-like photos built from evaluation sources only (one per condition; "
                   "benchmarks/document_quality.py scores many more). Found quad in green, truth dashed white, "
                   "then the letterboxed edge map (page-region contour in cyan, if the model has one) "
                   "and the rectified page.")


def _recipe_config(report: dict) -> dict | None:
    """The run's recipe as a valid Recipe's dump, or None (a hand-edited report.json)."""
    from pydantic import ValidationError

    from edgepipe.pipeline.recipe import Recipe
    try:
        return Recipe.model_validate(report.get("recipe", {}).get("config")).model_dump()
    except ValidationError:
        return None


def _in_run(path, run_dir: Path) -> Path | None:
    """An artifact is the file of that name in the run folder: the recorded path may be relative
    to where the run was started, and a hand-edited one may point anywhere."""
    from edgepipe.pipeline.manifest import in_run
    local = in_run(run_dir, path)
    return local if local and (local.is_file() or local.is_dir()) else None


PHONE_SEED = 4242


@lru_cache(maxsize=1)
def _phone_shots(count: int) -> list:
    """Rendering 12 MP frames takes a while; a process that renders several reports does it once."""
    from edgepipe.train.phoneshots import phone_shot
    return [phone_shot(PHONE_SEED, i) for i in range(count)]


def _scan_sample(r, photo, truth, title: str) -> dict:
    """A scans_png row, with the photo shrunk to at most 512 px for the page."""
    scale = min(1.0, 512 / max(photo.shape[:2]))
    small = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else photo
    page = r.page
    if page is not None and max(page.shape[:2]) > 512:
        f = 512 / max(page.shape[:2])
        page = cv2.resize(page, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
    found = None if r.corners is None else r.corners * scale
    return {"photo": small, "truth": truth * scale, "corners": found, "edges": r.edges, "region": r.region,
            "page": page,
            "title": title + ("" if r.corners is not None else f": {r.reason}")}


def _confusion(artifacts, recipe: dict) -> str:
    keras = next((a for a in artifacts if a["format"] == "keras" and a["task"].get("confusion")), None)
    if keras is None or any(len(row) != len(keras["task"]["confusion"]) for row in keras["task"]["confusion"]):
        return '<p class="note">No confusion matrix in this run.</p>'
    return _figure("confusion", plots.confusion_svg(keras["task"]["confusion"]),
                   "Held-out predictions of the original model: rows are true classes, columns predicted.")


def render(report: dict, run_dir, trust: bool = False) -> Path:
    """Write ``run_dir/report.html`` atomically and return its path. ``trust``: the user's
    ``--trust-model``, for a Keras export whose layers run their own code."""
    run_dir = Path(run_dir)
    from edgepipe.pipeline.report import task_columns
    recipe, arts, task = report.get("recipe", {}), report["artifacts"], report.get("task", {})
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    timings = ", ".join(f"{k} {v} s" + (" (skipped)" if report.get("stages", {}).get(k, {}).get("skipped") else "")
                        for k, v in report.get("timings_s", {}).items())
    loss = report.get("train", {}).get("loss") or []
    parts = [
        f"<h1>edgepipe report: {html.escape(str(recipe.get('name', '')))}</h1>",
        f'<p class="meta">recipe hash {html.escape(str(recipe.get("hash", "")))} · profile '
        f'{html.escape(str(recipe.get("profile", "")))} · rendered {stamp}<br>stages: {html.escape(timings)}</p>',
        "<section><h2>Exports</h2>", summary_table(arts, task_columns(report)),
        '<p class="note">Latency: batch 1, one thread, this host. Int8 on x86 is not representative of ARM '
        "phones. Core ML prediction needs macOS; on Linux its rows are converted but not run.</p></section>",
        "<section><h2>Size, accuracy and latency</h2>", _pareto(arts, task), "</section>",
        "<section><h2>Where int8 loses precision</h2>", _layer_errors(arts), "</section>",
        "<section><h2>Latency distribution</h2>", _latency(arts), "</section>",
    ]
    if task.get("name", "edges") == "edges":
        parts += ["<section><h2>Sample scans</h2>", _scans(report, run_dir, trust=trust), "</section>"]
    else:
        parts += ["<section><h2>Confusion matrix</h2>", _confusion(arts, recipe), "</section>"]
    if loss:
        val = report.get("train", {}).get("val_loss")
        parts += ["<section><h2>Training</h2>", _figure("loss", plots.loss_svg(loss, val),
                                                        "loss per epoch; a jump marks a progressive-resize phase"),
                  "</section>"]
    page = (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>edgepipe report: '
            f'{html.escape(str(recipe.get("name", "")))}</title><style>{CSS}</style></head><body>'
            + "\n".join(parts) + "</body></html>\n")
    return atomic.write_text(run_dir / "report.html", page)
