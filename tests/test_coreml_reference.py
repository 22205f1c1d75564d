"""The numpy reference interpreter for Core ML ML programs, op by op against
TensorFlow (an independent implementation), its weight decompression against
coremltools' own, and its refusals."""
import numpy as np
import pytest

from edgepipe.evaluate.milref import kernels
from edgepipe.evaluate.milref.ops import OPS
from edgepipe.base.backend import tf

RNG = np.random.default_rng(0)


def _nchw(x):
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def _nhwc(x):
    return np.asarray(x).transpose(0, 2, 3, 1)


def _close(a, b, tol=1e-4):
    np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(b, np.float64), atol=tol, rtol=tol)


@pytest.mark.parametrize("size, k, stride, dilation, padding", [
    (9, 3, 1, 1, "SAME"), (9, 3, 2, 1, "SAME"), (10, 3, 2, 1, "SAME"), (8, 1, 1, 1, "VALID"),
    (11, 5, 2, 1, "VALID"), (12, 3, 1, 2, "SAME"), (7, 4, 2, 1, "SAME")])
def test_conv_matches_tf(size, k, stride, dilation, padding):
    x = RNG.normal(size=(2, size, size, 5)).astype(np.float32)
    w = RNG.normal(size=(k, k, 5, 7)).astype(np.float32)
    b = RNG.normal(size=7).astype(np.float32)
    want = tf.nn.conv2d(x, w, stride, padding, dilations=dilation) + b
    got = OPS["conv"](x=_nchw(x), weight=w.transpose(3, 2, 0, 1), bias=b, strides=[stride] * 2,
                      pad_type=padding.lower(), pad=[0] * 4, dilations=[dilation] * 2, groups=1)
    _close(_nhwc(got), want)


def test_depthwise_and_grouped_conv_match_tf():
    x = RNG.normal(size=(1, 9, 9, 6)).astype(np.float32)
    dw = RNG.normal(size=(3, 3, 6, 1)).astype(np.float32)
    want = tf.nn.depthwise_conv2d(x, dw, [1, 2, 2, 1], "SAME")
    got = OPS["conv"](x=_nchw(x), weight=dw.transpose(2, 3, 0, 1), strides=[2, 2], pad_type="same", groups=6)
    _close(_nhwc(got), want)
    grouped = RNG.normal(size=(1, 1, 2, 9)).astype(np.float32)  # 3 groups: 6 -> 9 channels
    want = tf.concat([tf.nn.conv2d(x[..., 2 * g:2 * g + 2], grouped[..., 3 * g:3 * g + 3], 1, "VALID")
                      for g in range(3)], axis=-1)
    got = OPS["conv"](x=_nchw(x), weight=grouped.transpose(3, 2, 0, 1), pad_type="valid", groups=3)
    _close(_nhwc(got), want)


def test_custom_padding_is_top_bottom_left_right():
    x = RNG.normal(size=(1, 6, 6, 2)).astype(np.float32)
    w = RNG.normal(size=(3, 3, 2, 4)).astype(np.float32)
    want = tf.nn.conv2d(np.pad(x, [(0, 0), (1, 2), (0, 3), (0, 0)]), w, 1, "VALID")
    got = OPS["conv"](x=_nchw(x), weight=w.transpose(3, 2, 0, 1), pad_type="custom", pad=[1, 2, 0, 3])
    _close(_nhwc(got), want)


@pytest.mark.parametrize("size, k, stride, padding", [(5, 4, 2, "SAME"), (5, 3, 2, "SAME"), (4, 2, 2, "VALID"),
                                                      (6, 16, 8, "SAME"), (3, 3, 1, "SAME")])
def test_conv_transpose_matches_tf(size, k, stride, padding):
    x = RNG.normal(size=(1, size, size, 3)).astype(np.float32)
    w = RNG.normal(size=(k, k, 4, 3)).astype(np.float32)  # TF: (kh, kw, out, in)
    out = size * stride if padding == "SAME" else (size - 1) * stride + k
    want = tf.nn.conv2d_transpose(x, w, (1, out, out, 4), stride, padding)
    got = OPS["conv_transpose"](x=_nchw(x), weight=w.transpose(3, 2, 0, 1), pad_type=padding.lower(),
                                output_shape=np.array([1, 4, out, out]), strides=[stride] * 2)
    _close(_nhwc(got), want)


@pytest.mark.parametrize("kind", ["MAX", "AVG"])
@pytest.mark.parametrize("size, k, stride, padding", [(9, 3, 2, "SAME"), (8, 2, 2, "VALID"), (7, 3, 1, "SAME")])
def test_pooling_matches_tf(kind, size, k, stride, padding):
    x = RNG.normal(size=(1, size, size, 3)).astype(np.float32)
    want = tf.nn.pool(x, (k, k), kind, strides=(stride, stride), padding=padding)
    name = "max_pool" if kind == "MAX" else "avg_pool"
    extra = {} if kind == "MAX" else {"exclude_padding_from_average": True}  # TF's SAME average does
    got = OPS[name](x=_nchw(x), kernel_sizes=[k, k], strides=[stride] * 2, pad_type=padding.lower(), **extra)
    _close(_nhwc(got), want)


def test_elementwise_normalisation_and_reductions():
    x = RNG.normal(size=(2, 4, 3, 3)).astype(np.float32)
    _close(OPS["relu6"](x=x * 10), tf.nn.relu6(x * 10))
    _close(OPS["sigmoid"](x=x), tf.sigmoid(x))
    _close(OPS["softmax"](x=x, axis=1), tf.nn.softmax(x, axis=1))
    _close(OPS["clip"](x=x, alpha=-0.5, beta=0.5), np.clip(x, -0.5, 0.5))
    mean, var, gamma, beta = (RNG.random(4).astype(np.float32) + 0.1 for _ in range(4))
    want = tf.nn.batch_normalization(_nhwc(x), mean, var, beta, gamma, 1e-3)
    _close(_nhwc(OPS["batch_norm"](x=x, mean=mean, variance=var, gamma=gamma, beta=beta, epsilon=1e-3)), want)
    _close(OPS["reduce_mean"](x=x, axes=np.array([2, 3]), keep_dims=False), tf.reduce_mean(x, axis=[2, 3]))
    w, b = RNG.normal(size=(5, 4)).astype(np.float32), RNG.normal(size=5).astype(np.float32)
    v = x[:, :, 0, 0]
    _close(OPS["linear"](x=v, weight=w, bias=b), v @ w.T + b)
    _close(OPS["matmul"](x=v, y=w, transpose_y=True), tf.matmul(v, w, transpose_b=True))


def test_guarded_ops_take_their_epsilon_and_layer_norm_and_tile_match_tf():
    """coremltools writes rsqrt and log with an epsilon (GroupNormalization and
    LayerNormalization do): the ops took none, and verify died with a traceback."""
    x = RNG.random((2, 4, 3, 3)).astype(np.float32) + 0.1
    _close(OPS["rsqrt"](x=x, epsilon=1e-3), tf.math.rsqrt(x + 1e-3))
    _close(OPS["log"](x=x, epsilon=1e-3), tf.math.log(x + 1e-3))
    _close(OPS["inverse"](x=x, epsilon=1e-3), 1 / (x + 1e-3))
    gamma, beta = RNG.normal(size=3).astype(np.float32), RNG.normal(size=3).astype(np.float32)
    norm = tf.keras.layers.LayerNormalization(axis=-1, epsilon=1e-3)
    norm.build(x.shape)
    norm.set_weights([gamma, beta])
    _close(OPS["layer_norm"](x=x, axes=np.array([-1]), gamma=gamma, beta=beta, epsilon=1e-3), norm(x))
    _close(OPS["tile"](x=x, reps=np.array([1, 2, 1, 3])), tf.tile(x, [1, 2, 1, 3]))


def test_norm_and_upsampling_models_verify_in_core_ml(tmp_path):
    """A UNet decoder's UpSampling2D (MIL tile) and Keras 3 GroupNormalization and
    LayerNormalization, end to end: convert to Core ML, then verify by the reference interpreter."""
    from edgepipe.base.backend import keras3 as k3
    from edgepipe.cli.main import main
    L = k3.layers
    inp = k3.Input((8, 8, 3))
    x = L.Conv2D(4, 3, padding="same", activation="relu")(L.Rescaling(1 / 255)(inp))
    x = L.UpSampling2D()(L.GroupNormalization(groups=2)(x))
    x = L.LayerNormalization()(L.Conv2D(4, 3, strides=2, padding="same")(x))
    k3.Model(inp, L.Conv2D(1, 1, activation="sigmoid")(x)).save(tmp_path / "m.keras")
    out = tmp_path / "m.mlpackage"
    assert main(["convert", "--model", str(tmp_path / "m.keras"), "--variant", "coreml_fp32", "--out", str(out)]) == 0
    assert main(["verify", "--model", str(tmp_path / "m.keras"), "--export", str(out)]) == 0


def test_tensor_layout_ops():
    x = RNG.normal(size=(1, 6, 4, 5)).astype(np.float32)
    a, b = OPS["split"](x=x, axis=1, num_splits=2)
    _close(OPS["concat"](values=[a, b], axis=1), x)
    parts = OPS["split"](x=x, axis=1, split_sizes=np.array([1, 5]))
    assert [p.shape[1] for p in parts] == [1, 5]
    interleaved = OPS["concat"](values=[a, b], axis=1, interleave=True)
    _close(interleaved[:, 0::2], a)
    _close(interleaved[:, 1::2], b)
    _close(OPS["reshape"](x=x, shape=np.array([1, 2, 3, 20])), tf.reshape(x, (1, 2, 3, 20)))
    _close(OPS["transpose"](x=x, perm=np.array([0, 2, 3, 1])), tf.transpose(x, (0, 2, 3, 1)))
    _close(OPS["slice_by_index"](x=x, begin=np.array([0, 1, 0, 1]), end=np.array([1, 5, 4, 5]),
                                 stride=np.array([1, 2, 1, 2])), x[:, 1:5:2, :, 1:5:2])
    _close(OPS["slice_by_size"](x=x, begin=np.array([0, 2, 1, 0]), size=np.array([1, 3, -1, 2])), x[:, 2:5, 1:, :2])
    _close(OPS["pad"](x=x, pad=np.array([1, 2, 0, 1]), mode="reflect"),
           np.pad(x, [(0, 0), (0, 0), (1, 2), (0, 1)], mode="reflect"))


def test_resampling_matches_tf():
    x = RNG.normal(size=(1, 5, 7, 2)).astype(np.float32)
    half_pixel = tf.image.resize(x, (10, 14), "bilinear")
    _close(_nhwc(OPS["upsample_bilinear"](x=_nchw(x), scale_factor_height=2, scale_factor_width=2,
                                          align_corners=False)), half_pixel)
    corners = tf.compat.v1.image.resize_bilinear(x, (10, 14), align_corners=True)
    _close(_nhwc(OPS["resize_bilinear"](x=_nchw(x), target_size_height=10, target_size_width=14,
                                        sampling_mode="ALIGN_CORNERS")), corners)
    _close(_nhwc(OPS["upsample_nearest_neighbor"](x=_nchw(x), scale_factor_height=2, scale_factor_width=2)),
           tf.image.resize(x, (10, 14), "nearest"))


def test_depth_to_space_uses_tf_channel_order():
    x = RNG.normal(size=(1, 3, 4, 12)).astype(np.float32)
    _close(_nhwc(OPS["depth_to_space"](x=_nchw(x), block_size=2)), tf.nn.depth_to_space(x, 2))


def test_same_padding_puts_the_odd_pixel_after():
    assert kernels.same_padding(10, 3, 2, 1) == (0, 1)
    assert kernels.same_padding(10, 3, 2, 1, lower=True) == (1, 0)
    assert kernels.same_padding(9, 3, 1, 2) == (2, 2)


def test_weight_decompression_matches_coremltools():
    """Our constexpr_* ops against coremltools' own decompress implementations."""
    from coremltools.converters.mil.mil.ops.defs.iOS16 import constexpr_ops as ios16
    from coremltools.converters.mil.mil.ops.defs.iOS18 import compression as ios18
    q = RNG.integers(-128, 128, size=(6, 3, 2, 2)).astype(np.int8)
    scale, zero = RNG.random(6).astype(np.float32), RNG.integers(-5, 5, 6).astype(np.int8)
    _close(OPS["constexpr_affine_dequantize"](quantized_data=q, zero_point=zero, scale=scale, axis=0),
           ios16.constexpr_affine_dequantize.decompress(q, zero, scale, 0))
    for nbits in (1, 2, 4, 6, 8):
        lut = RNG.normal(size=2 ** nbits).astype(np.float16)
        idx = RNG.integers(0, 2 ** nbits, size=45)
        packed = np.packbits(((idx[:, None] >> np.arange(nbits)) & 1).astype(np.uint8).ravel(), bitorder="little")
        shape = np.array([5, 9], np.uint32)
        _close(OPS["constexpr_lut_to_dense"](indices=packed, lut=lut, shape=shape),
               ios16.constexpr_lut_to_dense.decompress(lut, packed, shape))
    dense = RNG.normal(size=(4, 5)).astype(np.float32) * (RNG.random((4, 5)) > 0.5)
    mask = np.packbits((dense != 0).ravel(), bitorder="little")
    _close(OPS["constexpr_sparse_to_dense"](nonzero_data=dense[dense != 0], mask=mask, shape=np.array([4, 5])),
           ios16.constexpr_sparse_to_dense.decompress(dense[dense != 0], mask, np.array([4, 5])))
    data = RNG.integers(-8, 8, size=(4, 6)).astype(np.int8)
    bscale, offset = RNG.random((4, 2)).astype(np.float32), RNG.integers(-2, 2, (4, 2)).astype(np.int8)
    _close(OPS["constexpr_blockwise_shift_scale"](data=data, scale=bscale, offset=offset),
           ios18.constexpr_blockwise_shift_scale.decompress(data, bscale, offset))


def _tiny_keras(activation="relu"):
    from edgepipe.base.backend import keras
    keras.utils.set_random_seed(1)
    inp = keras.Input((16, 16, 3), name="image")
    h = keras.layers.Conv2D(8, 3, padding="same", activation=activation)(inp)
    h = keras.layers.DepthwiseConv2D(3, strides=2, padding="same", activation="relu")(h)
    out = keras.layers.Conv2D(4, 1, name="scores")(h)
    return keras.Model(inp, out)


def test_an_unsupported_op_is_refused_by_name(tmp_path):
    import coremltools as ct
    from coremltools.converters.mil import Builder as mb

    from edgepipe.evaluate.milref import ReferenceProgram, UnsupportedOp

    @mb.program(input_specs=[mb.TensorSpec(shape=(1, 4))], opset_version=ct.target.iOS15)
    def program(x):
        return mb.erf(x=mb.relu(x=x))
    path = tmp_path / "erf.mlpackage"
    ct.convert(program, convert_to="mlprogram", minimum_deployment_target=ct.target.iOS15).save(str(path))
    with pytest.raises(UnsupportedOp, match="op erf not supported by the reference interpreter"):
        ReferenceProgram(path)


def test_corrupt_package_is_a_clear_error(tmp_path):
    from edgepipe.evaluate.milref import ReferenceProgram
    from edgepipe.base.errors import EdgePipeError
    bad = tmp_path / "bad.mlpackage"
    bad.mkdir()
    (bad / "Manifest.json").write_text("{not json")
    with pytest.raises(EdgePipeError, match="not a readable Core ML package"):
        ReferenceProgram(bad)


def test_compressed_weights_run_close_to_the_dense_program(tmp_path):
    """Programs compressed by coremltools.optimize.coreml (8-bit linear, 4-bit
    palettes, 50% sparse) run through their constexpr ops."""
    import coremltools as ct
    import coremltools.optimize.coreml as cto

    from edgepipe.evaluate.milref import ReferenceProgram
    model = _tiny_keras()
    dense = ct.convert(model, convert_to="mlprogram", minimum_deployment_target=ct.target.iOS16,
                       compute_precision=ct.precision.FLOAT32)
    x = RNG.random((1, 16, 16, 3)).astype(np.float32)
    ref = model.predict(x, verbose=0)
    configs = {
        "constexpr_affine_dequantize": cto.linear_quantize_weights(
            dense, cto.OptimizationConfig(cto.OpLinearQuantizerConfig(mode="linear_symmetric", weight_threshold=0))),
        "constexpr_lut_to_dense": cto.palettize_weights(
            dense, cto.OptimizationConfig(cto.OpPalettizerConfig(mode="kmeans", nbits=4, weight_threshold=0))),
        "constexpr_sparse_to_dense": cto.prune_weights(
            dense, cto.OptimizationConfig(cto.OpMagnitudePrunerConfig(target_sparsity=0.5, weight_threshold=0))),
    }
    for op_type, compressed in configs.items():
        path = tmp_path / f"{op_type}.mlpackage"
        compressed.save(str(path))
        program = ReferenceProgram(path)
        assert op_type in {o.op_type for o in program.ops}
        got = program.run({"image": x})
        want = ref if op_type != "constexpr_sparse_to_dense" else \
            _magnitude_pruned(model, 0.5).predict(x, verbose=0)  # exact: the same zeros in Keras
        err = np.linalg.norm(next(iter(got.values())).reshape(want.shape) - want) / np.linalg.norm(want)
        assert err < (1e-4 if op_type == "constexpr_sparse_to_dense" else 0.15), (op_type, err)  # 4-bit: 0.08-0.10


def _magnitude_pruned(model, sparsity):
    """The same model with each kernel's smallest |w| zeroed, as coremltools' pruner does."""
    from edgepipe.base.backend import keras
    pruned = keras.models.clone_model(model)
    for src, dst in zip(model.layers, pruned.layers):
        weights = src.get_weights()
        if weights:
            k = weights[0].copy()
            k.flat[np.argsort(np.abs(k), axis=None)[:int(round(sparsity * k.size))]] = 0
            dst.set_weights([k, *weights[1:]])
    return pruned
