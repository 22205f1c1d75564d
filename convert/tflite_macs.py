"""Mult-adds counted on a TFLite flatbuffer: the graph that runs, whatever wrote it.

``mobile_models.profile`` counts tf_keras layers, as the papers do. A model from
elsewhere (a Keras 3 file, a SavedModel, someone's .tflite) has no such layers, and
a tf_keras model may nest others; the converted graph has them all, flattened. The
definitions are the profiler's (batch 1, per output element): conv = k_h*k_w*c_in/g,
depthwise = k_h*k_w, transposed conv = h_in*w_in*c_in*k_h*k_w*c_out, dense and
matmul = the inner dimension, a fused LSTM or RNN = its gate weights at every step.
Every other op counts 0, as BN, bias and element-wise
ops do in the papers.
"""
import numpy as np


def count_macs(data: bytes) -> int:
    """Mult-adds of one inference of every subgraph's multiply-accumulate ops."""
    from edgepipe.base.backend import tflite_schema
    schema, flatbuffer_utils = tflite_schema()
    ops = schema.BuiltinOperator
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(data))
    codes = [max(c.builtinCode, c.deprecatedBuiltinCode) for c in model.operatorCodes]
    total = 0
    for graph in model.subgraphs:
        def shape(i):
            return [int(d) for d in graph.tensors[i].shape] if i >= 0 else []
        for op in graph.operators or []:
            code, ins, outs = codes[op.opcodeIndex], list(op.inputs), list(op.outputs)
            if code == ops.CONV_2D:  # filter [c_out, k_h, k_w, c_in / groups]
                total += _elems(shape(outs[0])) * int(np.prod(shape(ins[1])[1:]))
            elif code == ops.DEPTHWISE_CONV_2D:  # filter [1, k_h, k_w, c * multiplier]
                total += _elems(shape(outs[0])) * int(np.prod(shape(ins[1])[1:3]))
            elif code == ops.TRANSPOSE_CONV:  # (output shape, filter [c_out, k_h, k_w, c_in], input)
                total += _elems(shape(ins[2])) * int(np.prod(shape(ins[1])[:3]))
            elif code == ops.FULLY_CONNECTED:  # weights [units, inner]
                total += _elems(shape(outs[0])) * shape(ins[1])[-1]
            elif code in (ops.UNIDIRECTIONAL_SEQUENCE_LSTM, ops.UNIDIRECTIONAL_SEQUENCE_RNN):
                # every step multiplies by each gate's input (and then recurrent) weights: 1-8 for
                # an LSTM (absent ones -1), 1-2 for an RNN; input [batch, time, features] or time first
                options, gates = op.builtinOptions, ins[1:9] if code == ops.UNIDIRECTIONAL_SEQUENCE_LSTM else ins[1:3]
                steps = shape(ins[0])[0 if options is not None and options.timeMajor else 1]
                total += steps * sum(_elems(shape(i)) for i in gates if i >= 0)
            elif code == ops.BATCH_MATMUL:
                options = op.builtinOptions
                a = shape(ins[0])
                total += _elems(shape(outs[0])) * a[-2 if options is not None and options.adjX else -1]
    return int(total)


def _elems(shape: list) -> int:
    return int(np.prod([max(d, 1) for d in shape])) if shape else 0
