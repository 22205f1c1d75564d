"""Numeric parity of an export against its original, per output."""
import numpy as np


def parity(ref: np.ndarray, out: np.ndarray, atol: float = 1e-4, rtol: float = 1e-3) -> dict:
    ref = np.asarray(ref, np.float64)
    out = np.asarray(out, np.float64).reshape(ref.shape)
    err = out - ref
    mse = float(np.mean(err ** 2))
    peak = float(np.max(np.abs(ref))) or 1.0
    signal = float(np.sum(ref ** 2))
    denom = np.linalg.norm(ref) * np.linalg.norm(out)
    return {
        "max_abs": float(np.max(np.abs(err))),
        "mean_abs": float(np.mean(np.abs(err))),
        "psnr_db": _db(peak ** 2, mse),
        "sqnr_db": _db(signal, float(np.sum(err ** 2))),
        "cosine": float(np.sum(ref * out) / denom) if denom else 1.0,
        "outside_tol_frac": float(np.mean(np.abs(err) > atol + rtol * np.abs(ref))),
    }


def _db(signal, noise):
    if noise == 0:
        return float("inf")
    return float(10 * np.log10(signal / noise)) if signal else float("-inf")
