"""``edgepipe sweep``: a grid of recipes as Ray tasks, one combined report."""
import sys
from pathlib import Path

from edgepipe.base.errors import EdgePipeError
from edgepipe.cli.args import positive, positive_int


def cmd_sweep(args):
    from edgepipe.base.atomic import ensure_writable_dir
    from edgepipe.pipeline.sweep import base_recipe_file, load_sweep
    cfg, specs = load_sweep(args.sweep)  # every run validated before Ray or TensorFlow starts
    if args.address and args.num_cpus:
        raise EdgePipeError("--num-cpus sizes the Ray started here; a cluster (--address) has its own CPUs")
    if args.retries is not None:
        cfg.retries = args.retries
    from edgepipe.pipeline.tasks import check_out_outside_data
    for spec in specs:
        check_out_outside_data(spec.recipe, Path(args.out) / spec.name)
    out = ensure_writable_dir(args.out)
    from edgepipe.pipeline.report import wide_console
    from edgepipe.pipeline.sweep_exec import run_sweep, write_recipes
    write_recipes(specs, out, inputs=[args.sweep, *filter(None, [base_recipe_file(cfg, args.sweep)])])
    console = wide_console()
    budgets = {"max_latency_ms": args.max_latency_ms, "max_size_kb": args.max_size_kb}
    summary = run_sweep(cfg, specs, out, console, args.address, args.num_cpus, budgets)
    best = summary["best"]
    console.log(f"wrote {out / 'sweep.json'} and sweep.html: {summary['runs']} runs in {summary['wall_s']} s"
                + (f"; best under the budget: {best['run']} {best['format']}/{best['variant']} "
                   f"({best['metric_key']} {best['metric']:.3f}, {best['p50_ms']:.2f} ms, {best['size_kb']:.1f} KB)"
                   if best else "; no gated export fits the budget"))
    for run in summary["failed_runs"]:
        row = next(r for r in summary["rows"] if r["run"] == run)
        print(f"edgepipe: run failed: {run}: {row['reason']}", file=sys.stderr)
    for gate in summary["failed_gates"]:
        print(f"edgepipe: gate failed: {gate}", file=sys.stderr)
    return 1 if summary["failed_runs"] or summary["failed_gates"] else 0


def add_parser(sub):
    s = sub.add_parser("sweep", help="run a grid of recipe variants as Ray tasks (local or --address a "
                       "cluster) into one sweep.json/sweep.html; exit 1 when a run or a gate fails")
    s.add_argument("sweep", help="sweep YAML: base recipe, grid of dotted-key overrides, runs, retries")
    s.add_argument("--out", default="runs/sweep", help="output folder, a folder per run (default: runs/sweep)")
    s.add_argument("--address", help="join this Ray cluster (ray://host:10001 or host:6379); default: "
                   "start Ray here for this sweep")
    s.add_argument("--num-cpus", type=positive_int, help="CPUs of the Ray started here (default: all)")
    s.add_argument("--retries", type=int, choices=range(0, 11), metavar="0..10",
                   help="extra attempts for a failed or killed task (default: the sweep file's, 1)")
    s.add_argument("--max-latency-ms", type=positive, help="latency budget (p50) for the best choice")
    s.add_argument("--max-size-kb", type=positive, help="size budget for the best choice")
    s.set_defaults(func=cmd_sweep)
