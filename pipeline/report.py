"""report.json and the table printed at the end of a run."""
import json
import math
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from edgepipe.base import atomic


def artifact_entry(fmt, variant, path, status="ok", reason="", parity=None, task=None, latency=None):
    """One report row; ``status`` is ok, failed or not_run (with ``reason``)."""
    size = _size(Path(path)) if path and Path(path).exists() else None
    return {"format": fmt, "variant": variant, "status": status, "reason": reason,
            "path": str(path) if path else None, "size_bytes": size,
            "parity": parity or {}, "task": task or {}, "latency": latency or {}}


def _size(p: Path) -> int:
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) if p.is_dir() else p.stat().st_size


def jsonable(obj):
    """``obj`` as strict JSON takes it: inf as "inf", NaN as null (JavaScript's JSON.parse
    and jq refuse Python's Infinity)."""
    if isinstance(obj, (float, np.floating)) and not math.isfinite(obj):
        return None if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    if isinstance(obj, dict):
        return {k: jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    return obj


def write_json(path: Path, data: dict) -> Path:
    return atomic.write_text(path, json.dumps(jsonable(data), indent=2) + "\n")


def _fmt(v, spec):
    if v is None or v == "":
        return "-"
    if isinstance(v, str):
        return v
    return format(v, spec) if math.isfinite(v) else ("inf" if v > 0 else "-inf")


def wide_console() -> Console:
    """Tables need ~110 columns; a pipe or CI log would otherwise get 80. No markup: recipe
    names, paths and error messages are the user's text, and ``[/]`` in one would crash rich."""
    return Console(width=max(Console().width, 160), markup=False)


EDGE_COLUMNS = [["edge F", "f_score", ".3f"], ["corner med %", "corner_err_median_pct", ".2f"],
                ["corner <5%", "under_5pct", ".1%"]]


def task_columns(report: dict) -> list:
    """(header, task-metric key, format) of the run's task; HED's for older reports."""
    return report.get("task", {}).get("columns", EDGE_COLUMNS)


def _gate_word(a: dict) -> str:
    """pass or FAIL for an export its gate checked (the run exits 1 on a FAIL); - for the
    reference model and for what did not run."""
    gate = a.get("gate")
    return "-" if a["status"] != "ok" or not gate else ("pass" if gate.get("pass") else "FAIL")


def print_table(report: dict, console: Console | None = None):
    console = console or wide_console()
    t = Table(title=f"edgepipe run: {report.get('recipe', {}).get('name', '')}")
    columns = task_columns(report)
    for col in ("format", "variant", "status", "gate", "MB", "PSNR dB", "max abs", *[c[0] for c in columns],
                "p50 ms", "p90 ms"):
        t.add_column(col, justify="right" if col not in ("format", "variant", "status", "gate") else "left")
    notes = []
    for a in report["artifacts"]:
        p, k, lat = a["parity"], a["task"], a["latency"]
        status = a["status"]
        if a["reason"]:
            notes.append(f"[{len(notes) + 1}] {a['format']} {a['variant']}: {a['reason']}")
            status += f" [{len(notes)}]"
        t.add_row(a["format"], a["variant"], status, _gate_word(a), _fmt(a["size_bytes"] and a["size_bytes"] / 1e6, ".2f"),
                  _fmt(p.get("psnr_db"), ".1f"), _fmt(p.get("max_abs"), ".1e"),
                  *[_fmt(k.get(key), spec) for _, key, spec in columns],
                  _fmt(lat.get("p50_ms"), ".2f"), _fmt(lat.get("p90_ms"), ".2f"))
    console.print(t)
    for note in notes:
        console.print(note, markup=False)
    console.print("latency: batch 1, one thread, this host; quote ratios, not absolute times", markup=False)
