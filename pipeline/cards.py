"""model_card.json: what an app developer needs to feed and read the model."""
import time

import numpy as np

from mobile_models.docquad import QuadParams


def _quant_params(path):
    """Input/output scale, zero point and dtype of an int8 TFLite file."""
    from ai_edge_litert.interpreter import Interpreter
    interp = Interpreter(model_path=str(path))

    def q(d):
        scale, zero = d["quantization"]
        return {"scale": float(scale), "zero_point": int(zero), "dtype": np.dtype(d["dtype"]).name}
    return {"input": q(interp.get_input_details()[0]), "outputs": [q(d) for d in interp.get_output_details()]}


def bundle_meta(recipe, model, recipe_hash) -> dict:
    """What every artifact of a run carries: how to feed the model and read it."""
    size = recipe.model.input_size
    b = recipe.bundle
    return {
        "name": recipe.model.name, "description": b.description, "author": b.author, "license": b.license,
        "version": b.version, "task": "document edge detection (HED) + quad finding",
        "inputs": [{"name": model.input_names[0], "shape": [1, size, size, 3], "dtype": "float32",
                    "layout": "NHWC", "color_order": "RGB", "range": [0.0, 1.0],
                    "normalization": {"scale": 1 / 255.0, "bias": 0.0, "formula": "x = pixel * scale + bias"},
                    "description": f"RGB photo resized to {size}x{size}, pixels scaled to [0, 1]"}],
        "outputs": [{"name": "edges", "shape": [1, size, size, 1], "activation": "sigmoid",
                     "meaning": "probability that the pixel lies on the document border"}],
        "labels": [],
        "postprocessing": {"quad_finder": QuadParams().__dict__,
                           "corners_order": ["top-left", "top-right", "bottom-right", "bottom-left"]},
        "training": {"data": recipe.data.model_dump(), "profile": recipe.profile, "recipe_hash": recipe_hash},
    }


def model_card(recipe, model, entries, recipe_hash) -> dict:
    artifacts = []
    for e in entries:
        item = {"format": e["format"], "variant": e["variant"], "file": e["path"] and e["path"].split("/")[-1],
                "size_bytes": e["size_bytes"], "status": e["status"],
                "verify": {"parity": e["parity"], "task": e["task"]}, "bench": e["latency"]}
        if e["format"] == "tflite" and e["variant"] == "int8" and e["status"] == "ok":
            item["quantization"] = _quant_params(e["path"])
        artifacts.append(item)
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return bundle_meta(recipe, model, recipe_hash) | {"created": created, "artifacts": artifacts}
