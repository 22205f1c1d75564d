"""Loading and saving Keras models, safely: no foreign code without consent.

Before Keras deserialises anything, the model's config is read as plain JSON
from every format (``.keras`` zip: ``config.json``; HDF5: the ``model_config``
attribute; SavedModel folder: each node of ``keras_metadata.pb``) and refused,
unless the user says ``trust=True`` (``--trust-model``), when it holds

* a Lambda layer, anywhere (inside Sequential, Functional, TimeDistributed, ...);
* serialized Python code: a ``function`` field or a ``*_type: lambda`` pair
  (Lambda, RNN cell wrappers), or a ``__lambda__`` object;
* a ``module`` (or ``registered_name`` package) outside Keras, TensorFlow,
  tfmot and edgepipe: Keras *imports* such a module before it fails;
* a class that is neither a Keras built-in, one of edgepipe's registered layers
  (``edgepipe.base.custom_layers``) nor a tfmot (QAT / pruning) class;
* a TensorFlow op layer reaching for files or Python (``tf.io.write_file``,
  ``tf.py_function``, ...).

Resource limits (``edgepipe.base.safety``) hold even for trusted models.
"""
import functools
import importlib
import json
import re
import sys
from pathlib import Path

from edgepipe.base import atomic, safety
from edgepipe.base.backend import keras, keras3, tf
from edgepipe.base.errors import EdgePipeError, first_line

TRUSTED_MODULES = frozenset({"keras", "tf_keras", "tensorflow", "tensorflow_model_optimization", "edgepipe"})
TRUST_HINT = "pass --trust-model to load it anyway"
# json_utils' and serialization_lib's own encodings: data, never a class lookup
_STRUCTURAL = frozenset({"__keras_tensor__",
                         "__tuple__", "__ellipsis__", "__slice__", "__bytes__", "__tensor__", "__numpy__", "__typespec__",
                         "TensorShape", "TypeSpec", "CompositeTensor", "InputSpec"})
# edgepipe.quantize.qat's QuantizeConfigs: they appear (unregistered) in QAT models
_EDGEPIPE_UNREGISTERED = frozenset({"PassThroughQuantizeConfig", "OutputOnlyQuantizeConfig"})
# keras_metadata.pb node identifiers of whole models
_MODEL_NODES = frozenset({"_tf_keras_network", "_tf_keras_model", "_tf_keras_sequential"})
_MODEL_CLASSES = frozenset({"Functional", "Sequential", "Model"})  # what a model file's top object may be
# Layers that call a TensorFlow API symbol named in their config
_TF_SYMBOL_LAYERS = frozenset({"TFOpLambda", "SlicingOpLambda", "ClassMethod", "InstanceMethod",
                               "InstanceProperty"})
# ... and the TensorFlow symbols they may name: tensor maths only. An allowlist, because TensorFlow's
# namespace is large and keeps growing (raw_ops.ReadFile, experimental.register_filesystem_plugin, ...)
_TF_SYMBOL_NAMESPACES = frozenset({"math", "nn", "linalg", "image", "signal", "bitwise", "random", "dtypes",
                                   "__operators__"})
_TF_SYMBOL_TOP = frozenset("""
    abs acos add add_n argmax argmin argsort asin atan atan2 boolean_mask broadcast_to cast ceil clip_by_norm
    clip_by_value concat constant convert_to_tensor cos cosh cumprod cumsum divide einsum equal exp expand_dims
    eye fill floor floordiv gather gather_nd greater greater_equal identity identity_n less less_equal linspace
    log logical_and logical_not logical_or matmul maximum meshgrid minimum mod multiply negative norm not_equal
    one_hot ones ones_like pad pow range rank realdiv reduce_all reduce_any reduce_logsumexp reduce_max
    reduce_mean reduce_min reduce_prod reduce_std reduce_sum reduce_variance repeat reshape reverse roll round
    rsqrt scatter_nd searchsorted shape sigmoid sign sin sinh size slice sort split sqrt square squared_difference
    squeeze stack stop_gradient strided_slice subtract tan tanh tensor_scatter_nd_update tensordot tile
    transpose truediv truncatediv unique unstack where zeros zeros_like""".split())
_TF_SYMBOL_CLASSES = frozenset({"RaggedTensor", "SparseTensor"})  # ClassMethod layers: RaggedTensor.from_...


def load_model(path, trust: bool = False):
    """A Keras model, or for a SavedModel without Keras objects, or of a subclassed
    model, its serving signature (``edgepipe.base.serving``; its graph is checked as strictly)."""
    from edgepipe.base import serving
    path = Path(path)
    if path.is_dir() and model_format(path) == "savedmodel" and (serving.is_plain_savedmodel(path)
                                                                  or subclassed_root(path)):
        return _numeric_inputs(serving.load_serving(path, trust), path)
    return load_keras(path, trust, keras3=True)


def subclassed_root(path: Path) -> str | None:
    """The class of a Keras SavedModel's model when it is subclassed and not one Keras or edgepipe
    knows: Keras could only revive it from its traced calls, with no inputs or layers to export."""
    if not (path / "keras_metadata.pb").is_file():
        return None
    root = next((raw for identifier, raw, node_path in _metadata_nodes(path)
                 if node_path == "root" and identifier in _MODEL_NODES), None)
    config = _json(path, root, "keras_metadata.pb") if root else None
    cls = config.get("class_name") if isinstance(config, dict) else None
    if not isinstance(cls, str) or config.get("is_graph_network") is not False:
        return None
    return None if cls in _MODEL_CLASSES or _registered(cls) is not None else cls


def check_model_path(path) -> Path:
    """A model is a file or a folder: a FIFO or a device would block or never end when read."""
    path = Path(path)
    if not path.exists():
        raise EdgePipeError(f"model not found: {path}")
    if not (path.is_file() or path.is_dir()):
        raise EdgePipeError(f"{path} is not a regular file or a folder; give a model file")
    return path


def load_keras(path, trust: bool = False, keras3: bool = False):
    """A tf_keras model. ``keras3``: the caller also takes a Keras 3 file, as the signature
    Keras 3 exports from it (convert, verify, bench); commands that rewrite or read a Keras 2
    model's layers (quantize, prune, profile) refuse it in one line."""
    import edgepipe.base.custom_layers  # noqa: F401  (registers our layers for safe_mode loading)
    path = check_model_path(path)
    kind = model_format(path)
    try:
        check_resources(path, kind)
        api = "keras3" if saved_by_keras3(path, kind) else "keras2"
        if api == "keras3" and not keras3:
            raise EdgePipeError(f"{path} was saved by Keras 3: `edgepipe convert`, `verify` and `bench` take it, "
                                f"but this command works on a Keras 2 model's layers; save it with tf_keras "
                                f"(TF_USE_LEGACY_KERAS=1)")
        if kind == "savedmodel":
            savedmodel_nodes(path)  # even trusted: a SavedModel without Keras objects loads as no model at all
        if not trust:
            check_configs(path, kind, api)
            if kind == "savedmodel":
                from edgepipe.base.serving import check_graph
                check_graph(path)
    except EdgePipeError:
        raise
    except Exception as e:  # noqa: BLE001  a bad CRC, an encrypted member, a corrupt HDF5 tree...
        raise EdgePipeError(f"{path}: not a loadable Keras model ({first_line(e)})") from None
    if api == "keras3":
        from edgepipe.base import keras3_files
        return _numeric_inputs(keras3_files.load(path, trust), path)
    wrapped = False
    try:
        with tfmot_scope(path, kind) as wrapped:
            if kind == "keras":
                model = keras.models.load_model(path, compile=False, safe_mode=not trust)
            else:
                model = keras.models.load_model(path, compile=False)
    except Exception as e:  # Keras raises many types for corrupt or hostile files
        msg = first_line(e)
        if ("Lambda" in msg or "safe_mode" in msg) and not trust:
            raise EdgePipeError(f"{path}: refused to load a model with a Lambda layer or custom code "
                                f"({TRUST_HINT})") from None
        hint = ("; tfmot itself cannot reload its wrapped models from .keras files: save it as .h5 or a "
                "SavedModel" if wrapped and kind == "keras" else "")
        raise EdgePipeError(f"{path}: not a loadable Keras model ({msg}){hint}") from None
    _numeric_inputs(model, path)
    return _without_pruning_wrappers(model, path) if wrapped else model


def _numeric_inputs(model, path: Path):
    """Every command feeds the model numbers: a model that takes text (the text tutorial's export
    model, with its TextVectorization inside) is refused here, not deep in a converter or profiler.
    Keras inputs are tensors; a signature's (``base.serving``) are (name, shape, dtype) triples."""
    for given in getattr(model, "inputs", None) or []:
        name, dtype = given[::2] if isinstance(given, tuple) else (given.name.split(":")[0], given.dtype)
        dtype = str(getattr(dtype, "name", dtype))
        if "string" in dtype:
            raise EdgePipeError(f"{path}: input '{name}' takes text ({dtype}); edgepipe converts models that "
                                "take numbers: save the model without its TextVectorization and feed it the "
                                "token ids")
    return model


def _without_pruning_wrappers(model, path: Path):
    """tfmot's ``strip_pruning``, as its guide does before export: the wrappers' masks are
    already in the kernels, and their variable updates are no graph a converter takes."""
    if not any(type(layer).__name__ == "PruneLowMagnitude" for layer in model.submodules):
        return model
    import tensorflow_model_optimization as tfmot
    print(f"note: {path} holds tfmot's pruning wrappers; they are stripped (strip_pruning) as for any export",
          file=sys.stderr)
    return tfmot.sparsity.keras.strip_pruning(model)


# tfmot's wrappers: a model saved mid-QAT (its comprehensive guide saves one) or before strip_pruning
_TFMOT_WRAPPERS = ("QuantizeLayer", "QuantizeWrapper", "QuantizeWrapperV2", "QuantizeAnnotate", "PruneLowMagnitude",
                   "ClusterWeights")


def tfmot_scope(path: Path, kind: str):
    """The scopes tfmot's own guides load its wrapped models in (``quantize_scope``,
    ``prune_scope``, ``cluster_scope``), where the model's config names a wrapper;
    tfmot is trusted like Keras (its classes pass the config check). Yields whether it did."""
    import contextlib
    text = json.dumps([config for config, _, _ in read_configs(path, kind)])
    if not any(f'"{name}"' in text for name in _TFMOT_WRAPPERS):
        return contextlib.nullcontext(False)
    import tensorflow_model_optimization as tfmot

    @contextlib.contextmanager
    def scopes():
        with (tfmot.quantization.keras.quantize_scope(), tfmot.sparsity.keras.prune_scope(),
              tfmot.clustering.keras.cluster_scope()):
            yield True
    return scopes()


def saved_loss(path) -> object:
    """The loss a model file was compiled with, as saved (a name, a serialized object,
    or a list or dict of them per output); None where the file has none (compile=False
    loading never reads it). Plain JSON, no class lookup."""
    path = Path(path)
    try:
        kind = model_format(path)
        if kind == "keras":
            config = read_configs(path, kind)[0][0]
            compiled = config.get("compile_config") if isinstance(config, dict) else None
        elif kind == "h5":
            with _h5(path, str(path)) as f:
                raw = f.attrs.get("training_config")
            compiled = _json(path, raw, "its training_config") if raw is not None else None
        else:
            return None  # a SavedModel: its signature is what converts
        return compiled.get("loss") if isinstance(compiled, dict) else None
    except (EdgePipeError, OSError, ValueError):
        return None


def save_keras(model, path: Path) -> Path:
    with atomic.staged_path(path) as tmp:
        model.save(tmp)
    return path


# -- formats -------------------------------------------------------------------------------------------------------

def model_format(path: Path) -> str:
    """"keras" (v3 zip), "h5" (legacy HDF5) or "savedmodel" (tf.keras SavedModel folder), as Keras would pick."""
    import h5py
    if path.is_dir():
        if not (path / "saved_model.pb").is_file() and not (path / "saved_model.pbtxt").is_file():
            raise EdgePipeError(f"{path}: not a loadable Keras model (a folder without saved_model.pb "
                                f"is no SavedModel)")
        return "savedmodel"
    if path.suffix == ".keras":
        return "keras"
    try:
        if h5py.is_hdf5(str(path)):
            return "h5"
    except OSError:
        pass
    if path.suffix.lower() in (".h5", ".hdf5"):
        raise EdgePipeError(f"{path}: not a loadable Keras model (not an HDF5 file)")
    raise EdgePipeError(f"{path}: not a loadable Keras model (expected a .keras file, an HDF5 .h5 file or a "
                        f"SavedModel folder)")


def check_resources(path: Path, kind: str) -> None:
    """Refuse models that would expand past ``safety.max_model_bytes()``, reading headers only."""
    if kind == "savedmodel":
        safety.check_folder_size(path)
    elif kind == "keras":
        import zipfile
        safety.check_model_zip(path)
        with zipfile.ZipFile(path) as zf:
            if "model.weights.h5" in zf.namelist():
                with zf.open("model.weights.h5") as member:
                    with _h5(path, member) as f:
                        safety.check_hdf5_size(path, f, "the weights in model.weights.h5")
    else:
        with _h5(path, str(path)) as f:
            safety.check_hdf5_size(path, f)


def saved_by_keras3(path: Path, kind: str) -> bool:
    """Whether Keras 3 (TF 2.16+'s own tf.keras) saved the file: tf_keras cannot rebuild it
    (its configs differ), Keras 3 loads it (``edgepipe.base.keras3_files``)."""
    version = saved_keras_version(path, kind)
    major = version.split(".", 1)[0] if version else ""
    return major.isdigit() and int(major) >= 3


def saved_keras_version(path: Path, kind: str) -> str | None:
    """The Keras version a .keras or HDF5 file records (metadata.json, ``keras_version``), or None."""
    if kind == "keras":
        import zipfile
        with zipfile.ZipFile(path) as zf:
            if "metadata.json" not in zf.namelist():
                return None
            meta = _json(path, zf.read("metadata.json"), "metadata.json")
        version = meta.get("keras_version") if isinstance(meta, dict) else None
    elif kind == "h5":
        with _h5(path, str(path)) as f:
            version = f.attrs.get("keras_version")
    else:
        return None
    version = version.decode("utf-8", "replace") if isinstance(version, bytes) else version
    return version if isinstance(version, str) else None


def _h5(path: Path, source):
    import h5py
    try:
        return h5py.File(source, "r")
    except Exception as e:  # noqa: BLE001  h5py raises OSError, ValueError, ... on corrupt files
        raise EdgePipeError(f"{path}: not a loadable Keras model (corrupt HDF5: {first_line(e)})") from None


def read_configs(path: Path, kind: str) -> list[tuple[object, bool, str]]:
    """The JSON Keras deserialises on load, as (config, check class names, "model" or "layer") triples."""
    if kind == "keras":
        import zipfile
        with zipfile.ZipFile(path) as zf:
            if "config.json" not in zf.namelist():
                raise EdgePipeError(f"{path}: not a loadable Keras model (no config.json in the archive)")
            return [(_json(path, zf.read("config.json"), "config.json"), True, "model")]
    if kind == "h5":
        with _h5(path, str(path)) as f:
            raw = f.attrs.get("model_config")
        if raw is None:
            raise EdgePipeError(f"{path}: not a loadable Keras model (no model config in the HDF5 file: "
                                f"weights only?)")
        return [(_json(path, raw, "its model_config"), True, "model")]
    configs = []
    for identifier, raw in savedmodel_nodes(path):
        config = _json(path, raw, "keras_metadata.pb")
        if isinstance(config, dict):
            config.pop("training_config", None)  # only read by compile=True
        # compile=False: Keras revives metrics but ignores the failures; class names there run no code
        configs.append((config, identifier != "_tf_keras_metric", "model" if identifier in _MODEL_NODES else "layer"))
    return configs


def savedmodel_nodes(path: Path) -> list[tuple[str, str]]:
    """(identifier, metadata JSON) of each Keras object in a SavedModel folder, as Keras reads them: from
    ``keras_metadata.pb``, or for SavedModels written before TF 2.5, from the object graph itself."""
    if (path / "keras_metadata.pb").is_file():
        return [(identifier, raw) for identifier, raw, _ in _metadata_nodes(path)]
    try:
        graph = tf.__internal__.saved_model.parse_saved_model(str(path)).meta_graphs[0].object_graph_def
    except Exception as e:  # noqa: BLE001  a corrupt saved_model.pb
        raise EdgePipeError(f"{path}: not a loadable Keras model ({first_line(e)})") from None
    nodes = [(n.user_object.identifier, n.user_object.metadata) for n in graph.nodes
             if n.WhichOneof("kind") == "user_object" and n.user_object.identifier.startswith("_tf_keras_")
             and n.user_object.metadata]
    if not nodes:
        raise EdgePipeError(f"{path}: not a Keras SavedModel (no keras_metadata.pb: written by tf.saved_model.save "
                            f"or not Keras at all); convert and verify take its serving signature, this command needs "
                            f"a Keras model (.keras, .h5)")
    return nodes


def _metadata_nodes(path: Path) -> list[tuple[str, str, str]]:
    """(identifier, metadata JSON, node path) of each node of ``keras_metadata.pb``."""
    metadata = keras.protobuf.saved_metadata_pb2.SavedMetadata()
    try:
        metadata.ParseFromString((path / "keras_metadata.pb").read_bytes())
    except Exception as e:  # noqa: BLE001  protobuf's DecodeError and friends
        raise EdgePipeError(f"{path}: not a loadable Keras model (keras_metadata.pb is corrupt: "
                            f"{first_line(e)})") from None
    return [(node.identifier, node.metadata, node.node_path) for node in metadata.nodes]


def _json(path: Path, raw, where: str):
    try:
        return json.loads(raw.decode("utf-8") if isinstance(raw, bytes) else raw)
    except (ValueError, TypeError, UnicodeDecodeError, RecursionError):
        raise EdgePipeError(f"{path}: not a loadable Keras model ({where} is not valid JSON)") from None


def check_configs(path: Path, kind: str, api: str = "keras2") -> None:
    """Raise EdgePipeError for the first thing in the model's config that would run foreign code.
    ``api``: the Keras that saved it, "keras2" (tf_keras) or "keras3", whose built-ins it may name."""
    for config, check_classes, root in read_configs(path, kind):
        problem = find_foreign_code(config, check_classes, root, api)
        if problem:
            raise EdgePipeError(f"{path}: refused: {safety.one_line(problem, 400)}; {TRUST_HINT}")


# -- the config walk -----------------------------------------------------------------------------------------------

def find_foreign_code(config, check_classes: bool = True, root: str = "model", api: str = "keras2") -> str | None:
    """What in a Keras config (plain JSON) would run code from outside Keras and
    edgepipe, in words, or None. Walks the whole tree iteratively. ``root``: what
    the config describes, "model" or "layer" (for the messages)."""
    stack = [(config, None, "the model")]  # (value, class of the object whose "config" this is, enclosing layer)
    while stack:
        value, owner_class, layer = stack.pop()
        if isinstance(value, list):
            stack.extend((v, None, layer) for v in reversed(value))
            continue
        if not isinstance(value, dict):
            continue
        cls = value.get("class_name")
        if isinstance(cls, str):
            inner = value.get("config")
            name = inner.get("name") if isinstance(inner, dict) else None
            name = name if isinstance(name, str) else value.get("name")
            kind = root if value is config else "layer"
            here = f"{kind} '{name}'" if isinstance(name, str) else layer
            # Keras falls back to registered_name when the module has no such class: check both
            registered = value.get("registered_name")
            fallback = registered if isinstance(registered, str) and registered != cls else None
            for candidate in filter(None, (cls, fallback)):
                problem = _class_problem(value, candidate, here, check_classes, api)
                if problem:
                    return problem
            if value is config and root == "model" and check_classes and (
                    cls not in _MODEL_CLASSES or (fallback and fallback not in _MODEL_CLASSES)):
                return f"the file's top object is {fallback or cls}, not a Keras model"
            owner = fallback if fallback in _TF_SYMBOL_LAYERS else cls
            children = [(v, owner if k == "config" else None, here) for k, v in value.items()]
        else:
            here = layer
            children = [(v, None, here) for v in value.values()]
        problem = _field_problem(value, owner_class, here)
        if problem:
            return problem
        stack.extend(reversed(children))
    return None


def _class_problem(obj: dict, cls: str, here: str, check_classes: bool, api: str) -> str | None:
    if cls == "Lambda":
        return f"{here} is a Lambda layer (arbitrary Python code)"
    if cls == "__lambda__":
        return f"{here} holds a serialized Python lambda (arbitrary Python code)"
    if cls == "TensorFlowOpLayer":
        return f"{here} is a TensorFlowOpLayer (a raw TensorFlow graph op)"
    registered = obj.get("registered_name")
    if isinstance(registered, str) and _registered(registered, api) is None:
        package = registered.split(">", 1)[0] if ">" in registered else registered
        if ("." in package or ">" in registered) and _module_root(package) not in TRUSTED_MODULES:
            return f"{here} ({cls}) names package '{package}', outside Keras and edgepipe"
    if cls == "function":
        return _function_problem(obj, here, api)
    if not check_classes or cls in _STRUCTURAL:
        return None
    if isinstance(registered, str) and _registered(registered, api) is not None:
        return None
    if _registered(cls, api) is not None or cls in _keras_class_names(api) or cls in _EDGEPIPE_UNREGISTERED:
        return None
    if cls in _tfmot_class_names() or _keras_application_layer(obj.get("module"), cls, api):
        return None
    return f"{here} has class '{cls}', which is neither a Keras built-in nor an edgepipe layer"


def _keras_application_layer(module, cls: str, api: str) -> bool:
    """A layer that keras.applications' own models define (ConvNeXt's LayerScale), named by
    its Keras module: Keras's installed code, imported from that namespace only."""
    root = "keras" if api == "keras3" else "tf_keras"
    if not isinstance(module, str) or not re.fullmatch(rf"{root}\.src\.applications\.[a-z0-9_]+", module):
        return False
    try:
        found = getattr(importlib.import_module(module), cls, None)
    except ImportError:
        return False
    return isinstance(found, type) and issubclass(found, _api(api).layers.Layer)


def _function_problem(obj: dict, here: str, api: str = "keras2") -> str | None:
    """``{"class_name": "function", "config": NAME, "module": "builtins"}``: Keras looks NAME up among
    registered functions, then its own activations/losses/metrics, then in the module (for
    ``builtins``, Python's own: ``exec``, ``open``...)."""
    fn, module = obj.get("config"), obj.get("module")
    if not isinstance(fn, str):
        return f"{here} holds a function Keras cannot look up by name"
    if _registered(fn, api) is not None:
        return None
    root = _module_root(module) if isinstance(module, str) else None
    if root in ("edgepipe", "tensorflow_model_optimization"):
        return None
    if (module is None or module == "builtins" or root in ("keras", "tf_keras")) and fn in _keras_function_names(api):
        return None
    return f"{here} names function '{fn}', which is neither a Keras nor an edgepipe function"


def _field_problem(obj: dict, owner_class: str | None, here: str) -> str | None:
    for key, value in obj.items():
        if not isinstance(key, str):
            continue
        if (key == "module" or key.endswith("_module")) and isinstance(value, str) and value:
            if _module_root(value) not in TRUSTED_MODULES and value != "builtins":
                return (f"{here} names Python module '{value}', outside Keras and edgepipe "
                        f"(loading would import it and run its code)")
        elif key in ("function", "cls_symbol", "method_name", "attr_name") and owner_class in _TF_SYMBOL_LAYERS:
            problem = _symbol_problem(owner_class, key, value, here)
            if problem:
                return problem
        elif key == "function" and value is not None:
            return f"{here} holds a serialized Python function (arbitrary Python code)"
        elif key.endswith("_type") and value == "lambda":
            return f"{here} holds a serialized Python lambda in '{key[:-5]}' (arbitrary Python code)"
        elif key in _FILE_FIELDS and isinstance(value, str):  # a list is the vocabulary itself
            return (f"{here} reads its {key.replace('_', ' ')} from the file '{safety.one_line(value, 80)}' "
                    f"when loaded (a model file must hold what it needs)")
    return None


# lookup and text-vectorization layers take these as a list, or as a path that loading opens
_FILE_FIELDS = frozenset({"vocabulary", "idf_weights"})


def _symbol_problem(owner_class: str, key: str, value, here: str) -> str | None:
    """What a TensorFlow-op layer's symbol would reach beyond tensor maths, or None."""
    if key == "function" and owner_class in ("TFOpLambda", "SlicingOpLambda"):
        ok = isinstance(value, str) and _allowed_symbol(value)
    elif key == "cls_symbol":
        ok = value in _TF_SYMBOL_CLASSES
    else:  # a tensor's method or attribute ("method_name", InstanceMethod/InstanceProperty "attr_name")
        ok = isinstance(value, str) and value.isidentifier() and not value.startswith("_")
    return None if ok else (f"{here} calls TensorFlow's '{value}', which is not tensor maths "
                            f"(file, Python or system access is refused)")


def _allowed_symbol(symbol: str) -> bool:
    for prefix in ("compat.v1.", "compat.v2."):
        symbol = symbol[len(prefix):] if symbol.startswith(prefix) else symbol
    namespace, _, name = symbol.rpartition(".")
    if not name.isidentifier() or (name.startswith("_") and namespace != "__operators__"):
        return False
    return namespace in _TF_SYMBOL_NAMESPACES if namespace else name in _TF_SYMBOL_TOP


def _module_root(module: str) -> str:
    return module.split(".", 1)[0]


def _registered(name: str, api: str = "keras2"):
    try:
        if api == "keras3":
            return keras3.saving.get_registered_object(name)
        return keras.utils.get_registered_object(name)
    except Exception:  # noqa: BLE001
        return None


def _public_classes(namespace) -> set[str]:
    return {n for n in dir(namespace) if not n.startswith("_") and isinstance(getattr(namespace, n, None), type)}


def _api(api: str):
    return keras3 if api == "keras3" else keras


def _namespace(module, dotted: str):
    for part in dotted.split("."):
        module = getattr(module, part, None)
    return module


@functools.cache
def _keras_class_names(api: str = "keras2") -> frozenset:
    """Every class name that Keras (tf_keras, or Keras 3) itself resolves: layers (tf_keras'
    deserialisation table included: Functional, TFOpLambda, ...), initializers, regularizers, ...,
    and for Keras 3 its dtype policies and the ops a functional model records (TrueDivide, ...)."""
    names = {"Functional", "Sequential", "Model", "TFOpLambda", "SlicingOpLambda"}
    namespaces = ["layers", "initializers", "regularizers", "constraints", "optimizers", "optimizers.schedules",
                  "losses", "metrics", "models"]
    if api == "keras3":
        names |= _keras3_op_names()
        namespaces += ["dtype_policies"]
    else:
        names |= _tf_keras_layer_table()
        namespaces += ["optimizers.legacy", "mixed_precision"]
    for ns in namespaces:
        namespace = _namespace(_api(api), ns)
        if namespace is not None:
            names |= _public_classes(namespace)
    return frozenset(names - {"Lambda", "TensorFlowOpLayer"})


def _tf_keras_layer_table() -> set:
    try:  # tf_keras' own table of deserialisable layers (pinned version; public namespaces otherwise)
        table = keras.src.layers.serialization
        table.populate_deserializable_objects()
        return {n for n, v in table.LOCAL.ALL_OBJECTS.items() if isinstance(v, type)}
    except Exception:  # noqa: BLE001
        return set()


def _keras3_op_names() -> set:
    """The operations a Keras 3 functional config may record between layers (``keras.ops``)."""
    operation = keras3.src.ops.operation.Operation
    names = set()
    for module in ("numpy", "nn", "math", "image", "core", "linalg"):
        found = _namespace(keras3.src.ops, module)
        names |= {n for n, v in vars(found or object).items() if isinstance(v, type) and issubclass(v, operation)}
    return names


@functools.cache
def _keras_function_names(api: str = "keras2") -> frozenset:
    names = set()
    for ns in ("activations", "losses", "metrics"):
        namespace = getattr(_api(api), ns)
        names |= {n for n in dir(namespace) if not n.startswith("_") and callable(getattr(namespace, n, None))
                  and not isinstance(getattr(namespace, n), type)}
    return frozenset(names - {"get", "serialize", "deserialize"})


@functools.cache
def _tfmot_class_names() -> frozenset:
    """Classes tfmot defines (QAT wrappers, quantize configs, quantizers, pruning
    wrappers): tfmot is trusted and QAT exports name them without a module."""
    try:
        import tensorflow_model_optimization as tfmot
        for part in ("quantization.keras", "sparsity.keras", "clustering.keras", "experimental.combine"):
            obj = tfmot
            for attr in part.split("."):
                obj = getattr(obj, attr)
    except Exception:  # noqa: BLE001  tfmot missing or broken: its classes stay unknown
        return frozenset()
    names = set()
    for mod_name, mod in list(sys.modules.items()):
        if mod_name.startswith("tensorflow_model_optimization") and mod is not None:
            names |= {n for n, v in vars(mod).items() if isinstance(v, type) and not n.startswith("_")}
    return frozenset(names)

