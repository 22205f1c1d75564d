"""tf.data pipelines over the dataset generators, with parallel generation."""
import numpy as np

from edgepipe.base.backend import tf
from edgepipe.mobile_models.hed import REGION
from edgepipe.train.docgen import generate


def document_arrays(seed: int, count: int, size: int, regions: bool = False, rois: bool = False):
    """Eager numpy arrays (images uint8, edges uint8, corners), then the page
    regions (uint8) with ``regions`` and the letterbox content boxes (N x 4 int,
    x y w h) with ``rois``."""
    samples = [generate(seed, i, size) for i in range(count)]
    arrays = (np.stack([s.image for s in samples]), np.stack([s.edges for s in samples]),
              np.stack([s.corners for s in samples]))
    arrays += (np.stack([s.region for s in samples]),) if regions else ()
    return arrays + (np.array([s.content for s in samples], np.int64),) if rois else arrays


def dense_targets(edges, region, outputs):
    """{output: target}: the page region for HED's ``region`` head, the page
    border for every other head. Works on numpy arrays and tensors alike."""
    return {name: region if name == REGION else edges for name in outputs}


def document_dataset(seed: int, count: int, size: int, batch_size: int, outputs: list[str],
                     shuffle: bool = True, batch: bool = True) -> "tf.data.Dataset":
    """Generated documents as (image in [0,1], {output: edge or region map}) batches.

    Generation runs in parallel (``num_parallel_calls``) in deterministic order
    and is cached in memory as uint8, so later epochs cost no generation.
    """
    def gen(i):
        s = generate(seed, int(i), size)
        return s.image, s.edges, s.region

    def load(i):
        image, edges, region = tf.numpy_function(gen, [i], (tf.uint8, tf.uint8, tf.uint8))
        return (tf.ensure_shape(image, (size, size, 3)), tf.ensure_shape(edges, (size, size)),
                tf.ensure_shape(region, (size, size)))

    def to_float(image, edges, region):
        x = tf.cast(image, tf.float32) / 255.0
        return x, dense_targets(tf.cast(edges, tf.float32)[..., None], tf.cast(region, tf.float32)[..., None],
                                outputs)

    ds = tf.data.Dataset.range(count).map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).cache()
    if shuffle:
        ds = ds.shuffle(min(count, 1024), seed=seed, reshuffle_each_iteration=True)
    ds = ds.map(to_float, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.batch(batch_size).prefetch(2) if batch else ds


def representative_images(seed: int, count: int, size: int) -> np.ndarray:
    """Calibration images in [0, 1], drawn from the training stream."""
    return np.stack([generate(seed, i, size).image for i in range(count)]).astype(np.float32) / 255.0
