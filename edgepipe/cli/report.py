"""``edgepipe report RUN_DIR``: re-render report.html from report.json."""
import json
from pathlib import Path

from edgepipe.base.errors import EdgePipeError
from edgepipe.cli.args import add_trust


def cmd_report(args):
    run_dir = Path(args.run_dir)
    path = run_dir / "report.json"
    if not path.is_file():
        raise EdgePipeError(f"{path} not found: give the folder of a finished `edgepipe run`")
    try:
        report = json.loads(path.read_text())
    except (ValueError, OSError, RecursionError):  # RecursionError: arrays nested past Python's stack
        raise EdgePipeError(f"{path} is not an edgepipe report (not JSON, or nested too deeply)") from None
    check_report(report, path)
    from edgepipe.pipeline.html_report import render
    print(f"wrote {render(report, run_dir, trust=args.trust_model)}")
    return 0


def check_report(report, path):
    """Against the schema edgepipe writes to: a hand-edited or foreign file gets one line."""
    from importlib import resources

    import jsonschema
    schema = json.loads((resources.files("edgepipe.schemas") / "report.schema.json").read_text())
    try:
        jsonschema.validate(report, schema)
    except jsonschema.ValidationError as e:
        where = "/".join(str(p) for p in e.absolute_path) or "top level"
        raise EdgePipeError(f"{path} is not an edgepipe report ({where}: {e.message[:120]})") from None


def add_parser(sub):
    rp = sub.add_parser("report", help="re-render RUN_DIR/report.html from its report.json")
    rp.add_argument("run_dir", help="folder of an `edgepipe run`")
    add_trust(rp)  # the sample scans re-run the run's export
    rp.set_defaults(func=cmd_report)
