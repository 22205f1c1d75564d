"""TFLite metadata, written from the schema (tensorflow/tflite-support
``metadata_schema.fbs``) because the ``tflite-support`` writer pins protobuf<4
and cannot install beside this stack.

What Android Studio's ML model binding and the LiteRT support library read:
a ``ModelMetadata`` flatbuffer (file identifier ``M001``) stored in a model
buffer named ``TFLITE_METADATA``, plus a zip appended to the model holding the
associated files (``labels.txt``, ``model_card.json``), uncompressed because the
Java extractor cannot inflate.

Field slots below are the schema's field order; a union takes two slots
(its type, then its value).
"""
import io
import json
import zipfile

import flatbuffers
import numpy as np

from edgepipe.convert.inputspec import from_card

METADATA_NAME = "TFLITE_METADATA"
MIN_PARSER_VERSION = "1.0.0"   # we use no feature newer than the 1.0 schema
# enum values from the schema
FILE_DESCRIPTIONS, FILE_TENSOR_AXIS_LABELS = 1, 2
COLOR_UNKNOWN, COLOR_RGB, COLOR_GRAYSCALE = 0, 1, 2  # the schema has no BGR
CONTENT_FEATURE, CONTENT_IMAGE = 1, 2
OPTIONS_NORMALIZATION = 1


class _Writer:
    """Bottom-up flatbuffer tables: children first, then the table that points at them."""

    def __init__(self):
        self.b = flatbuffers.Builder(1024)

    def string(self, s):
        return self.b.CreateString(s) if s else None

    def offsets(self, items):
        self.b.StartVector(4, len(items), 4)
        for off in reversed(items):
            self.b.PrependUOffsetTRelative(off)
        return self.b.EndVector()

    def floats(self, values):
        return self.b.CreateNumpyVector(np.asarray(values, np.float32))

    def table(self, n_slots, fields):
        """``fields``: (slot, kind, value) with kind 'off', 'byte' or 'uint'; None values are skipped."""
        self.b.StartObject(n_slots)
        for slot, kind, value in fields:
            if value is None:
                continue
            if kind == "off":
                self.b.PrependUOffsetTRelativeSlot(slot, value, 0)
            elif kind == "byte":
                self.b.PrependInt8Slot(slot, value, 0)
            else:
                self.b.PrependUint32Slot(slot, value, 0)
        return self.b.EndObject()


def _associated_file(w, name, description, kind):
    name, description = w.string(name), w.string(description)
    return w.table(5, [(0, "off", name), (1, "off", description), (2, "byte", kind)])


def _normalization(w, mean, std):
    mean, std = w.floats(mean), w.floats(std)
    options = w.table(2, [(0, "off", mean), (1, "off", std)])
    return w.table(2, [(0, "byte", OPTIONS_NORMALIZATION), (1, "off", options)])


def _image_content(w, color, width, height):
    size = w.table(2, [(0, "uint", width), (1, "uint", height)]) if width else None
    props = w.table(2, [(0, "byte", color), (1, "off", size)])
    return w.table(3, [(0, "byte", CONTENT_IMAGE), (1, "off", props)])


def _feature_content(w):
    props = w.table(0, [])
    return w.table(3, [(0, "byte", CONTENT_FEATURE), (1, "off", props)])


def _tensor(w, name, description, content, process_units=(), stats=None, files=()):
    """``stats``: (min, max) of the tensor's values, as the model sees them."""
    name, description = w.string(name), w.string(description)
    units = w.offsets(list(process_units)) if process_units else None
    stats_off = None
    if stats:
        hi, lo = w.floats([stats[1]]), w.floats([stats[0]])
        stats_off = w.table(2, [(0, "off", hi), (1, "off", lo)])
    files_off = w.offsets(list(files)) if files else None
    return w.table(7, [(0, "off", name), (1, "off", description), (3, "off", content),
                       (4, "off", units), (5, "off", stats_off), (6, "off", files_off)])


def _input_tensor(w, spec):
    """An image input: its colour space, its size, and normalisation x = (pixel - mean) / std,
    one value for all channels or one per channel (see ``convert.inputspec``); any
    other input (``kind: tensor``) as a plain feature tensor."""
    if spec.get("kind") == "tensor":
        return _tensor(w, spec["name"], spec.get("description", ""), _feature_content(w))
    _, height, width, channels = spec["shape"]
    norm = from_card(spec)
    mean, std = norm.per_channel(channels)
    if norm.uniform:
        mean, std = mean[:1], std[:1]
    units = [_normalization(w, mean, std)]
    color = (COLOR_RGB if norm.color_order == "RGB" else COLOR_UNKNOWN) if channels == 3 else COLOR_GRAYSCALE
    content = _image_content(w, color, width, height)
    return _tensor(w, spec["name"], spec.get("description", ""), content, units, spec.get("range"))


def _output_tensor(w, spec, labels):
    files = [_associated_file(w, "labels.txt", "class names, one per line, in output order",
                              FILE_TENSOR_AXIS_LABELS)] if labels else []
    is_map = len(spec.get("shape", [])) == 4
    content = _image_content(w, COLOR_GRAYSCALE, 0, 0) if is_map else _feature_content(w)
    stats = (0.0, 1.0) if spec.get("activation") in ("sigmoid", "softmax") else None
    description = spec.get("meaning", "") + (f" (activation: {spec['activation']})" if spec.get("activation") else "")
    return _tensor(w, spec["name"], description, content, (), stats, files)


def build_metadata(meta: dict, order: dict | None = None) -> bytes:
    """A ``ModelMetadata`` flatbuffer for ``meta`` (a model card, see ``pipeline.cards``).
    ``order``: {"inputs": [...], "outputs": [...]}, the card's entries in the file's tensor
    order where it differs (readers pair metadata with tensors by position)."""
    w = _Writer()
    labels = meta.get("labels") or []
    order = order or {}
    labelled = meta["outputs"][0] if meta["outputs"] else None  # the card's first output is the classes'
    inputs = [_input_tensor(w, s) for s in order.get("inputs", meta["inputs"])]
    outputs = [_output_tensor(w, s, labels and s is labelled) for s in order.get("outputs", meta["outputs"])]
    inputs_vec, outputs_vec = w.offsets(inputs), w.offsets(outputs)
    subgraph = w.table(10, [(2, "off", inputs_vec), (3, "off", outputs_vec)])
    card = _associated_file(w, "model_card.json", "model card: inputs, outputs, training, quantization",
                            FILE_DESCRIPTIONS)
    files_vec, subgraphs = w.offsets([card]), w.offsets([subgraph])
    strings = {k: w.string(str(meta.get(k, ""))) for k in ("name", "description", "version", "author", "license")}
    parser = w.string(MIN_PARSER_VERSION)
    root = w.table(8, [(0, "off", strings["name"]), (1, "off", strings["description"]),
                       (2, "off", strings["version"]), (3, "off", subgraphs), (4, "off", strings["author"]),
                       (5, "off", strings["license"]), (6, "off", files_vec), (7, "off", parser)])
    w.b.Finish(root, file_identifier=b"M001")
    return bytes(w.b.Output())


def _associated_files(meta: dict) -> dict[str, bytes]:
    files = {"model_card.json": (json.dumps(meta, indent=2) + "\n").encode()}
    if meta.get("labels"):
        files["labels.txt"] = ("\n".join(meta["labels"]) + "\n").encode()
    return files


def attach(model_bytes: bytes, meta: dict) -> bytes:
    """``model_bytes`` with metadata for ``meta``; earlier metadata is replaced."""
    from edgepipe.base.backend import tflite_schema
    schema, flatbuffer_utils = tflite_schema()

    model_bytes = strip_associated_files(model_bytes)
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(model_bytes))
    model.metadata = model.metadata or []
    entry = next((m for m in model.metadata if m.name.decode() == METADATA_NAME), None)
    if entry is None:  # first time: a new buffer; later: overwrite ours in place
        entry = schema.MetadataT()
        entry.name, entry.buffer = METADATA_NAME.encode(), len(model.buffers)
        model.buffers.append(schema.BufferT())
        model.metadata.append(entry)
    order = _file_order(model, meta)
    model.buffers[entry.buffer].data = np.frombuffer(build_metadata(meta, order), np.uint8)
    _add_signature(schema, model, meta, order)
    packed = io.BytesIO(flatbuffer_utils.convert_object_to_bytearray(model))
    with zipfile.ZipFile(packed, "a", compression=zipfile.ZIP_STORED) as archive:
        for name, data in _associated_files(meta).items():
            archive.writestr(name, data)
    return packed.getvalue()


def _file_order(model, meta: dict) -> dict:
    """The card's inputs and outputs in the order the file's first subgraph lists its
    tensors, matched by name as an app finds them (the signature's key, else the
    tensor's name): the converter orders tensors by name (``boxes`` before ``scores``),
    the card follows the model. Where the names do not all match, the card's order is kept."""
    if not model.subgraphs:
        return {}
    graph, order = model.subgraphs[0], {}
    signature = next((s for s in model.signatureDefs or [] if s.subgraphIndex == 0), None)
    for key, tensors in (("inputs", graph.inputs), ("outputs", graph.outputs)):
        tensors = [int(t) for t in (tensors if tensors is not None else [])]
        names = {t: graph.tensors[t].name.decode() for t in tensors}
        if signature is not None:
            names |= {int(m.tensorIndex): m.name.decode() for m in getattr(signature, key) or []}
        entries = {e.get("name"): e for e in meta.get(key, [])}
        wanted = [names[t] for t in tensors]
        if len(entries) == len(meta.get(key, [])) == len(wanted) and set(wanted) == set(entries):
            order[key] = [entries[n] for n in wanted]
        elif (by_shape := _by_shape([graph.tensors[t] for t in tensors], meta.get(key, []))) is not None:
            order[key] = by_shape
    return order


def _by_shape(tensors, entries: list) -> list | None:
    """The card's entries in the file's order, matched by shape where no two share one: a file
    converted from a concrete function names its outputs ``Identity``, ``Identity_1``."""
    def key(shape):
        return tuple(1 if d is None or int(d) < 0 else int(d) for d in shape)
    shapes = [key(t.shape if t.shape is not None else []) for t in tensors]
    card = [key(e.get("shape") or []) for e in entries]
    if len(entries) != len(tensors) or len(set(shapes)) < len(shapes) or sorted(shapes) != sorted(card):
        return None
    return [entries[card.index(shape)] for shape in shapes]


def _add_signature(schema, model, meta: dict, order: dict):
    """A ``serving_default`` signature over the main subgraph, keyed by the card's names:
    LiteRT's signature runner (``getSignatureRunner``, Android's ``runSignature``) calls the
    model by those keys. The converter writes none without a SavedModel round trip, and
    with one it keys outputs ``output_0``, ``output_1``; an app reading the card would ask
    for names the file lacks. Named only where every tensor is matched to the card's entry."""
    if len(model.subgraphs or []) == 0 or len(model.signatureDefs or []) > 1:
        return
    graph, maps = model.subgraphs[0], {}
    for key, tensors in (("inputs", graph.inputs), ("outputs", graph.outputs)):
        tensors = [int(t) for t in (tensors if tensors is not None else [])]
        entries = order.get(key) or (meta.get(key, []) if len(tensors) == len(meta.get(key, [])) == 1 else None)
        names = [e.get("name") for e in entries or []]
        if not tensors or len(names) != len(tensors) or not all(names) or len(set(names)) < len(names):
            return
        maps[key] = dict(zip(tensors, names))
    if model.signatureDefs:  # the converter's: renamed in place, where it maps exactly these tensors
        signature = model.signatureDefs[0]
        for key in ("inputs", "outputs"):
            items = getattr(signature, key) or []
            if signature.subgraphIndex != 0 or sorted(int(m.tensorIndex) for m in items) != sorted(maps[key]):
                return
        for key in ("inputs", "outputs"):
            for item in getattr(signature, key):
                item.name = str(maps[key][int(item.tensorIndex)]).encode()
        return
    signature = schema.SignatureDefT()
    signature.inputs, signature.outputs = ([_tensor_map(schema, name, index) for index, name in maps[key].items()]
                                           for key in ("inputs", "outputs"))
    signature.signatureKey, signature.subgraphIndex = b"serving_default", 0
    model.signatureDefs = [signature]


def _tensor_map(schema, name: str, index: int):
    item = schema.TensorMapT()
    item.name, item.tensorIndex = str(name).encode(), index
    return item


def strip_associated_files(model_bytes: bytes) -> bytes:
    """The flatbuffer without an appended zip (re-attaching must not stack archives)."""
    try:
        with zipfile.ZipFile(io.BytesIO(model_bytes)) as archive:
            start = min((i.header_offset for i in archive.infolist()), default=len(model_bytes))
        return model_bytes[:start]
    except zipfile.BadZipFile:
        return model_bytes


def associated_files(path) -> dict[str, bytes]:
    """The files packed into a ``.tflite`` (``labels.txt``, ``model_card.json``)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return {name: archive.read(name) for name in archive.namelist()}
    except zipfile.BadZipFile:
        return {}
