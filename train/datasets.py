"""tf.data pipelines over the dataset generators, with parallel generation."""
import numpy as np

from edgepipe.base.backend import tf
from edgepipe.train.docgen import generate


def document_arrays(seed: int, count: int, size: int):
    """Eager numpy arrays (images uint8, edges uint8, corners) for evaluation."""
    samples = [generate(seed, i, size) for i in range(count)]
    return (np.stack([s.image for s in samples]), np.stack([s.edges for s in samples]),
            np.stack([s.corners for s in samples]))


def document_dataset(seed: int, count: int, size: int, batch_size: int, outputs: list[str],
                     shuffle: bool = True, batch: bool = True) -> "tf.data.Dataset":
    """Generated documents as (image in [0,1], {output: edge map}) batches.

    Generation runs in parallel (``num_parallel_calls``) in deterministic order
    and is cached in memory as uint8, so later epochs cost no generation.
    """
    def gen(i):
        s = generate(seed, int(i), size)
        return s.image, s.edges

    def load(i):
        image, edges = tf.numpy_function(gen, [i], (tf.uint8, tf.uint8))
        return tf.ensure_shape(image, (size, size, 3)), tf.ensure_shape(edges, (size, size))

    def to_float(image, edges):
        x = tf.cast(image, tf.float32) / 255.0
        y = tf.cast(edges, tf.float32)[..., None]
        return x, {name: y for name in outputs}

    ds = tf.data.Dataset.range(count).map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).cache()
    if shuffle:
        ds = ds.shuffle(min(count, 1024), seed=seed, reshuffle_each_iteration=True)
    ds = ds.map(to_float, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.batch(batch_size).prefetch(2) if batch else ds


def representative_images(seed: int, count: int, size: int) -> np.ndarray:
    """Calibration images in [0, 1], drawn from the training stream."""
    return np.stack([generate(seed, i, size).image for i in range(count)]).astype(np.float32) / 255.0
