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


COPY_SIZES = (2 ** 18, 2 ** 20, 2 ** 22, 2 ** 24, 2 ** 26)  # 256 KiB .. 64 MiB: L2, L3, DRAM


def copy_bandwidth_curve(sizes=COPY_SIZES, repeats: int = 7) -> list[list[float]]:
    """``[[bytes moved per copy, GB/s], ...]``: one thread copying a float32
    buffer of each size, bytes read plus bytes written, best of ``repeats``. Small
    buffers stay in cache, so the curve is the memory roof a layer of that
    traffic sees (a cache-aware roofline). It never rises with size: a smaller
    buffer sits in a nearer cache, so a lower reading there is interference."""
    curve = []
    for size in sizes:
        src = np.ones(size // 4, np.float32)
        dst = np.zeros_like(src)  # pages touched before timing
        inner = max(1, 2 ** 24 // size)
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            for _ in range(inner):
                np.copyto(dst, src)
            best = min(best, (time.perf_counter() - t0) / inner)
        curve.append([2.0 * size, 2.0 * size / best / 1e9])
    for i in reversed(range(len(curve) - 1)):
        curve[i][1] = max(curve[i][1], curve[i + 1][1])
    return curve


def best_roofs(*readings) -> tuple[float, list | None]:
    """The highest peak and, size by size, the highest bandwidth of several
    ``(matmul_peak_gflops, copy_bandwidth_curve)`` readings: a roof is the best the
    host did, and a neighbour's burst during one reading should not lower it."""
    peak = max(p for p, _ in readings)
    curves = [c for _, c in readings if c]
    if not curves:
        return peak, None
    return peak, [[size, max(c[i][1] for c in curves)] for i, (size, _) in enumerate(curves[0])]


def bandwidth_at(curve, nbytes: float) -> float:
    """GB/s for a layer moving ``nbytes``: the curve interpolated in log size, clamped at its ends."""
    sizes = np.log2([c[0] for c in curve])
    return float(np.interp(np.log2(max(nbytes, 1.0)), sizes, [c[1] for c in curve]))
