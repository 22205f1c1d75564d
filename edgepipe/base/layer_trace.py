"""Tracing an output back to the layer that computes it, in tf_keras and Keras 3 graphs alike
(duck-typed: nothing here imports Keras)."""

# Layers that move or keep values without computing new ones: an activation behind them
# (Dense(40, sigmoid) then Reshape((10, 4))) is still the output's activation
MOVES_VALUES = ("Reshape", "Flatten", "Permute", "Identity", "Dropout", "SpatialDropout1D", "SpatialDropout2D",
                "GaussianNoise", "GaussianDropout", "AlphaDropout", "ActivityRegularization")


def computing_layer(layer, last_dim):
    """(the layer behind ``layer`` through value-moving layers, whether every tensor on the
    way kept the output's last axis ``last_dim``: a softmax is the output's only then)."""
    kept = True
    while type(layer).__name__ in MOVES_VALUES:
        try:
            tensor = layer.input
            history = tensor._keras_history  # noqa: SLF001 (both Kerases keep the producer here)
            previous = getattr(history, "operation", None) or history.layer
        except (AttributeError, ValueError, IndexError):  # several inputs or nodes: stop here
            break
        kept = kept and tensor.shape[-1] == last_dim
        layer = previous
    return layer, kept
