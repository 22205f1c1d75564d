"""Small nets for fast tests: one of each block family, a few thousand params."""
from edgepipe.base.backend import keras
from edgepipe.mobile_models.blocks import classifier_head, conv_bn, inverted_residual
from edgepipe.mobile_models.registry import register
from edgepipe.mobile_models.validate import check_input


@register("tiny_cnn", "classify", "a 5-layer MobileNetV2-flavoured net for fast tests")
def tiny_cnn(input_shape=(32, 32, 3), classes=10, include_top=True, classifier_activation="softmax"):
    check_input(input_shape, 8, "tiny_cnn")
    image = keras.Input(input_shape, name="image")
    x = conv_bn(image, 16, 3, 2, "conv1")
    x = inverted_residual(x, 3, 16, 1, "block1")
    x = inverted_residual(x, 3, 24, 2, "block2")
    x = inverted_residual(x, 3, 24, 1, "block3")
    out = classifier_head(x, classes, activation=classifier_activation) if include_top else x
    return keras.Model(image, out, name="tiny_cnn")
