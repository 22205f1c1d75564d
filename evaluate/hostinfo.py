"""Where a number was taken: device, OS, CPU, and the host's single-core float peak."""
import hashlib
import platform
import socket
import time
from functools import lru_cache
from pathlib import Path

import numpy as np


@lru_cache(maxsize=1)
def host() -> dict:
    return {"device": socket.gethostname(), "os": platform.platform(), "cpu": _cpu_name(),
            "machine": platform.machine()}


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def file_sha256(path) -> str:
    """Hash of a model file, or of every file in a model directory (.mlpackage)."""
    path = Path(path)
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        h.update(f.read_bytes())
    return h.hexdigest()


def matmul_peak_gflops(n: int = 1024, repeats: int = 5) -> float:
    """Float32 GFLOP/s of a large matmul; run with BLAS limited to the threads under test
    (the latency worker sets OPENBLAS/OMP thread counts before numpy loads)."""
    a = np.random.default_rng(0).random((n, n), np.float32)
    b = np.random.default_rng(1).random((n, n), np.float32)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * n ** 3 / best / 1e9
