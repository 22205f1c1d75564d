"""Class-balanced sigmoid cross-entropy (HED paper, eq. 2).

beta = |Y-| / |Y| is the share of non-edge pixels of each image;
loss = (1 - beta) * CE(labels, logits, pos_weight = beta / (1 - beta)),
which weighs edges by beta and non-edges by 1 - beta. An image with no edge
pixels contributes 0, as in the seed.
"""
from edgepipe.base.backend import tf


def class_balanced_sigmoid_ce(y_true, logits):
    """Per-image loss, shape (batch,)."""
    y = tf.cast(y_true, tf.float32)
    logits = tf.cast(logits, tf.float32)
    axes = [1, 2, 3]
    count_pos = tf.reduce_sum(y, axes)
    count_neg = tf.reduce_sum(1.0 - y, axes)
    beta = count_neg / tf.maximum(count_pos + count_neg, 1.0)
    pos_weight = tf.math.divide_no_nan(beta, 1.0 - beta)
    ce = tf.nn.weighted_cross_entropy_with_logits(
        labels=y, logits=logits, pos_weight=pos_weight[:, None, None, None])
    loss = tf.reduce_mean(ce, axes) * (1.0 - beta)
    return tf.where(count_pos > 0, loss, tf.zeros_like(loss))
