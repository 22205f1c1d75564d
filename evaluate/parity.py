"""Numeric parity of an export against its original, per output."""
import numpy as np


def parity(ref: np.ndarray, out: np.ndarray, atol: float = 1e-4, rtol: float = 1e-3) -> dict:
    with np.errstate(invalid="ignore", over="ignore"):  # an inf in either side gives nan/inf figures, said as such
        return _parity(ref, out, atol, rtol)


def _parity(ref, out, atol, rtol) -> dict:
    ref = np.asarray(ref, np.float64)
    out = np.asarray(out, np.float64).reshape(ref.shape)
    err = out - ref
    mse = float(np.mean(err ** 2))
    peak = float(np.max(np.abs(ref))) or 1.0
    signal = float(np.sum(ref ** 2))
    denom = np.linalg.norm(ref) * np.linalg.norm(out)
    varies = ref.ndim >= 1 and len(ref) > 1 and not is_constant(ref)  # else there is no variation to keep
    kept = {"variation_db": variation_db(ref, out), "follows_input": not is_constant(out)} if varies else {}
    return kept | {
        "max_abs": float(np.max(np.abs(err))),
        "mean_abs": float(np.mean(np.abs(err))),
        "psnr_db": _db(peak ** 2, mse),
        "sqnr_db": _db(signal, float(np.sum(err ** 2))),
        "cosine": float(np.sum(ref * out) / denom) if denom else _zero_cosine(ref, out),
        "outside_tol_frac": float(np.mean(np.abs(err) > atol + rtol * np.abs(ref))),
    }


def _zero_cosine(ref, out) -> float:
    """Cosine where a side is all zeros: 1 when both are (they agree), else 0, not a perfect score
    for an export that outputs nothing."""
    return 1.0 if not np.any(ref) and not np.any(out) else 0.0


def _db(signal, noise):
    if noise == 0:
        return float("inf")
    return float(10 * np.log10(signal / noise)) if signal else float("-inf")


# An output is "constant" when no element of it varies across the inputs by more
# than this fraction of the output's peak |value|. 1e-4 of peak is below what any
# gate resolves (fp32's atol is 1e-4 on outputs of order 1; fp16's 40 dB PSNR
# allows 1e-2 of peak), so an export printing the mean output would pass too;
# float32 round-off on a truly constant output (~1e-7 of peak) stays far below.
CONSTANT_SPREAD = 1e-4


def output_spread(ref: np.ndarray) -> float:
    """How much an output varies across the batch (axis 0): the largest
    per-element standard deviation over the output's peak |value|; 0 when all
    is zero. The largest element, so one varying channel is enough: only an
    output that is flat everywhere counts as constant."""
    r = np.asarray(ref, np.float64).reshape(len(ref), -1)
    peak = float(np.max(np.abs(r))) if r.size else 0.0
    return float(np.max(r.std(axis=0)) / peak) if peak else 0.0


def is_constant(ref: np.ndarray) -> bool:
    return len(ref) > 1 and output_spread(ref) <= CONSTANT_SPREAD


def variation_db(ref: np.ndarray, out: np.ndarray) -> float:
    """How much of the original's variation across the inputs (axis 0) the export
    keeps, in dB: the per-element variance of ``ref`` over the batch, summed, over
    the squared error. An export printing the mean output scores 0 dB, however well
    its PSNR reads when the output sits on a large offset (a regression head at 101 +- 1)."""
    ref = np.asarray(ref, np.float64).reshape(len(ref), -1)
    err = np.asarray(out, np.float64).reshape(ref.shape) - ref
    return _db(float(ref.var(axis=0).sum()), float(np.mean(err ** 2, axis=0).sum()))
