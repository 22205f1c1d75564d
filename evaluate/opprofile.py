"""What a TFLite graph spends its ops on.

LiteRT's Python interpreter exposes no per-op timings (its profiler lives in the
C++ ``benchmark_model --enable_op_profiling=true``), so edgepipe reports the op
mix by type and says plainly that per-op times need that tool or the device.
It also says which ops XNNPACK left to the reference kernels, as
``benchmark_model`` does ("replacing N of M nodes ... yielding K partitions"):
on a phone such an op is slow, and every partition boundary costs a hand-over.
"""
from collections import Counter

PER_OP_UNAVAILABLE = ("per-op timings: not exposed by LiteRT's Python interpreter; run "
                      "benchmark_model --graph=MODEL --enable_op_profiling=true (host or adb) for them")


def tflite_op_histogram(path) -> dict:
    from ai_edge_litert.interpreter import Interpreter
    interp = Interpreter(model_path=str(path), experimental_preserve_all_tensors=False)
    ops = Counter(op["op_name"] for op in interp._get_ops_details())
    return dict(ops.most_common())


def xnnpack_coverage(interp) -> dict:
    """What XNNPACK took of an allocated LiteRT interpreter's graph:
    ``{"ops", "partitions", "outside": {op name: count}}``. An op runs outside
    every partition when a tensor it writes is read by a partition, returned by
    the model or read by another such op, without being a partition's own output."""
    ops = interp._get_ops_details()
    partitions = [o for o in ops if o["op_name"] == "DELEGATE"]
    plain = [o for o in ops if o["op_name"] != "DELEGATE"]
    made_inside = {int(t) for o in partitions for t in o["outputs"]}
    wanted = {int(t) for o in partitions for t in o["inputs"]} | {d["index"] for d in interp.get_output_details()}
    if not partitions:
        outside = {o["index"] for o in plain}
    else:
        outside, grew = set(), True
        while grew:
            needed = wanted | {int(t) for o in plain if o["index"] in outside for t in o["inputs"]}
            new = {o["index"] for o in plain if o["index"] not in outside
                   and any(int(t) in needed and int(t) not in made_inside for t in o["outputs"])}
            outside, grew = outside | new, bool(new)
    names = Counter(o["op_name"] for o in plain if o["index"] in outside)
    return {"ops": len(plain), "partitions": len(partitions), "outside": dict(names.most_common())}
