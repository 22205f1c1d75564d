"""ShuffleNet v1 (Zhang et al. 2018, Table 1) and v2 (Ma et al. 2018, Table 5).

Channel shuffle is Reshape -> Permute -> Reshape; grouped 1x1 convs and the v2
channel split are small registered layers (no Lambda), so models load in safe
mode and convert to every format.
"""
from edgepipe.base.backend import keras, layers
from edgepipe.mobile_models.blocks import (channel_shuffle, classifier_head, conv_bn, depthwise_bn,
                                  grouped_pointwise_bn)
from edgepipe.mobile_models.registry import register
from edgepipe.mobile_models.validate import check_alpha, check_input
from edgepipe.base.errors import EdgePipeError

# v1, Table 1: output channels of stages 2, 3, 4 at 1x, per group count g
SHUFFLENET_V1_CHANNELS = {1: (144, 288, 576), 2: (200, 400, 800), 3: (240, 480, 960),
                          4: (272, 544, 1088), 8: (384, 768, 1536)}
SHUFFLENET_V1_REPEATS = (4, 8, 4)  # stage 2, 3, 4 (first unit of each has stride 2)
SHUFFLENET_V1_SCALES = (0.5, 1.0, 1.5, 2.0)

# v2, Table 5: output channels of stages 2, 3, 4 and conv5, per width
SHUFFLENET_V2_CHANNELS = {0.5: (48, 96, 192, 1024), 1.0: (116, 232, 464, 1024),
                          1.5: (176, 352, 704, 1024), 2.0: (244, 488, 976, 2048)}
SHUFFLENET_V2_REPEATS = (4, 8, 4)


def _stem(image):
    x = conv_bn(image, 24, 3, 2, "conv1", act="relu")
    return layers.MaxPooling2D(3, strides=2, padding="same", name="maxpool")(x)


def _v1_unit(x, out, groups, stride, name, first_groups):
    c_in = x.shape[-1]
    branch_out = out - c_in if stride == 2 else out
    mid = -(-out // 4 // groups) * groups  # out/4, rounded up to a multiple of g (0.5x, g=2)
    for ch, what in ((branch_out, "output"),):
        if ch % groups:
            raise EdgePipeError(f"shufflenet_v1: groups={groups} does not divide the {ch} {what} channels "
                                f"of {name}; valid groups: {', '.join(map(str, SHUFFLENET_V1_CHANNELS))} "
                                f"with scales {', '.join(map(str, SHUFFLENET_V1_SCALES))}")
    y = grouped_pointwise_bn(x, mid, first_groups, f"{name}_gconv1", act="relu")
    y = channel_shuffle(y, groups, name) if first_groups > 1 else y
    y = depthwise_bn(y, 3, stride, f"{name}_dw", act=None)  # no ReLU after the depthwise conv
    y = grouped_pointwise_bn(y, branch_out, groups, f"{name}_gconv2", act=None)
    if stride == 2:
        shortcut = layers.AveragePooling2D(3, strides=2, padding="same", name=f"{name}_avgpool")(x)
        y = layers.Concatenate(name=f"{name}_concat")([shortcut, y])
    else:
        y = layers.Add(name=f"{name}_add")([x, y])
    return layers.ReLU(name=f"{name}_relu")(y)


@register("shufflenet_v1", "classify", "ShuffleNet v1 with g groups and scale s (Zhang et al. 2018)")
def shufflenet_v1(groups=3, scale=1.0, input_shape=(224, 224, 3), classes=1000, include_top=True,
                  classifier_activation="softmax"):
    if groups not in SHUFFLENET_V1_CHANNELS:
        raise EdgePipeError(f"shufflenet_v1: groups must be one of {', '.join(map(str, SHUFFLENET_V1_CHANNELS))}, "
                            f"got {groups}")
    check_alpha(scale, "shufflenet_v1", SHUFFLENET_V1_SCALES)
    check_input(input_shape, 32, "shufflenet_v1")
    image = keras.Input(input_shape, name="image")
    x = _stem(image)
    for stage, (channels, repeats) in enumerate(zip(SHUFFLENET_V1_CHANNELS[groups], SHUFFLENET_V1_REPEATS), 2):
        for i in range(repeats):
            # Stage 2's first pointwise conv is not grouped: its input has only 24 channels.
            first_groups = 1 if (stage == 2 and i == 0) else groups
            x = _v1_unit(x, int(channels * scale), groups, 2 if i == 0 else 1, f"stage{stage}_{i}", first_groups)
    out = classifier_head(x, classes, activation=classifier_activation) if include_top else x
    return keras.Model(image, out, name=f"shufflenet_v1_g{groups}_{scale}")


def _v2_unit(x, out, stride, name):
    half = out // 2
    if stride == 1:
        from edgepipe.base.custom_layers import ChannelSplit  # a Keras subclass: loads TensorFlow
        left, right = ChannelSplit(2, name=f"{name}_split")(x)
    else:
        left = depthwise_bn(x, 3, 2, f"{name}_left_dw", act=None)
        left = conv_bn(left, half, 1, 1, f"{name}_left_pw", act="relu")
        right = x
    right = conv_bn(right, half, 1, 1, f"{name}_pw1", act="relu")
    right = depthwise_bn(right, 3, stride, f"{name}_dw", act=None)
    right = conv_bn(right, half, 1, 1, f"{name}_pw2", act="relu")
    y = layers.Concatenate(name=f"{name}_concat")([left, right])
    return channel_shuffle(y, 2, name)


@register("shufflenet_v2", "classify", "ShuffleNet v2 at 0.5x/1.0x/1.5x/2.0x (Ma et al. 2018)")
def shufflenet_v2(scale=1.0, input_shape=(224, 224, 3), classes=1000, include_top=True,
                  classifier_activation="softmax"):
    check_alpha(scale, "shufflenet_v2", tuple(SHUFFLENET_V2_CHANNELS))
    check_input(input_shape, 32, "shufflenet_v2")
    *stages, last = SHUFFLENET_V2_CHANNELS[scale]
    image = keras.Input(input_shape, name="image")
    x = _stem(image)
    for stage, (channels, repeats) in enumerate(zip(stages, SHUFFLENET_V2_REPEATS), 2):
        for i in range(repeats):
            x = _v2_unit(x, channels, 2 if i == 0 else 1, f"stage{stage}_{i}")
    x = conv_bn(x, last, 1, 1, "conv5", act="relu")
    out = classifier_head(x, classes, activation=classifier_activation) if include_top else x
    return keras.Model(image, out, name=f"shufflenet_v2_{scale}")
