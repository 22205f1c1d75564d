"""Rich table for ``edgepipe profile``."""
from rich.console import Console
from rich.table import Table
from rich.text import Text


def print_profile(result: dict, console: Console | None = None):
    console = console or Console(markup=False)  # layer and model names are the user's text, not markup
    t = Table(title=f"{result['name']}: per-layer profile (batch 1)")
    for col in ("layer", "type", "output", "params", "MACs (M)", "MAC (K elems)"):
        t.add_column(col, justify="left" if col in ("layer", "type", "output") else "right")
    for r in result["layers"]:
        if r["params"] or r["macs"]:
            t.add_row(r["name"], r["kind"], "x".join(str(d) for d in r["output_shape"][0]), f"{r['params']:,}",
                      f"{r['macs'] / 1e6:.2f}", f"{r['mac'] / 1e3:.1f}")
    console.print(t)
    console.print(Text.assemble(("params", "bold"), f" {result['params']:,}   ", ("mult-adds", "bold"),
                                f" {result['macs'] / 1e6:.1f} M   ", ("memory-access cost", "bold"),
                                f" {result['mac'] / 1e6:.2f} M elements   ", ("peak activations", "bold"),
                                f" {result['peak_activation_bytes'] / 2**20:.2f} MiB (float32)"))
    for w in result["warnings"]:
        console.print(Text.assemble(("warning", "yellow"), f" {w}"))
