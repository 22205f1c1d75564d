"""Fine-tuning: the few Adam steps every compression stage runs after it changes
a model (magnitude pruning, channel pruning, QAT, PQAT). One helper, so the
stages and the pruning modules share it without importing each other. The stages
take a *tuner*, ``tune(model, steps, batch_size, learning_rate, callbacks, seed)``:
``array_tuner`` for a classifier's arrays, ``train.hedtune.hed_tuner`` for HED's
loss and document stream."""
from edgepipe.base.backend import keras, tf
from edgepipe.base.quiet import callback_timing_notes_dropped


def fit_steps(model, x, y, loss, steps: int, batch_size: int = 32, learning_rate: float = 1e-3, callbacks=(),
              seed: int = 0):
    """``steps`` Adam steps over shuffled, repeated (x, y): the fine-tuning every
    compression step uses (pruning, channel pruning, QAT). ``seed`` sets the order."""
    model.compile(keras.optimizers.Adam(learning_rate), loss)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=seed).repeat().batch(batch_size)
    callback_timing_notes_dropped()
    model.fit(ds, steps_per_epoch=steps, epochs=1, verbose=0, callbacks=list(callbacks))
    return model


def array_tuner(x, y, loss):
    """A fine-tune function ``tune(model, steps, batch_size, learning_rate, callbacks=(), seed=0)``
    over training arrays (a classifier's), for the compression stages (``quantize.stages``)."""
    def tune(model, steps: int, batch_size: int, learning_rate: float, callbacks=(), seed: int = 0):
        return fit_steps(model, x, y, loss, steps, batch_size, learning_rate, callbacks, seed)
    return tune
