"""Release gates: does an export hold its original's numbers?

Defaults per variant (overridable in the recipe's ``verify`` and on the CLI):
- float32 / fp32: max abs error <= 1e-4 on every output;
- fp16 / float16: PSNR >= 40 dB;
- int8 / int16x8 / dynamic: classifiers keep top-1 agreement >= 98%; detectors
  with task metrics lose <= 1 point of edge F-score; other dense outputs keep
  PSNR >= 30 dB. Dynamic range (int8 weights, float activations) carries the
  int8 weights' rounding error, so it is held to the same quantized gates.
"""
from dataclasses import dataclass

import numpy as np

from edgepipe.evaluate.parity import parity

QUANTIZED = ("int8", "int16x8", "dynamic")


@dataclass(frozen=True)
class Gate:
    metric: str      # max_abs | psnr_db | top1_agreement
    threshold: float
    higher_is_better: bool

    def holds(self, value: float) -> bool:
        return value >= self.threshold if self.higher_is_better else value <= self.threshold

    def describe(self, value: float) -> str:
        op = ">=" if self.higher_is_better else "<="
        return f"{self.metric} {value:.4g} {op} {self.threshold:g}"


def default_gate(variant: str, classifier: bool, atol=1e-4, psnr_fp16=40.0, agreement=0.98, psnr_int=30.0,
                 task_drop: float | None = None):
    """``task_drop``: gate a quantized non-classifier on its task metric's drop
    (``f_score_drop``) instead of PSNR, where the caller has task metrics."""
    if variant in ("float32", "fp32"):
        return Gate("max_abs", atol, False)
    if variant in ("fp16", "float16"):
        return Gate("psnr_db", psnr_fp16, True)
    if variant not in QUANTIZED:  # a misnamed precision must not slip into a looser gate
        raise ValueError(f"no gate for precision '{variant}'")
    if classifier:
        return Gate("top1_agreement", agreement, True)
    if task_drop is not None:
        return Gate("f_score_drop", task_drop, False)
    return Gate("psnr_db", psnr_int, True)


def check_output(ref: np.ndarray, got: np.ndarray, gate: Gate) -> dict:
    metrics = parity(ref, got)
    if ref.ndim == 2 and ref.shape[-1] > 1:
        metrics["top1_agreement"] = float(np.mean(ref.argmax(-1) == got.reshape(ref.shape).argmax(-1)))
    value = metrics[gate.metric]
    return metrics | {"gate": gate.describe(value), "pass": bool(gate.holds(value)),
                      "margin": float(value - gate.threshold)}
