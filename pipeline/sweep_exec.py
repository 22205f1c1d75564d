"""Running a sweep's runs as Ray tasks.

Each run is two tasks in its own folder, both the ordinary pipeline with its
manifest: ``build`` (train, prune, export, verify) reserves ``train_cpus`` and
shares the machine; ``bench`` (latency and the run's reports) reserves every CPU
of a node, so no neighbour's training runs while it times. A rerun skips what the
manifests say is done. A task that raises or whose worker dies is tried again up
to ``retries`` times; then its run is reported failed. A dead worker is noticed
at once (Ray reports it); a task that hangs is cancelled after ``timeout_s``.
"""
import socket
import time
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from edgepipe.base.errors import EdgePipeError, first_line


# ---- inside a Ray worker -------------------------------------------------------------

def run_stage_task(raw: dict, out: str, through: str) -> dict:
    """The pipeline for one run, through ``verify`` or to the end; the run's console
    and TensorFlow's prints go to ``OUT/sweep.log``. A user error (bad data, a
    model that does not convert) is returned, not raised: trying again cannot help."""
    from rich.console import Console

    from edgepipe.pipeline.recipe import Recipe
    from edgepipe.pipeline.run import gate_failures, run
    folder, t0 = Path(out), time.time()
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "sweep.log", "a") as log, redirect_stdout(log), redirect_stderr(log):
        console = Console(file=log, width=160, force_terminal=False, markup=False)  # user text is not markup
        console.rule(f"sweep task: {through} on {socket.gethostname()}", style="bold")
        try:
            result = run(Recipe.model_validate(raw), folder, console, through=through)
        except EdgePipeError as e:
            return {"status": "error", "error": str(e), "host": socket.gethostname()}
    summary = {"status": "ok", "stages": result["stages"], "host": socket.gethostname(),
               "interval": [t0, time.time()]}  # when it held its CPUs (the sweep report shows no overlap)
    if "artifacts" in result:  # a finished run (the build task of a rerun, when nothing is left to time)
        summary |= {"report": _trim(result), "failures": gate_failures(result)}
    return summary


def _trim(report: dict) -> dict:
    """What the sweep report needs of a run's report.json."""
    keep = ("format", "variant", "status", "reason", "size_bytes", "task", "gate", "engine")
    arts = [{k: a.get(k) for k in keep} | {"latency": {k: a.get("latency", {}).get(k) for k in ("p50_ms", "p90_ms")}}
            for a in report["artifacts"]]
    for a in arts:
        a["task"] = {k: v for k, v in (a["task"] or {}).items() if not isinstance(v, (list, dict))}
    return {"task": report["task"], "artifacts": arts, "final_loss": report["train"]["final_loss"]}


# ---- the driver ----------------------------------------------------------------------

@dataclass
class Step:
    label: str
    submit: Callable  # () -> ObjectRef


@dataclass
class Job:
    name: str
    steps: list[Step]
    folder: str = ""
    index: int = 0          # the step running now
    attempts: int = 0       # of that step
    results: dict = field(default_factory=dict)  # step label -> its task's return value
    error: str | None = None
    retried: list = field(default_factory=list)  # "label: reason" of every failed attempt
    started: float = 0.0

    @property
    def done(self) -> bool:
        return self.error is not None or self.index >= len(self.steps)


def connect(address: str | None, num_cpus: int | None = None) -> bool:
    """Join ``address``, or start Ray here; True when this call started it (and
    so must shut it down). An existing connection (a test's) is used as it is."""
    import logging

    import ray
    if address:
        _reachable(address)
    if ray.is_initialized():
        return False
    try:
        if address:
            ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
        else:
            _start_local(ray, num_cpus, logging.ERROR)
    except (ConnectionError, ValueError, RuntimeError) as e:
        raise EdgePipeError(f"cannot {'join the Ray cluster at ' + address if address else 'start Ray'}: "
                            f"{first_line(e)}") from None
    return True


def _reachable(address: str, timeout_s: float = 10):
    """A host:port that does not answer is one line at once (Ray itself retries for minutes)."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return  # "auto", or a form Ray resolves itself
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as e:
        raise EdgePipeError(f"cannot join the Ray cluster at {address}: {e.strerror or e}") from None


def _start_local(ray, num_cpus, level):
    """Ray here, its workers at normal priority (Ray's default nice 15 would let any
    other process on the machine slow down the latency task)."""
    import os
    before = os.environ.get("RAY_worker_niceness")
    os.environ["RAY_worker_niceness"] = before or "0"
    try:
        ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False, logging_level=level)
    finally:
        if before is None:
            del os.environ["RAY_worker_niceness"]


def largest_node_cpus() -> int:
    import ray
    cpus = [int(n["Resources"].get("CPU", 0)) for n in ray.nodes() if n.get("Alive")]
    return max(cpus or [1])


def _failure(e: BaseException) -> str:
    cause = getattr(e, "cause", None)
    return first_line(cause if isinstance(cause, BaseException) else e)


def execute(jobs: list[Job], retries: int, timeout_s: float = 0, on_event: Callable = lambda job, text: None,
            poll_s: float = 0.5) -> list[Job]:
    """Run every job's steps in order, jobs side by side; retry failed attempts."""
    import ray
    pending = {}
    for job in jobs:
        _submit(job, pending)
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=poll_s)
            for ref in ready:
                _settle(pending.pop(ref), ref, pending, retries, on_event)
            _cancel_overdue(pending, timeout_s, on_event)
    except BaseException:
        for ref in pending:  # Ctrl-C or a bug here: leave nothing running
            ray.cancel(ref, force=True)
        raise
    return jobs


def _submit(job: Job, pending: dict):
    job.attempts += 1
    job.started = time.time()
    pending[job.steps[job.index].submit()] = job


def _settle(job: Job, ref, pending: dict, retries: int, on_event):
    import ray
    label = job.steps[job.index].label
    try:
        result = ray.get(ref)
    except ray.exceptions.RayError as e:
        reason = "cancelled after the timeout" if isinstance(e, ray.exceptions.TaskCancelledError) else _failure(e)
        job.retried.append(f"{label}: {reason}")
        if job.attempts <= retries:
            on_event(job, f"{label} attempt {job.attempts} failed ({reason}); retrying")
            _submit(job, pending)
        else:
            job.error = f"{label} failed after {job.attempts} attempt(s): {reason}"
            on_event(job, job.error)
        return
    job.results[label] = result
    if isinstance(result, dict) and result.get("status") == "error":
        job.error = f"{label}: {result['error']}"
        on_event(job, job.error)
        return
    took = _took(result, job.started)
    finished = isinstance(result, dict) and "report" in result  # the run is complete: skip the steps left
    job.index, job.attempts = len(job.steps) if finished else job.index + 1, 0
    if not job.done:
        _submit(job, pending)
    on_event(job, f"{label} done in {took}" + _skipped_note(result))


def _took(result, submitted: float) -> str:
    """How long the task ran, and how long it queued for CPUs before."""
    t0, t1 = (result.get("interval") if isinstance(result, dict) else None) or (submitted, time.time())
    waited = t0 - submitted
    return f"{t1 - t0:.1f} s" + (f" (queued {waited:.0f} s for CPUs)" if waited >= 1 else "")


def _skipped_note(result) -> str:
    stages = result.get("stages", {}) if isinstance(result, dict) else {}
    skipped = [k for k, v in stages.items() if v.get("skipped")]
    return f" (up to date: {', '.join(skipped)})" if skipped else ""


def _cancel_overdue(pending: dict, timeout_s: float, on_event):
    import ray
    if not timeout_s:
        return
    for ref, job in list(pending.items()):
        if time.time() - job.started > timeout_s:
            on_event(job, f"{job.steps[job.index].label} ran over {timeout_s:.0f} s; cancelling")
            ray.cancel(ref, force=True)
            job.started = float("inf")  # cancel once; ray.wait returns it as cancelled


def make_jobs(specs, out_root: Path, cfg) -> list[Job]:
    """One job per run: build (shares the machine), then bench (holds a whole node)."""
    import ray
    largest = largest_node_cpus()
    bench_cpus = cfg.bench_cpus or largest
    for key, cpus in (("train_cpus", cfg.train_cpus), ("bench_cpus", bench_cpus)):
        if cpus > largest:  # Ray would wait for such a node for ever
            raise EdgePipeError(f"{key} {cpus:g} is more than the largest Ray node has ({largest} CPUs)")
    task = ray.remote(run_stage_task)

    def submit(label: str, name: str, raw: dict, out: str):
        cpus, through = (cfg.train_cpus, "verify") if label == "build" else (bench_cpus, "report")
        return task.options(num_cpus=cpus, max_retries=0, name=f"{label}:{name}").remote(raw, out, through)
    jobs = []
    for s in specs:
        out = str((out_root / s.name).resolve())
        jobs.append(Job(s.name, [Step(label, lambda label=label, s=s, out=out: submit(label, s.name, s.raw, out))
                                 for label in ("build", "bench")], folder=out))
    return jobs


def write_recipes(specs, out_root: Path, inputs=()):
    """Each run's folder gets the recipe it runs (``edgepipe run --recipe`` reproduces it)."""
    import yaml

    from edgepipe.base import atomic
    for s in specs:
        folder = atomic.ensure_writable_dir(out_root / s.name)
        atomic.check_target(folder / "recipe.yaml", inputs=inputs)
        atomic.write_text(folder / "recipe.yaml", yaml.safe_dump(s.raw, sort_keys=False))


def run_sweep(cfg, specs, out_root: Path, console, address=None, num_cpus=None, budgets=None) -> dict:
    """Start or join Ray, run every job with progress, write sweep.json and sweep.html."""
    import ray
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from edgepipe.pipeline import sweep_report
    t0 = time.time()
    started = connect(address, num_cpus)
    try:
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        console.log(f"Ray: {'started here' if started else 'connected'}, {len(nodes)} node(s), "
                    f"{int(ray.cluster_resources().get('CPU', 0))} CPUs; {len(specs)} runs into {out_root}")
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=console) as progress:
            bar = progress.add_task("sweep: build + bench per run", total=2 * len(specs))
            jobs = make_jobs(specs, out_root, cfg)

            def on_event(job, text):
                progress.console.log(f"{job.name}: {text}")
                progress.update(bar, completed=sum(len(j.steps) if j.error else j.index for j in jobs))
            execute(jobs, cfg.retries, cfg.timeout_minutes * 60, on_event)
    finally:
        if started:
            ray.shutdown()
    rows = [row for job, spec in zip(jobs, specs) for row in sweep_report.rows_of(job, spec)]
    return sweep_report.write(out_root, cfg.name, rows, budgets or {}, time.time() - t0)
