"""A SavedModel that is not Keras (written by ``tf.saved_model.save`` from a
``tf.Module``): its ``serving_default`` signature is the model.

Loading runs the functions its object graph names (resource initialisers,
restore functions) and verify runs the signature, so before TensorFlow loads
anything the graph is read as a protobuf and every op those functions can reach
is checked, as ``modelio`` checks a Keras model's TensorFlow op layers: ops that
reach outside the tensor maths (files, Python, summaries, datasets, the network)
are refused unless the user says ``trust=True`` (``--trust-model``). The
folder's size limit (``safety``) holds even for trusted models.
"""
import re
from pathlib import Path

from edgepipe.base import safety
from edgepipe.base.backend import op_def, tf
from edgepipe.base.errors import EdgePipeError, first_line

SIGNATURE = "serving_default"
# Op types (substrings) that draw random numbers: an export cannot match a random signature
RANDOM_OPS = ("Random", "Multinomial", "TruncatedNormal", "Rng", "StatefulUniform", "StatefulStandardNormal")
TRUST_HINT = "pass --trust-model to load it anyway"
# Op types (substrings) that read or write files, call Python, log, or talk to other processes
DENIED_OPS = ("File", "Reader", "Save", "Restore", "Checkpoint", "PyFunc", "Print", "Summary", "Dataset",
              "Iterator", "Debug", "Proto", "Rpc", "Send", "Recv", "ImmutableConst", "LoadAndRemap",
              "VocabRemapping", "Record", "Collective", "TPU", "Snapshot", "Dump", "FixedUnigram")
# an op with an attribute that names a file or folder (DumpTensor's log_dir_path, a sampler's
# vocab_file) reaches the file system whatever the op is called
# (whole words: CTCBeamSearchDecoder's top_paths is no path)
FILE_ATTR = re.compile(r"(^|_)(file|filename|dir)(_|$)|(^|_)(file|dir)_?path$|^path$", re.IGNORECASE)
# ... but reading the next element of an iterator passed in is no access of its own: the dataset
# behind it needs a *Dataset op, denied above (tf_keras saves adapted layers' adapt_step with it)
ALLOWED_OPS = frozenset({"IteratorGetNext", "IteratorGetNextSync", "IteratorGetNextAsOptional"})
# Stateful ops are allowed by name, not refused by name: a model's own graph keeps state in
# variables, lookup tables and tensor arrays, branches and loops, checks, and draws random
# numbers (live_random_op judges those). Any other stateful op (queues, remote calls, host
# callbacks, sleeps, device feeds, thread pools...) is refused, whatever it is called.
SAFE_STATEFUL = frozenset({
    "StatefulPartitionedCall", "While", "If", "Case", "Assert", "CheckNumerics", "CheckNumericsV2", "Empty",
    "VarHandleOp", "ReadVariableOp", "AssignVariableOp", "AssignAddVariableOp", "AssignSubVariableOp",
    "VarIsInitializedOp", "VariableShape", "DestroyResourceOp", "DisableCopyOnRead", "Variable", "VariableV2",
    "TemporaryVariable", "DestroyTemporaryVariable", "ResourceStridedSliceAssign",
    "HashTable", "HashTableV2", "MutableHashTable", "MutableHashTableV2", "MutableHashTableOfTensors",
    "MutableHashTableOfTensorsV2", "MutableDenseHashTable", "MutableDenseHashTableV2", "AnonymousHashTable",
    "AnonymousMutableHashTable", "AnonymousMutableHashTableOfTensors", "AnonymousMutableDenseHashTable",
    "InitializeTableV2", "StackV2", "StackPushV2", "StackPopV2", "StackCloseV2",
    "MutexV2", "MutexLock", "ConsumeMutexLock", "CudnnRNN", "CudnnRNNV2", "CudnnRNNV3",
    "NonDeterministicInts", "SampleDistortedBoundingBox", "SampleDistortedBoundingBoxV2"})
SAFE_STATEFUL_PREFIXES = ("TensorArray", "LookupTable", "ResourceGather", "ResourceScatter", "ResourceApply",
                          "ResourceSparseApply")


class RandomSignature(EdgePipeError):
    """The signature draws random numbers (``op``), so no export can match it."""

    def __init__(self, op: str, message: str):
        super().__init__(message)
        self.op = op


def _natural(key: str) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", key)]


class ServingModel:
    """The signature, called like a model: ``model(feeds) -> {output name: tensor}``.
    ``inputs``: [(name, shape with None where free, dtype name)] in argument order.
    ``keras_model``: the Keras 3 model it was exported from, if any (``keras3_files``)."""

    keras_model = None

    def __init__(self, path: Path, loaded, function):
        self.path, self._loaded, self.function = path, loaded, function  # the object keeps its variables alive
        specs = function.structured_input_signature[1]
        order = [k for k in getattr(function, "_arg_keywords", None) or sorted(specs) if k in specs]
        self.inputs = [(k, _shape(specs[k]), specs[k].dtype.name) for k in order]
        outs = function.structured_outputs  # a map with no set order: output_2 before output_10, always
        self.outputs = [(k, _shape(outs[k]), outs[k].dtype.name) for k in sorted(outs, key=_natural)]
        self._names: dict = {}  # signature key -> the name callers see (name_outputs)

    @property
    def input_names(self) -> list[str]:
        return [n for n, _, _ in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [n for n, _, _ in self.outputs]

    def __call__(self, feeds: dict) -> dict:
        out = self.function(**{n: feeds[n] for n in self.input_names})
        named = {self._names.get(k, k): v for k, v in out.items()}
        return {n: named[n] for n in self.output_names}  # in the outputs' order, not the map's

    def name_outputs(self, names: dict):
        """Call the signature's outputs by ``names`` ({signature key: name}) from now on."""
        self._names = dict(names)
        by_key = {k: (shape, dtype) for k, shape, dtype in self.outputs}
        order = [k for k in names if k in by_key] + [k for k in by_key if k not in names]  # ``names``' order
        self.outputs = [(self._names.get(k, k), *by_key[k]) for k in order]


def _shape(spec) -> tuple:
    if not hasattr(spec, "shape") or spec.shape.rank is None:
        raise EdgePipeError(f"signature tensor {getattr(spec, 'name', spec)} has no known rank; edgepipe "
                            f"exports dense tensors of a known rank")
    return tuple(spec.shape.as_list())


def is_plain_savedmodel(path: Path) -> bool:
    """A SavedModel folder Keras cannot rebuild: no keras_metadata.pb and no Keras node that carries its
    config (``tf.saved_model.save`` of a Keras model leaves Keras nodes without one: its serving
    signature is all there is to load)."""
    if not path.is_dir() or (path / "keras_metadata.pb").is_file():
        return False
    graph = _meta_graph(path).object_graph_def
    return not any(n.WhichOneof("kind") == "user_object" and n.user_object.identifier.startswith("_tf_keras_")
                   and n.user_object.metadata for n in graph.nodes)


def load_serving(path, trust: bool = False) -> ServingModel:
    path = Path(path)
    safety.check_folder_size(path)
    meta = _meta_graph(path)
    if not meta.object_graph_def.nodes:
        raise EdgePipeError(f"{path}: a TensorFlow 1 SavedModel (no object graph); re-save it with "
                            f"tf.saved_model.save in TensorFlow 2")
    if SIGNATURE not in meta.signature_def:
        found = ", ".join(sorted(k for k in meta.signature_def if not k.startswith("__"))) or "none"
        raise EdgePipeError(f"{path}: no '{SIGNATURE}' signature (has: {found}); save it with "
                            f"tf.saved_model.save(module, path, signatures={{'{SIGNATURE}': module.fn}})")
    if not trust:
        check_graph(path, meta)
    random_op = live_random_op(meta)
    if random_op:
        raise RandomSignature(random_op, f"{path}: its {SIGNATURE} signature draws random numbers (op "
                              f"'{random_op}' feeds its outputs), so no export can match it: Keras 3's model.export "
                              f"leaves augmentation layers (RandomFlip, ...) active. Give edgepipe the .keras file "
                              f"(it drops them) or export the model without them")
    try:
        loaded = tf.saved_model.load(str(path))
        return ServingModel(path, loaded, loaded.signatures[SIGNATURE])
    except EdgePipeError:
        raise
    except Exception as e:  # noqa: BLE001  unregistered ops, missing variables, corrupt checkpoints...
        raise EdgePipeError(f"{path}: not a loadable SavedModel ({first_line(e)})") from None


def check_graph(path: Path, meta=None) -> None:
    """Refuse a SavedModel whose functions reach files, Python or the system. Keras
    SavedModels too: loading one runs its resources' initializers, which a plain Keras
    config check never sees."""
    problem = graph_problem(meta or _meta_graph(path))
    if problem:
        raise EdgePipeError(f"{path}: refused: {problem}; {TRUST_HINT}")


def _meta_graph(path: Path):
    try:
        return tf.__internal__.saved_model.parse_saved_model(str(path)).meta_graphs[0]
    except Exception as e:  # noqa: BLE001  a corrupt saved_model.pb
        raise EdgePipeError(f"{path}: not a loadable SavedModel ({first_line(e)})") from None


def _op_problem(node, functions) -> str | None:
    """Why ``node`` may reach outside the tensor maths, or None. ``functions``: the
    graph's own function names (a node calling one is walked into, not judged)."""
    if node.op in ALLOWED_OPS or node.op in functions:
        return None
    if any(d in node.op for d in DENIED_OPS) or any(FILE_ATTR.search(key) for key in node.attr):
        return "file, Python or system access"
    definition = op_def(node.op)
    if definition is None:
        return "an op this TensorFlow does not know: a custom op"
    if definition.is_stateful and not _safe_stateful(node.op):
        return "a stateful op outside variables, tables, loops and random numbers"
    return None


def _safe_stateful(op: str) -> bool:
    return (op in SAFE_STATEFUL or op.startswith(SAFE_STATEFUL_PREFIXES)
            or any(r in op for r in RANDOM_OPS) and "Queue" not in op)  # RandomShuffleQueue is a queue


def graph_problem(meta) -> str | None:
    """The first op, in words, that loading or serving could run and that may reach
    outside the tensor maths, or None. Walks from every function the object graph
    names (what ``tf.saved_model.load`` can call) through every function they call;
    the checkpoint functions TensorFlow writes for TF1 loaders are not reachable."""
    functions = {f.signature.name for f in meta.graph_def.library.function}
    node = _first_reachable(meta, list(meta.object_graph_def.concrete_functions), lambda f: f.node_def,
                            lambda n: _op_problem(n, functions) is not None)
    if node is None:
        return None
    return f"its graph runs op '{safety.one_line(node.op, 80)}' ({_op_problem(node, functions)})"


def live_random_op(meta) -> str | None:
    """A random op whose value reaches the serving signature's outputs, or None.
    Walks back from each function's outputs along data edges, into the functions
    live nodes call (all of a called function counts as live: a safe over-estimate);
    random ops only sequenced by control edges, or left dead, do not count."""
    nodes = meta.object_graph_def.nodes
    folders = [c.node_id for c in nodes[0].children if c.local_name == "signatures"] if nodes else []
    roots = [nodes[c.node_id].bare_concrete_function.concrete_function_name for f in folders
             for c in nodes[f].children if c.local_name == SIGNATURE]
    node = _first_reachable(meta, roots, _live_nodes, lambda n: any(r in n.op for r in RANDOM_OPS))
    return None if node is None else safety.one_line(node.op, 80)


def _first_reachable(meta, roots: list[str], nodes_of, matches):
    """The first node matching ``matches`` among ``nodes_of`` each library function
    reachable from ``roots`` through the functions those nodes call, or None."""
    library = {f.signature.name: f for f in meta.graph_def.library.function}
    todo, seen = roots, set()
    while todo:
        name = todo.pop()
        if name in seen or name not in library:
            continue
        seen.add(name)
        for node in nodes_of(library[name]):
            if matches(node):
                return node
            todo.extend(_called(node))
    return None


def _live_nodes(fdef):
    """The nodes of a function its outputs depend on through data edges."""
    by_name = {n.name: n for n in fdef.node_def}
    todo, live = [v.split(":")[0] for v in fdef.ret.values()], {}
    while todo:
        name = todo.pop()
        if name in live or name not in by_name:  # a function argument, or done
            continue
        live[name] = by_name[name]
        todo.extend(i.split(":")[0] for i in by_name[name].input if not i.startswith("^"))
    return live.values()


def _called(node) -> list[str]:
    """Functions a node calls: its op type (a library function) and function-valued attrs."""
    names = [node.op]
    for value in node.attr.values():
        if value.HasField("func"):
            names.append(value.func.name)
        names.extend(f.name for f in value.list.func)
    return names
