"""Every dataset behind one interface, chosen by the recipe's ``data.kind``:

| kind                  | task     | source                                                  |
|-----------------------|----------|---------------------------------------------------------|
| synthetic_documents   | edges    | ``train/docgen.py`` (embedded default, generated)      |
| document_folder       | edges    | ``data.path``: photos + corners.json / corners.csv     |
| digits                | classify | scikit-learn's digits, upscaled (embedded default)      |
| image_folder          | classify | ``data.path``: one folder per class                     |

``documents(cfg, split, size)`` and ``classes(cfg, split, size)`` return arrays;
``augment`` is the recipe-configurable augmentation applied in tf.data.
Nothing downloads.
"""
import numpy as np

from edgepipe.base.errors import EdgePipeError

TASK_OF_KIND = {"synthetic_documents": "edges", "document_folder": "edges", "digits": "classify",
                "image_folder": "classify"}


def documents(cfg, split: str, size: int, count: int | None = None, regions: bool = False, rois: bool = False):
    """(images uint8, edges uint8, corners) for ``split`` in train / val / test,
    then the page regions (uint8) with ``regions`` and each image's letterbox content
    box (x, y, w, h; the finder's roi, as ``edgepipe scan`` passes it) with ``rois``.
    ``val`` chooses the checkpoint, ``test`` is scored by verify (generated
    documents: both the held-out stream)."""
    if cfg.kind == "synthetic_documents":
        from edgepipe.train.datasets import document_arrays
        seed = cfg.train_seed if split == "train" else cfg.val_seed
        return document_arrays(seed, count or cfg.val_size, size, regions, rois)
    if cfg.kind == "document_folder":
        from edgepipe.train.folders import MIN_PER_CLASS, document_folder, split_indices
        docs = document_folder(cfg.path, size)
        if len(docs.files) < MIN_PER_CLASS:
            raise EdgePipeError(f"document folder {cfg.path} has {len(docs.files)} labelled photo(s); it needs at "
                                f"least {MIN_PER_CLASS} (one to train on, one to choose the checkpoint, one held "
                                "out to score)")
        keep = split_indices(np.zeros(len(docs.files), np.int64), split, cfg.train_seed)[:count]
        arrays = docs.images[keep], docs.edges[keep], docs.corners[keep]
        arrays += (docs.regions[keep],) if regions else ()
        return arrays + (docs.rois[keep],) if rois else arrays
    raise EdgePipeError(f"data.kind '{cfg.kind}' holds no documents; the model needs document data")


def classes(cfg, split: str, size: int):
    """(images float32 in [0, 1], labels int64, class names)."""
    if cfg.kind == "digits":
        from edgepipe.train.digits import digits_arrays
        x, y = digits_arrays(size, split, seed=cfg.train_seed)
        return x, y, class_names(cfg)
    if cfg.kind == "image_folder":
        from edgepipe.train.folders import image_folder
        data = image_folder(cfg.path, size, split, cfg.train_seed)
        return data.images, data.labels, data.class_names
    raise EdgePipeError(f"data.kind '{cfg.kind}' has no class labels; the model needs classification data")


def class_names(cfg) -> list[str]:
    """Label names without loading any image."""
    if cfg.kind == "digits":
        return [str(i) for i in range(10)]
    if cfg.kind == "image_folder":
        from edgepipe.train.folders import class_names as folder_classes
        return folder_classes(cfg.path)
    raise EdgePipeError(f"data.kind '{cfg.kind}' has no class labels; the model needs classification data")


def augment(cfg):
    """A tf.data map fn ``(image, target) -> (image, target)`` for ``cfg`` (an AugmentCfg).
    Dense targets (edge maps) are flipped with the image; labels are left alone."""
    from edgepipe.base.backend import tf

    def fn(image, target):
        if cfg.flip:
            flip = tf.random.uniform([]) < 0.5
            image = tf.cond(flip, lambda: tf.image.flip_left_right(image), lambda: image)
            target = tf.nest.map_structure(
                lambda t: tf.cond(flip, lambda: tf.image.flip_left_right(t), lambda: t) if t.shape.rank >= 3 else t,
                target)
        if cfg.brightness:
            image = tf.image.random_brightness(image, cfg.brightness)
        if cfg.contrast:
            image = tf.image.random_contrast(image, 1 - cfg.contrast, 1 + cfg.contrast)
        return tf.clip_by_value(image, 0.0, 1.0), target
    return fn
