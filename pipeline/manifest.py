"""The run manifest: what each finished stage consumed and produced.

A stage is skipped when its key (a hash of its config and of its inputs' hashes)
matches the recorded one and every recorded output still has the recorded hash.
Changing one stage's config changes its key, so it re-runs; stages after it
re-run when its outputs change. The manifest is rewritten atomically after each
stage, so a killed run resumes after the last finished stage.

Outputs are recorded by their path inside the run folder, and looked for there: a copy
of the run (``cp -a r1 r2``) is judged by its own files, not by the ones it was copied
from, and a run started from another directory finds its files all the same.
"""
import hashlib
import json
import time
from pathlib import Path

from edgepipe.evaluate.hostinfo import file_sha256
from edgepipe.pipeline.report import write_json


def _well_formed(data) -> bool:
    """A manifest as edgepipe writes it; anything else is treated as none."""
    stages = data.get("stages") if isinstance(data, dict) else None
    return isinstance(stages, dict) and all(
        isinstance(r, dict) and {"key", "outputs", "result", "seconds", "finished"} <= set(r)
        and isinstance(r["outputs"], dict) for r in stages.values())


def stage_key(config, inputs: dict) -> str:
    blob = json.dumps({"config": config, "inputs": inputs}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def in_run(run_dir: Path, path) -> Path | None:
    """A recorded artifact is the file of that name in this run's folder: the record may come
    from a copy of the run, from a run started in another directory, or be hand-edited."""
    return Path(run_dir) / Path(path).name if path else None


class Manifest:
    def __init__(self, out: Path, force: bool = False):
        self.root = Path(out)
        self.path = self.root / "manifest.json"
        self.data = {"stages": {}}
        if self.path.is_file() and not force:
            try:
                self.data = json.loads(self.path.read_text())
            except (OSError, ValueError, RecursionError):
                self.data = {"stages": {}}  # a damaged manifest only costs a re-run
        if not _well_formed(self.data):
            self.data = {"stages": {}}

    def finished(self, name: str, key: str) -> dict | None:
        rec = self.data["stages"].get(name)
        if not rec or rec["key"] != key:
            return None
        for recorded, digest in rec["outputs"].items():
            path = self.root / recorded  # a name outside the run folder is recorded whole
            if not path.exists() and not Path(recorded).is_absolute():
                path = self.root / Path(recorded).name  # a manifest from before: the path as typed then
            try:
                if not path.exists() or file_sha256(path) != digest:
                    return None
            except OSError:
                return None
        return rec

    def record(self, name: str, key: str, outputs: list, result, seconds: float) -> dict:
        rec = {"key": key, "outputs": {self._name(p): file_sha256(p) for p in outputs if p and Path(p).exists()},
               "result": result, "seconds": round(seconds, 1),
               "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        self.data["stages"][name] = rec
        write_json(self.path, self.data)
        return rec

    def _name(self, path) -> str:
        """``path`` inside the run folder, or whole (resolved) when it lies elsewhere."""
        path = Path(path).resolve()
        try:
            return path.relative_to(self.root.resolve()).as_posix()
        except ValueError:
            return str(path)

    def forget(self, name: str):
        """Drop a stage's record (it did not finish cleanly), so it runs again."""
        if self.data["stages"].pop(name, None) is not None:
            write_json(self.path, self.data)

    def output_hashes(self, name: str) -> dict:
        return self.data["stages"].get(name, {}).get("outputs", {})
