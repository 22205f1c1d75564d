"""Quantization-aware training with tfmot for every registered backbone, and
pruning-preserving QAT (PQAT) for magnitude-pruned models.

tfmot knows Keras' own layers (HED's Conv2DTranspose included in this version);
our small layers that only move values (``GroupSplit``, ``ChannelSplit``, and
``DepthToSpace``, the second half of HED's sub-pixel upsamplers) get a
pass-through config: they change no value, so they need no quantizer and their
outputs keep the input's range.
"""
from edgepipe.base.backend import keras
from edgepipe.base.custom_layers import ChannelSplit, DepthToSpace, GroupSplit

ROUTING = (GroupSplit, ChannelSplit, DepthToSpace)  # rearrange values, compute nothing


def _tfmot():
    import tensorflow_model_optimization as tfmot
    return tfmot


def _pass_through_config():
    base = _tfmot().quantization.keras.QuantizeConfig

    class PassThroughQuantizeConfig(base):
        """No weights, no activations, no output quantizer: a routing layer."""

        def get_weights_and_quantizers(self, layer):
            return []

        def get_activations_and_quantizers(self, layer):
            return []

        def set_quantize_weights(self, layer, quantize_weights):
            pass

        def set_quantize_activations(self, layer, quantize_activations):
            pass

        def get_output_quantizers(self, layer):
            return []

        def get_config(self):
            return {}
    return PassThroughQuantizeConfig


def _output_only_config(base_cls):
    """A BatchNormalization that follows a concat (ShuffleNet v1's grouped 1x1 convs)
    has no conv to fold into: keep it float inside, fake-quantize its output."""
    quantizers = _tfmot().quantization.keras.quantizers

    class OutputOnlyQuantizeConfig(base_cls):
        def get_output_quantizers(self, layer):
            return [quantizers.MovingAverageQuantizer(num_bits=8, per_axis=False, symmetric=False,
                                                      narrow_range=False)]
    return OutputOnlyQuantizeConfig


def _unfused_batchnorm(layer) -> bool:
    """A BN that tfmot cannot fuse into the conv before it: after a concat (ShuffleNet v1),
    or after a conv with its own activation (Conv2D(activation="relu") then BN, as users
    write it), which tfmot refuses outright. Its output alone is quantized."""
    inbound = layer._inbound_nodes[0].inbound_layers if layer._inbound_nodes else []
    inbound = inbound if isinstance(inbound, list) else [inbound]
    return not (len(inbound) == 1 and isinstance(inbound[0], (keras.layers.Conv2D, keras.layers.DepthwiseConv2D,
                                                               keras.layers.Dense))
                and inbound[0].get_config().get("activation", "linear") == "linear")


def qat_model(model, scheme=None):
    """``model`` with fake-quantization wrappers, ready to fine-tune and convert to int8."""
    q = _tfmot().quantization.keras
    config = _pass_through_config()
    output_only = _output_only_config(config)

    def annotate(layer):
        if isinstance(layer, ROUTING):
            return q.quantize_annotate_layer(layer, config())
        if isinstance(layer, keras.layers.BatchNormalization) and _unfused_batchnorm(layer):
            return q.quantize_annotate_layer(layer, output_only())
        if isinstance(layer, keras.layers.InputLayer):
            return layer
        return q.quantize_annotate_layer(layer)
    annotated = keras.models.clone_model(model, clone_function=annotate)
    with q.quantize_scope({"PassThroughQuantizeConfig": config, "OutputOnlyQuantizeConfig": output_only,
                           **{cls.__name__: cls for cls in ROUTING}}):
        return q.quantize_apply(annotated, scheme) if scheme else q.quantize_apply(annotated)


def pqat_model(pruned_model):
    """QAT that keeps a pruned model's zeros: the weight quantizers of Conv2D and
    Dense multiply by a mask taken from the zeros present now, so fine-tuning
    cannot regrow them (tfmot's collaborative-optimization scheme). Pass a
    stripped model (``quantize.prune.strip``); pruning wrappers are not allowed."""
    if any(type(layer).__name__ == "PruneLowMagnitude" for layer in pruned_model.layers):
        from edgepipe.base.errors import EdgePipeError
        raise EdgePipeError("strip the pruning wrappers (quantize.prune.strip) before PQAT")
    scheme = _tfmot().experimental.combine.Default8BitPrunePreserveQuantizeScheme()
    return qat_model(pruned_model, scheme)
