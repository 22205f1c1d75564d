"""Core ML runners: ``MLModel.predict`` on macOS, the numpy reference interpreter
of the ML program elsewhere. ImageType inputs take 8-bit pixels (``image_pixels``),
other inputs their arrays."""
import numpy as np

from edgepipe.evaluate.runners import NotRunnable, Runner, TensorInfo, image_pixels


class CoreMLRunner(Runner):
    """Core ML's own ``MLModel.predict`` (macOS only)."""
    runtime = "coreml"
    engine = "coreml"

    COMPUTE_UNITS = {"cpu": "CPU_ONLY", "cpu_gpu": "CPU_AND_GPU", "all": "ALL"}

    def __init__(self, path, compute_units: str = "all"):
        from edgepipe.convert.coreml import _coremltools, can_predict, private_copy
        ok, why = can_predict()
        if not ok:
            raise NotRunnable(why)
        ct = _coremltools()
        self.version = ct.__version__
        units = getattr(ct.ComputeUnit, self.COMPUTE_UNITS[compute_units])
        copy, self._copy_holder = private_copy(path)  # the user's package is never opened (and rewritten)
        self.model = ct.models.MLModel(str(copy), compute_units=units)
        spec = self.model.get_spec().description
        self.labels = _class_labels(self.model.get_spec())
        self.inputs = [TensorInfo(i.name, (), _coreml_kind(i)) for i in spec.input]
        self.outputs = [TensorInfo(o.name, (), "float32") for o in spec.output
                        if o.name != spec.predictedFeatureName]

    def _one(self, feeds):
        from PIL import Image
        kinds = {i.name: i.dtype for i in self.inputs}
        got = self.model.predict({k: Image.fromarray(image_pixels(x)[0]) if kinds[k] == "image" else x
                                  for k, x in feeds.items()})
        return {o.name: _numeric(got[o.name], self.labels) for o in self.outputs}

    def predict(self, batch):
        return self._each(batch, self._one)


class CoreMLReferenceRunner(Runner):
    """The same ``.mlpackage`` run by the numpy reference interpreter
    (``evaluate.milref``) where Core ML cannot run: reference numerics for
    verify, labelled ``reference-interpreter``; never a latency figure."""
    runtime = "coreml"

    def __init__(self, path):
        from edgepipe.evaluate.milref import ENGINE, ReferenceProgram
        from edgepipe.convert.coreml import _coremltools
        self.engine = ENGINE
        self.version = f"coremltools {_coremltools().__version__} + {ENGINE}"
        self.program = ReferenceProgram(path)
        desc = self.program.spec.description
        self.labels = self.program.class_labels()
        kinds = {i.name: _coreml_kind(i) for i in desc.input}
        self.inputs = [TensorInfo(n, self.program.input_shapes[n], kinds.get(n, "image"))
                       for n in self.program.input_names]
        self.outputs = [TensorInfo(o.name, (), "float32") for o in desc.output if o.name != desc.predictedFeatureName]
        self.bgr = {i.name for i in desc.input if _is_bgr(i)}

    def _one(self, feeds):
        # what an ImageType input sees: 8-bit pixels in its colour layout (a BGR image's planes come
        # blue first, as Core ML lays out the CVPixelBuffer), here in the program's NCHW
        kinds = {i.name: i.dtype for i in self.inputs}
        got = self.program.run({k: self._planes(k, image_pixels(x)) if kinds[k] == "image" else x
                                for k, x in feeds.items()})
        return {o.name: _numeric(got[o.name], self.labels) for o in self.outputs}

    def _planes(self, name, pixels):
        rgb = pixels[..., ::-1] if name in self.bgr else pixels
        return rgb.astype(np.float32).transpose(0, 3, 1, 2)

    def predict(self, batch):
        return self._each(batch, self._one)


def _is_bgr(feature) -> bool:
    if feature.type.WhichOneof("Type") != "imageType":
        return False
    return feature.type.imageType.colorSpace == type(feature.type.imageType).ColorSpace.Value("BGR")


def _coreml_kind(feature) -> str:
    """"image" for an ImageType input (8-bit pixels), else "float32"."""
    return "image" if feature.type.WhichOneof("Type") == "imageType" else "float32"


def _class_labels(spec):
    """A classifier's label order, from the model card we embed (else None: sorted keys)."""
    import json
    card = spec.description.metadata.userDefined.get("model_card")
    try:
        return json.loads(card).get("labels") if card else None
    except ValueError:
        return None


def _numeric(value, labels):
    """A classifier's {label: probability} back to an array in label order."""
    if isinstance(value, dict):
        order = labels or sorted(value)
        return np.asarray([[value[k] for k in order]], np.float32)
    return np.asarray(value, np.float32)


def coreml_runner(path, compute_units: str = "all") -> Runner:
    """Core ML itself on macOS, the reference interpreter elsewhere."""
    from edgepipe.convert.coreml import can_predict
    if can_predict()[0]:
        return CoreMLRunner(path, compute_units)
    return CoreMLReferenceRunner(path)
