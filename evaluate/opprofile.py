"""What a TFLite graph spends its ops on.

LiteRT's Python interpreter exposes no per-op timings (its profiler lives in the
C++ ``benchmark_model --enable_op_profiling=true``), so edgepipe reports the op
mix by type and says plainly that per-op times need that tool or the device.
"""
from collections import Counter

PER_OP_UNAVAILABLE = ("per-op timings: not exposed by LiteRT's Python interpreter; run "
                      "benchmark_model --graph=MODEL --enable_op_profiling=true (host or adb) for them")


def tflite_op_histogram(path) -> dict:
    from ai_edge_litert.interpreter import Interpreter
    interp = Interpreter(model_path=str(path), experimental_preserve_all_tensors=False)
    ops = Counter(op["op_name"] for op in interp._get_ops_details())
    return dict(ops.most_common())
