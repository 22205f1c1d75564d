"""``edgepipe bench --device android --check``: the phone's outputs against this
host's on the same golden inputs.

The host writes a few golden inputs as the exact bytes of the model's input
tensor (float32, int8, uint8 or int16, quantized as edgepipe's TFLite runner
does), the app's benchmark mode runs each one after timing and returns the raw
output tensors, and the host runs the same .tflite on the same bytes with its own
LiteRT. Per output: max abs, PSNR and the rest of verify's parity metrics, a
task metric where there is one (top-1 agreement for a classifier; for an edge
map, the F-score of the phone's edges against the host's and the corner error
between the quads found on each), and the release gate of the precision the
phone computed in (GPU runs float models in fp16).
"""
import json
from pathlib import Path

import numpy as np

from edgepipe.base.errors import EdgePipeError
from edgepipe.base.quiet import native_stderr_silenced
from edgepipe.base.values import in_dtype

GOLDEN_COUNT = 4
EDGE_F_DROP = 0.01  # an edge map may lose 1 point of F-score against the host's


def _interpreter(model):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    try:
        with native_stderr_silenced():  # XNNPACK announces itself on fd 2
            interp = Interpreter(model_path=str(model), num_threads=1,
                                 experimental_op_resolver_type=OpResolverType.AUTO)
            interp.allocate_tensors()
    except (ValueError, RuntimeError) as e:
        raise EdgePipeError(f"{model}: not a loadable TFLite model ({str(e).splitlines()[0]})") from None
    return interp


def _normalization(model, channels: int):
    """(scale, bias) per channel from the model card beside the model, else pixel / 255
    (edgepipe's default input range)."""
    card = Path(model).parent / "model_card.json"
    try:
        norm = json.loads(card.read_text())["inputs"][0]["normalization"]
        scale, bias = (np.broadcast_to(np.asarray(norm[k], np.float32), (channels,)) for k in ("scale", "bias"))
        return scale, bias
    except (OSError, ValueError, KeyError, IndexError, TypeError):  # no card, or not ours: the default
        return np.full(channels, 1 / 255, np.float32), np.zeros(channels, np.float32)


def _pixels(shape, count: int) -> np.ndarray:
    """``count`` uint8 images of ``shape`` (H, W, C): generated document photos, so the
    inputs look like what the model sees, not noise."""
    import cv2

    from edgepipe.train.docgen import generate
    h, w, c = shape
    out = []
    for i in range(count):
        img = generate(30_000, i, size=max(h, w)).image
        img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA) if img.shape[:2] != (h, w) else img
        out.append(img if c == 3 else np.repeat(img.mean(-1, keepdims=True).astype(np.uint8), c, -1)[..., :c])
    return np.stack(out)


def quantize_input(x: np.ndarray, detail: dict) -> np.ndarray:
    """As edgepipe's TFLite runner feeds a model: round half to even, clip, cast."""
    scale, zero = detail["quantization"]
    return in_dtype(x / scale + zero if scale else x, detail["dtype"])


def golden_inputs(model, count: int = GOLDEN_COUNT) -> list[np.ndarray]:
    """Input tensors (batch 1, the model's dtype) for the phone and the host alike."""
    detail = _interpreter(model).get_input_details()[0]
    shape = tuple(int(d) for d in detail["shape"])
    if len(shape) == 4 and shape[-1] in (1, 3):
        scale, bias = _normalization(model, shape[-1])
        floats = _pixels(shape[1:], count).astype(np.float32) * scale + bias
    else:  # not an image: seeded values in [0, 1]
        floats = np.random.default_rng(0).random((count, *shape[1:]), dtype=np.float32)
    return [quantize_input(x[None], detail) for x in floats]


def golden_pixels(model, count: int = GOLDEN_COUNT) -> np.ndarray | None:
    """The RGB pixels behind ``golden_inputs`` (uint8, N x H x W x 3), or None for a
    model whose input is not an RGB image."""
    shape = tuple(int(d) for d in _interpreter(model).get_input_details()[0]["shape"])
    return _pixels(shape[1:], count) if len(shape) == 4 and shape[-1] == 3 else None


def dequantize(raw: np.ndarray, detail: dict) -> np.ndarray:
    scale, zero = detail["quantization"]
    return (raw.astype(np.float32) - zero) * scale if scale else raw.astype(np.float32)


def host_outputs(model, inputs: list[np.ndarray]) -> list[list[np.ndarray]]:
    """Per input, every output tensor dequantized to float32, from this host's LiteRT."""
    interp = _interpreter(model)
    index = interp.get_input_details()[0]["index"]
    outs = []
    for x in inputs:
        interp.set_tensor(index, x)
        interp.invoke()
        outs.append([dequantize(interp.get_tensor(d["index"]), d) for d in interp.get_output_details()])
    return outs


def _from_bytes(data: bytes, detail: dict) -> np.ndarray:
    """One raw output tensor the app wrote (little-endian, the tensor's dtype)."""
    dtype = np.dtype(detail["dtype"]).newbyteorder("<")
    if len(data) % dtype.itemsize:
        raise EdgePipeError(f"the phone returned {len(data)} bytes for output '{detail['name']}', not whole "
                            f"{dtype.name} values: is the app up to date?")
    raw = np.frombuffer(data, dtype)
    want = int(np.prod(detail["shape"]))
    if raw.size != want:
        raise EdgePipeError(f"the phone returned {raw.size} values for output '{detail['name']}', "
                            f"the model has {want}: is the app up to date?")
    return dequantize(raw.reshape(detail["shape"]), detail)


def output_details(model) -> list[dict]:
    return _interpreter(model).get_output_details()


def check_device(model, host: list[list[np.ndarray]], raw: list[list[bytes]], delegate: str) -> dict:
    """The phone's raw golden outputs (per input, per output) against the host's."""
    details = output_details(model)
    device = []
    for per_input in raw:
        if len(per_input) != len(details):
            raise EdgePipeError(f"the phone returned {len(per_input)} outputs per input, the model has "
                                f"{len(details)}: is the app up to date?")
        device.append([_from_bytes(b, d) for b, d in zip(per_input, details)])
    return compare(model, host, device, delegate)


def compare(model, host: list[list[np.ndarray]], device: list[list[np.ndarray]], delegate: str) -> dict:
    """``{"precision", "gate_variant", "pass", "outputs": {name: metrics | gate}}``."""
    from edgepipe.evaluate.gates import check_output, default_gate, is_class_scores
    from edgepipe.evaluate.quantinfo import tflite_quantization
    precision = tflite_quantization(model)["precision"]
    variant = "float16" if delegate == "gpu" and precision in ("float32", "float16") else precision
    outputs, pixels = {}, None
    for j, detail in enumerate(output_details(model)):
        ref = np.concatenate([h[j] for h in host])
        got = np.concatenate([d[j] for d in device])
        if _is_edge_map(ref) and pixels is None:
            pixels = golden_pixels(model, len(host))
        task = edge_task(ref, got, pixels) if _is_edge_map(ref) else {}
        gate = default_gate(variant, classifier=is_class_scores(ref),
                            task_drop=EDGE_F_DROP if task else None)
        metrics = check_output(ref, got, gate) if gate.metric != "f_score_drop" else _task_gate(ref, got, task, gate)
        outputs[detail["name"]] = metrics | task
    return {"golden_inputs": len(host), "precision": precision, "gate_variant": variant,
            "pass": all(o["pass"] for o in outputs.values()), "outputs": outputs}


def _is_edge_map(ref: np.ndarray) -> bool:
    return ref.ndim == 4 and ref.shape[-1] == 1 and ref.shape[1] >= 32 and ref.min() >= 0 and ref.max() <= 1


def edge_task(ref: np.ndarray, got: np.ndarray, pixels: np.ndarray | None = None) -> dict:
    """The phone's edge map scored against the host's (F-score at 0.5, 2 px), and the
    corner error between the quads the finder draws from each (% of the diagonal).
    ``pixels``: the golden inputs' RGB pixels, which the finder reads as the app's does
    (the paper score, printed bands), where they match the maps' size."""
    from edgepipe.evaluate.taskmetrics import corner_error, edge_fscore
    from edgepipe.mobile_models.docquad import find_quad
    f = edge_fscore(got, (ref >= 0.5).astype(np.uint8))["f_score"] if (ref >= 0.5).any() else 1.0
    errs = []
    if pixels is None or pixels.shape[1:3] != ref.shape[1:3]:
        pixels = [None] * len(ref)
    for r, g, image in zip(ref, got, pixels):
        a, b = find_quad(r[..., 0], image=image), find_quad(g[..., 0], image=image)
        errs.append(0.0 if not a.found and not b.found else
                    corner_error(b.corners, a.corners, r.shape[0]) if a.found else float("inf"))
    finite = [e for e in errs if np.isfinite(e)]
    return {"edge_f_vs_host": float(f), "f_score_drop": float(1 - f),
            "quads_agree": float(np.mean(np.isfinite(errs))),
            "corner_err_max_pct": float(max(finite)) if finite else None}


def _task_gate(ref, got, task, gate) -> dict:
    from edgepipe.evaluate.parity import parity
    value = task["f_score_drop"] if task["quads_agree"] == 1.0 else float("inf")  # a lost quad fails
    return parity(ref, got) | {"gate": gate.describe(value), "pass": bool(gate.holds(value)),
                               "margin": float(value - gate.threshold)}
