"""Class-balanced sigmoid cross-entropy (HED paper, eq. 2).

beta = |Y-| / |Y| is the share of non-edge pixels of each image;
loss = (1 - beta) * CE(labels, logits, pos_weight = beta / (1 - beta)),
which weighs edges by beta and non-edges by 1 - beta. An image with no edge
pixels contributes 0, as in the seed.

That weighting makes a missed page edge cost ~30 times a false one, so the
network learns to fire on every strong contour (tile grout, a building, a cup).
``with_dice`` adds a soft Dice term, which charges false edges as much as
missed ones relative to the true edge mass: the page border, not the world.

``region_loss`` trains HED's page-region head: mean cross-entropy plus soft
Dice, so that a small page is not lost against the large background.
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


def soft_dice(y_true, logits):
    """Per-image 1 - Dice of sigmoid(logits) against the labels, shape (batch,)."""
    y = tf.cast(y_true, tf.float32)
    p = tf.sigmoid(tf.cast(logits, tf.float32))
    axes = [1, 2, 3]
    overlap = tf.reduce_sum(p * y, axes)
    return 1.0 - (2.0 * overlap + 1.0) / (tf.reduce_sum(p, axes) + tf.reduce_sum(y, axes) + 1.0)


def with_dice(weight: float):
    """The class-balanced loss plus ``weight`` times soft Dice (plain loss when 0)."""
    if not weight:
        return class_balanced_sigmoid_ce

    def loss(y_true, logits):
        return class_balanced_sigmoid_ce(y_true, logits) + weight * soft_dice(y_true, logits)
    loss.__name__ = "class_balanced_ce_dice"
    return loss


def region_loss(y_true, logits):
    """Per-image mean sigmoid cross-entropy plus soft Dice, shape (batch,)."""
    y = tf.cast(y_true, tf.float32)
    ce = tf.nn.sigmoid_cross_entropy_with_logits(labels=y, logits=tf.cast(logits, tf.float32))
    return tf.reduce_mean(ce, [1, 2, 3]) + soft_dice(y_true, logits)
