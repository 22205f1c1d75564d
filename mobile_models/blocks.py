"""Layer helpers shared by every table-driven builder.

Layer names are stable (``block3_1_expand``, ``block3_1_expand_bn``) because they
surface in TFLite, Core ML and ONNX graphs and in per-layer error reports.
"""
from edgepipe.base.backend import layers

ACTIVATIONS = {"relu": lambda name: layers.ReLU(name=name),
               "relu6": lambda name: layers.ReLU(6.0, name=name)}


def activation(x, act, name):
    return ACTIVATIONS[act](name)(x) if act else x


def conv_bn(x, filters, kernel, stride, name, act="relu6", groups=1):
    """Conv (no bias: BN follows) -> BN -> optional activation."""
    x = layers.Conv2D(filters, kernel, strides=stride, padding="same", groups=groups,
                      use_bias=False, name=name)(x)
    x = layers.BatchNormalization(epsilon=1e-3, momentum=0.99, name=f"{name}_bn")(x)
    return activation(x, act, f"{name}_{act}")


def depthwise_bn(x, kernel, stride, name, act="relu6"):
    x = layers.DepthwiseConv2D(kernel, strides=stride, padding="same", use_bias=False, name=name)(x)
    x = layers.BatchNormalization(epsilon=1e-3, momentum=0.99, name=f"{name}_bn")(x)
    return activation(x, act, f"{name}_{act}")


def inverted_residual(x, expansion, filters, stride, name):
    """MobileNetV2 block: 1x1 expand + ReLU6 -> 3x3 depthwise + ReLU6 -> linear 1x1
    project; residual only when stride == 1 and in == out channels."""
    c_in = x.shape[-1]
    y = x
    if expansion != 1:
        y = conv_bn(y, c_in * expansion, 1, 1, f"{name}_expand")
    y = depthwise_bn(y, 3, stride, f"{name}_depthwise")
    y = conv_bn(y, filters, 1, 1, f"{name}_project", act=None)
    if stride == 1 and c_in == filters:
        y = layers.Add(name=f"{name}_add")([x, y])
    return y


def grouped_pointwise_bn(x, filters, groups, name, act="relu"):
    """1x1 conv with ``groups`` groups (GroupSplit -> per-group conv -> concat) -> BN."""
    from edgepipe.base.custom_layers import GroupSplit
    if groups == 1:
        return conv_bn(x, filters, 1, 1, name, act=act)
    parts = GroupSplit(groups, name=f"{name}_split")(x)
    outs = [layers.Conv2D(filters // groups, 1, use_bias=False, name=f"{name}_g{i}")(p)
            for i, p in enumerate(parts)]
    x = layers.Concatenate(name=f"{name}_concat")(outs)
    x = layers.BatchNormalization(epsilon=1e-3, name=f"{name}_bn")(x)
    return activation(x, act, f"{name}_{act}")


def channel_shuffle(x, groups, name):
    """Reshape (h, w, g, n) -> swap the last two axes -> reshape back (ShuffleNet)."""
    h, w, c = x.shape[1:]
    x = layers.Reshape((h, w, groups, c // groups), name=f"{name}_shuffle_reshape")(x)
    x = layers.Permute((1, 2, 4, 3), name=f"{name}_shuffle_permute")(x)
    return layers.Reshape((h, w, c), name=f"{name}_shuffle")(x)


def classifier_head(x, classes, name="head", dropout=0.0, activation="softmax"):
    """Global pool -> dense; ``activation=None`` returns logits (as keras.applications'
    ``classifier_activation=None``), which quantize with finer steps than probabilities."""
    x = layers.GlobalAveragePooling2D(name=f"{name}_pool")(x)
    if dropout:
        x = layers.Dropout(dropout, name=f"{name}_dropout")(x)
    return layers.Dense(classes, activation=activation, name="predictions")(x)
