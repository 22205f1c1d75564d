"""MobileNet v1 (Howard et al. 2017, Table 1) and v2 (Sandler et al. 2018, Table 2).

The tables' rows are the papers' rows. Widths follow keras.applications, so the
parameter counts match it exactly (4,253,864 and 3,538,984 at 1.0/224/1000).
"""
from edgepipe.base.backend import keras
from edgepipe.mobile_models.blocks import classifier_head, conv_bn, depthwise_bn, inverted_residual
from edgepipe.mobile_models.registry import register
from edgepipe.mobile_models.validate import check_alpha, check_input

MOBILENET_V1 = [
    # type    stride  filters   (Table 1; "dw" = 3x3 depthwise + 1x1 pointwise)
    ("conv",  2,   32),
    ("dw",    1,   64),
    ("dw",    2,  128),
    ("dw",    1,  128),
    ("dw",    2,  256),
    ("dw",    1,  256),
    ("dw",    2,  512),
    *[("dw",  1,  512)] * 5,
    ("dw",    2, 1024),
    ("dw",    1, 1024),
]

MOBILENET_V2 = [
    # t    c    n  s   (Table 2: expansion, output channels, repeats, first stride)
    (1,   16,  1, 1),
    (6,   24,  2, 2),
    (6,   32,  3, 2),
    (6,   64,  4, 2),
    (6,   96,  3, 1),
    (6,  160,  3, 2),
    (6,  320,  1, 1),
]


def make_divisible(v, divisor=8):
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


def _finish(image, x, classes, include_top, name, classifier_activation):
    out = (classifier_head(x, classes, dropout=1e-3 if "v1" in name else 0.0, activation=classifier_activation)
           if include_top else x)
    return keras.Model(image, out, name=name)


@register("mobilenet_v1", "classify", "MobileNet v1 with width multiplier alpha (Howard et al. 2017)")
def mobilenet_v1(alpha=1.0, input_shape=(224, 224, 3), classes=1000, include_top=True,
                 classifier_activation="softmax"):
    check_alpha(alpha, "mobilenet_v1")
    check_input(input_shape, 32, "mobilenet_v1")
    image = keras.Input(input_shape, name="image")
    x = image
    for i, (kind, stride, filters) in enumerate(MOBILENET_V1):
        f = int(filters * alpha)
        if kind == "conv":
            x = conv_bn(x, f, 3, stride, "conv1")
        else:
            x = depthwise_bn(x, 3, stride, f"block{i}_dw")
            x = conv_bn(x, f, 1, 1, f"block{i}_pw")
    return _finish(image, x, classes, include_top, f"mobilenet_v1_{alpha}", classifier_activation)


@register("mobilenet_v2", "classify", "MobileNetV2 with width multiplier alpha (Sandler et al. 2018)")
def mobilenet_v2(alpha=1.0, input_shape=(224, 224, 3), classes=1000, include_top=True,
                 classifier_activation="softmax"):
    check_alpha(alpha, "mobilenet_v2")
    check_input(input_shape, 32, "mobilenet_v2")
    image = keras.Input(input_shape, name="image")
    x = conv_bn(image, make_divisible(32 * alpha), 3, 2, "conv1")
    block = 0
    for t, c, n, s in MOBILENET_V2:
        for i in range(n):
            x = inverted_residual(x, t, make_divisible(c * alpha), s if i == 0 else 1, f"block{block}")
            block += 1
    last = make_divisible(1280 * alpha) if alpha > 1.0 else 1280
    x = conv_bn(x, last, 1, 1, "conv_last")
    return _finish(image, x, classes, include_top, f"mobilenet_v2_{alpha}", classifier_activation)
