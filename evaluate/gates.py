"""Release gates: does an export hold its original's numbers?

Each variant of ``convert.formats.VARIANTS`` names its gate family; defaults
(overridable in the recipe's ``verify`` and on the CLI):
- exact (float32 / fp32): max abs error <= 1e-4 on every output (``verify`` adds
  1e-5 of the output's largest finite magnitude, the rtol coremltools' fp32 tests
  apply element by element: outputs in the hundreds, as a raw-pixel model gives,
  are a few float32 ulps apart from 1e-4; and for an output whose peak is under
  0.01 it takes 1% of the peak for the 1e-4, ``float_atol``);
- half (fp16 / float16): PSNR >= 40 dB;
- quantized (int8 / int16x8 / dynamic TFLite, int8 ONNX, Core ML 8-bit linear and
  6-bit palette weights): classifiers keep top-1 agreement >= 98%, with their scores
  at PSNR >= 20 dB (``SCORES_FLOOR_DB``; lossy 12 dB); detectors with
  task metrics lose <= 1 point of edge F-score; other dense outputs keep PSNR >=
  30 dB. Dynamic range (int8 weights, float activations) carries the int8 weights'
  rounding error, so it is held to the same gates;
- lossy (Core ML 4-bit palettes, 50% magnitude sparsity without fine-tuning):
  ``LOSSY`` below, measured on the default HED and the digits classifier
  (benchmarks/variants.py): agreement >= 95%, F-score drop <= 3 points, PSNR >= 20 dB.
"""
from dataclasses import dataclass
import re

import numpy as np

from edgepipe.convert.formats import VARIANTS
from edgepipe.evaluate.parity import parity

GATE_FAMILY = {v.precision: v.gate for v in VARIANTS.values()}  # precision -> exact | half | quantized | lossy
LOSSY = {"agreement": 0.95, "task_drop": 0.03, "psnr": 20.0}
RTOL = 1e-5  # verify's float32 gate, relative to the output's peak (coremltools' fp32 tests' rtol)
ATOL = 1e-4  # verify's float32 gate, absolute part ...
# Top-1 agreement alone passed an int8 file that returns logits where the model gives
# probabilities (-8.6 dB), or probabilities three times as sharp (the app thresholds them):
# a quantized classifier's scores must also stay within these PSNRs of the original's. Int8
# rounding of a softmax is ~40 dB; 4-bit palettes need the lossy floor.
SCORES_FLOOR_DB = {"quantized": 20.0, "lossy": 12.0}
SMALL_OUTPUT_SHARE = 1e-2  # ... or 1% of the peak for an output far below it, where 1e-4 passes anything


def float_atol(peak: float) -> float:
    """The float32 gate's absolute part for an output whose largest magnitude is ``peak``:
    1e-4, or 1% of the peak when that is smaller (outputs in units of 1e-5: 1e-4 would pass
    an export of another model)."""
    return min(ATOL, SMALL_OUTPUT_SHARE * peak) if peak > 0 else ATOL


def gate_family(precision: str) -> str:
    """The table's gate family for a precision; a Core ML compression the table does
    not list by name (read from a file: ``palette5``, ``sparse70``) by its kind."""
    if precision in GATE_FAMILY:
        return GATE_FAMILY[precision]
    found = re.fullmatch(r"(palette|sparse)(\d+)", precision)
    if found:
        return "quantized" if found[1] == "palette" and int(found[2]) >= 6 else "lossy"
    raise ValueError(f"no gate for precision '{precision}'")  # a misnamed precision must not pass loosely


@dataclass(frozen=True)
class Gate:
    metric: str      # max_abs | psnr_db | top1_agreement
    threshold: float
    higher_is_better: bool
    psnr_floor: float | None = None  # top-1 agreement also needs the scores this close (dB)

    def holds(self, value: float) -> bool:
        return value >= self.threshold if self.higher_is_better else value <= self.threshold

    def describe(self, value: float) -> str:
        op = ">=" if self.higher_is_better else "<="
        return f"{self.metric} {value:.4g} {op} {self.threshold:g}"


def default_gate(variant: str, classifier: bool, atol=ATOL, psnr_fp16=40.0, agreement=0.98, psnr_int=30.0,
                 task_drop: float | None = None, rtol: float = 0.0, peak: float = 0.0, named: frozenset = frozenset()):
    """``variant``: the export's precision. ``task_drop``: gate a quantized non-classifier
    on its task metric's drop (``f_score_drop``) instead of PSNR, where the caller has
    task metrics. Lossy variants get ``LOSSY``'s looser limits (never tighter than given).
    The exact gate is ``atol + rtol * peak``, ``peak`` the original output's largest magnitude.
    ``named``: the limits the user set ("psnr", "agreement"), which hold as given for lossy ones too."""
    family = gate_family(variant)
    if family == "exact":
        return Gate("max_abs", atol + rtol * peak, False)
    if family == "half":
        return Gate("psnr_db", psnr_fp16, True)
    if family == "lossy":
        agreement = agreement if "agreement" in named else min(agreement, LOSSY["agreement"])
        psnr_int = psnr_int if "psnr" in named else min(psnr_int, LOSSY["psnr"])
        task_drop = None if task_drop is None else max(task_drop, LOSSY["task_drop"])
    if classifier:
        return Gate("top1_agreement", agreement, True, SCORES_FLOOR_DB[family])
    if task_drop is not None:
        return Gate("f_score_drop", task_drop, False)
    return Gate("psnr_db", psnr_int, True)


def gated_as_classifier(ref: np.ndarray, psnr=None, agreement=None, kind: str | None = None) -> bool:
    """Class scores are gated on top-1 agreement, unless the model says the output holds
    values (``kind``, from ``evaluate.outputs``: a box head is (N, 4) floats too) or the
    user names a PSNR gate and no agreement: the gate the user named is the one that holds."""
    return is_class_scores(ref) and kind != "values" and not (psnr is not None and agreement is None)


def is_class_scores(ref: np.ndarray) -> bool:
    """Scores over two or more classes, (N, classes): what top-1 agreement needs. A
    single logit (N, 1) has no argmax to agree on, so it is gated as a dense output."""
    return ref.ndim == 2 and ref.shape[-1] > 1


def check_output(ref: np.ndarray, got: np.ndarray, gate: Gate) -> dict:
    metrics = parity(ref, got)
    if is_class_scores(ref):
        metrics["top1_agreement"] = float(np.mean(ref.argmax(-1) == got.reshape(ref.shape).argmax(-1)))
    return metrics | verdict(gate, metrics[gate.metric], metrics.get("psnr_db"), metrics.get("follows_input"))


def verdict(gate: Gate, value: float, psnr: float | None = None, follows_input: bool | None = None) -> dict:
    """{"gate": the rule as met, "pass", "margin"}: ``value`` of the gate's metric, the
    outputs' PSNR for a gate with a scores floor, and for a PSNR gate whether the export's
    output varies with its input where the original's does (parity's ``follows_input``):
    PSNR reads the error against the output's peak, so an export that ignores its input and
    prints the mean passed 40 dB on a regression head at 101 +- 1."""
    out = {"gate": gate.describe(value), "pass": bool(gate.holds(value)), "margin": float(value - gate.threshold)}
    if gate.psnr_floor is not None and psnr is not None and not psnr >= gate.psnr_floor:
        out = {"gate": f"{out['gate']}, but psnr_db {psnr:.3g} < {gate.psnr_floor:g} (scores floor)",
               "pass": False, "margin": float(psnr - gate.psnr_floor)}
    if gate.metric == "psnr_db" and follows_input is False and out["pass"]:
        out = {"gate": f"{out['gate']}, but the export's output does not vary with its input (the original's does)",
               "pass": False, "margin": 0.0}  # no number measures it
    return out
