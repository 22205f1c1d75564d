"""Small serialisable layers where Keras has none. No Lambda layers: they break
safe loading and most converters. Registered, so ``safe_mode`` loads them."""
from edgepipe.base.backend import keras, tf

_register = keras.utils.register_keras_serializable(package="edgepipe")


@_register
class ChannelSplit(keras.layers.Layer):
    """Split the channel axis into ``parts`` equal tensors (ShuffleNet v2)."""

    def __init__(self, parts=2, **kwargs):
        super().__init__(**kwargs)
        self.parts = parts

    def call(self, x):
        return tf.split(x, self.parts, axis=-1)

    def compute_output_shape(self, input_shape):
        shape = list(input_shape)
        shape[-1] = shape[-1] // self.parts
        return [tuple(shape)] * self.parts

    def get_config(self):
        return super().get_config() | {"parts": self.parts}


@_register
class GroupSplit(ChannelSplit):
    """The split in front of a grouped 1x1 convolution (ShuffleNet v1).

    A grouped conv is built as GroupSplit -> one Conv2D per group -> Concatenate:
    the same maths as ``Conv2D(groups=g)``, but it converts everywhere, whereas
    Core ML's TF frontend fails on a grouped Conv2D ("PartitionedCall not
    implemented"). Its own class lets the profiler see the group structure.
    """


@_register
class DepthToSpace(keras.layers.Layer):
    """Rearrange ``block``² channel groups into a ``block``x larger image
    (``tf.nn.depth_to_space``): the cheap half of a sub-pixel upsampler, which
    TFLite (DEPTH_TO_SPACE), ONNX and Core ML all run natively."""

    def __init__(self, block=2, **kwargs):
        super().__init__(**kwargs)
        self.block = block

    def call(self, x):
        return tf.nn.depth_to_space(x, self.block)

    def compute_output_shape(self, input_shape):
        n, h, w, c = input_shape
        b = self.block
        return (n, h and h * b, w and w * b, c // (b * b))

    def get_config(self):
        return super().get_config() | {"block": self.block}
