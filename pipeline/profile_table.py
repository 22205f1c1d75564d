"""Rich table for ``edgepipe profile``."""
from rich.console import Console
from rich.table import Table


def print_profile(result: dict, console: Console | None = None):
    console = console or Console()
    t = Table(title=f"{result['name']}: per-layer profile (batch 1)")
    for col in ("layer", "type", "output", "params", "MACs (M)", "MAC (K elems)"):
        t.add_column(col, justify="left" if col in ("layer", "type", "output") else "right")
    for r in result["layers"]:
        if r["params"] or r["macs"]:
            t.add_row(r["name"], r["kind"], "x".join(str(d) for d in r["output_shape"][0]), f"{r['params']:,}",
                      f"{r['macs'] / 1e6:.2f}", f"{r['mac'] / 1e3:.1f}")
    console.print(t)
    console.print(f"[bold]params[/] {result['params']:,}   [bold]mult-adds[/] {result['macs'] / 1e6:.1f} M   "
                  f"[bold]memory-access cost[/] {result['mac'] / 1e6:.2f} M elements   "
                  f"[bold]peak activations[/] {result['peak_activation_bytes'] / 2**20:.2f} MiB (float32)")
    for w in result["warnings"]:
        console.print(f"[yellow]warning[/] {w}")
