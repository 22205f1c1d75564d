"""A user's own folders as they are on real disks: class folders linked from elsewhere,
photos the corners file names outside the folder, a folder that changes during a run,
TIFFs and subfolders, a FIFO named like a photo, a path that is not UTF-8. Images are
generated (flat colours with noise, ``tests.test_data``)."""
import json
import os

import cv2
import numpy as np
import pytest
import yaml

from edgepipe.base.errors import EdgePipeError
from edgepipe.train.folders import _content_digest, document_folder, fingerprint, image_folder
from tests.test_data import make_document_folder, make_image_folder

QUICK = {"quick": {"phases": [{"size": 32, "steps": 1, "pool": 1}]}}


def test_a_linked_class_folder_is_part_of_the_fingerprint(tmp_path):
    """rglob does not enter a linked folder: photos edited in place there were not
    noticed, and a run reported the old model's scores as up to date."""
    elsewhere = make_image_folder(tmp_path / "elsewhere")
    root = tmp_path / "data"
    root.mkdir()
    for name in ("red", "green", "blue"):
        (root / name).symlink_to(elsewhere / name, target_is_directory=True)
    (elsewhere / "red" / "loop").symlink_to(root, target_is_directory=True)  # a link back up: walked once
    before = fingerprint(root)
    img = cv2.imread(str(elsewhere / "red" / "0.png"))
    cv2.imwrite(str(elsewhere / "red" / "0.png"), np.concatenate([img, img]))
    assert fingerprint(root) != before


def test_the_corners_file_names_photos_in_the_folder_only(tmp_path):
    root, table = make_document_folder(tmp_path / "docs")
    outside = tmp_path / "camera_roll"
    outside.mkdir()
    first = next(iter(table))
    os.replace(root / first, outside / first)
    table[f"../camera_roll/{first}"] = table.pop(first)
    (root / "corners.json").write_text(json.dumps(table))
    with pytest.raises(EdgePipeError, match="outside the data folder"):
        document_folder(root, 64)


def test_tiffs_are_read_and_what_is_not_read_is_said(tmp_path, capsys):
    root = make_image_folder(tmp_path / "imgs")
    img = cv2.imread(str(root / "red" / "0.png"))
    cv2.imwrite(str(root / "red" / "scan.tif"), img)
    (root / "red" / "2023-trip").mkdir()
    cv2.imwrite(str(root / "red" / "2023-trip" / "x.png"), img)
    (root / "red" / "notes.txt").write_text("mine")
    cv2.imwrite(str(root / "stray.png"), img)
    loaded = image_folder(root, 16)
    assert np.bincount(loaded.labels).tolist() == [5, 5, 6]  # scan.tif is red's sixth
    err = capsys.readouterr().err
    assert "3 entries not used" in err and "red/2023-trip/" in err and "stray.png" in err, err


def test_a_fifo_named_like_a_photo_is_not_read_for_its_digest(tmp_path):
    fifo = tmp_path / "photo.jpg"
    os.mkfifo(fifo)
    import threading
    got = []
    reader = threading.Thread(target=lambda: got.append(_content_digest(fifo)), daemon=True)
    reader.start()
    reader.join(10)  # reading it would wait for a writer forever: a daemon thread, so a regression fails, not hangs
    assert got == [None]


def test_a_data_path_that_is_not_utf8_is_one_line(tmp_path):
    from edgepipe.pipeline.recipe import load_recipe
    folder = os.fsencode(tmp_path) + b"/Fotos_M\xfcller"
    try:
        os.mkdir(folder)
    except OSError:
        pytest.skip("this file system takes UTF-8 names only (macOS)")
    recipe = os.path.join(folder, b"r.yaml")
    with open(recipe, "w") as f:
        yaml.safe_dump({"model": {"name": "tiny_cnn", "input_size": 32},
                        "data": {"kind": "image_folder", "path": "data"}}, f)
    with pytest.raises(EdgePipeError, match="not a UTF-8 path"):
        load_recipe(os.fsdecode(recipe))


def test_a_folder_that_changes_during_a_run_stops_it(tmp_path):
    """A later stage lists the folder again: photos added after training were split
    into the 'held-out' test, some of them among those the model trained on."""
    from rich.console import Console
    from edgepipe.pipeline.recipe import Recipe
    from edgepipe.pipeline.run import _Run
    root = make_image_folder(tmp_path / "imgs")
    recipe = Recipe.model_validate({"model": {"name": "tiny_cnn", "input_size": 32},
                                    "data": {"kind": "image_folder", "path": str(root)},
                                    "profiles": QUICK})
    (tmp_path / "out").mkdir()
    run = _Run(recipe, tmp_path / "out", Console(quiet=True), force=False)
    run.check_data_unchanged()
    cv2.imwrite(str(root / "red" / "new.png"), cv2.imread(str(root / "red" / "0.png"))[::-1])
    with pytest.raises(EdgePipeError, match="changed during this run"):
        run.check_data_unchanged()


def test_calibration_draws_from_every_class(tmp_path, monkeypatch):
    """The training split is sorted class by class: its first n images were the first classes only."""
    from edgepipe.pipeline.recipe import Recipe
    from edgepipe.pipeline.tasks import task_for
    from edgepipe.train import data
    labels = np.repeat(np.arange(10), 40)
    monkeypatch.setattr(data, "classes", lambda *a, **k: (labels[:, None, None, None] * np.ones((1, 2, 2, 3)),
                                                          labels, [str(i) for i in range(10)]))
    recipe = Recipe.model_validate({"model": {"name": "tiny_cnn", "input_size": 32}, "data": {"kind": "digits"},
                                    "export": {"calibration_samples": 100}, "profiles": QUICK})
    x = task_for(recipe).calibration()
    assert len(x) == 100 and len(np.unique(x[:, 0, 0, 0])) == 10


def test_prune_splits_a_folder_as_the_model_was_trained(tmp_path, capsys):
    """prune split --data-folder with seed 0 whatever the model trained with: it fine-tuned
    on the model's held-out images and scored it on images it had trained on."""
    from argparse import Namespace
    from edgepipe.cli.prune import _data_cfg, _say_assumed_split
    (tmp_path / "tiny_cnn.keras").write_bytes(b"")
    (tmp_path / "model_card.json").write_text(json.dumps({
        "training": {"data": {"kind": "image_folder", "train_seed": 5}}, "artifacts": [{"file": "tiny_cnn.keras"}]}))
    args = Namespace(model=str(tmp_path / "tiny_cnn.keras"), data_folder=str(tmp_path), split_seed=None)
    assert _data_cfg(args).train_seed == 5
    assert _data_cfg(Namespace(**vars(args) | {"split_seed": 7})).train_seed == 7
    mine = Namespace(**vars(args) | {"model": str(tmp_path / "mine.keras")})
    assert _data_cfg(mine).train_seed == 0
    assert capsys.readouterr().err == ""  # said once the data is known to fit the model (an error comes alone)
    _say_assumed_split(mine)
    assert "split with seed 0 (pass --split-seed" in capsys.readouterr().err  # said, not silent


def test_prune_on_a_folder_bundles_its_class_names_and_refuses_another_folders(tmp_path, capsys):
    """prune --data-folder wrote classifier TFLite files without labels.txt and with empty card
    labels, and fine-tuned a model on a folder of other classes as long as there were as many."""
    from edgepipe.base.backend import keras
    from edgepipe.cli.main import main
    from edgepipe.convert.tflite_metadata import associated_files
    root = make_image_folder(tmp_path / "photos", per_class=6, size=16)
    names = sorted(p.name for p in root.iterdir())
    x = keras.Input((16, 16, 3))
    h = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(8, 3, activation="relu")(x))
    keras.Model(x, keras.layers.Dense(len(names), activation="softmax")(h)).save(tmp_path / "m.keras")
    argv = ["prune", "--model", str(tmp_path / "m.keras"), "--sparsity", "0.5", "--data-folder", str(root),
            "--steps", "2", "--batch-size", "4", "--split-seed", "0", "--out", str(tmp_path / "out" / "p.keras")]
    (tmp_path / "out").mkdir()
    assert main(argv) == 0
    for name in ("p.tflite", "p.int8.tflite", "p.unpruned.tflite"):
        files = associated_files(tmp_path / "out" / name)
        assert files["labels.txt"].decode().split() == names, name
        assert json.loads((tmp_path / "out" / f"{name}.model_card.json").read_text())["labels"] == names
    (tmp_path / "model_card.json").write_text(json.dumps({  # the model's run trained on other classes
        "labels": ["cat", "dog", "fox"][:len(names)], "artifacts": [{"file": "m.keras"}]}))
    capsys.readouterr()
    assert main(argv[:-1] + [str(tmp_path / "out" / "q.keras")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "names its classes cat, dog" in err[0], err
    assert not (tmp_path / "out" / "q.keras").exists()


def test_a_split_smaller_than_a_batch_still_gives_full_batches(tmp_path):
    """Batched before repeating, 12 training images with batch_size 32 gave batches of 12, and
    batch_size 5 gave 5, 5, 2: the recipe's "images per step" was not what trained."""
    from edgepipe.pipeline.recipe import AugmentCfg
    from edgepipe.train.classify import _arrays_dataset
    x, y = np.zeros((12, 8, 8, 3), np.float32), np.arange(12) % 3
    for batch in (5, 32):
        sizes = [int(b[0].shape[0]) for b in _arrays_dataset(x, y, batch, 0, AugmentCfg()).take(6)]
        assert sizes == [batch] * 6, sizes


def test_a_split_made_already_or_a_file_is_named_for_what_it_is(tmp_path):
    from edgepipe.pipeline.recipe import DataCfg
    root = tmp_path / "photos"
    for split in ("train", "test"):
        make_image_folder(root / split)
    with pytest.raises(EdgePipeError, match="a split made already, not classes"):
        image_folder(root, 16)
    with pytest.raises(EdgePipeError, match="is a file"):
        image_folder(root / "train" / "red" / "0.png", 16)
    assert DataCfg(kind="image_folder", path=str(root), train_seed=10_000).train_seed == 10_000  # no val_seed to clash


def test_hidden_files_and_folder_times_are_no_change_and_the_order_is_the_old_one(tmp_path):
    """A .DS_Store written by Finder would stop a run mid-way; the digest of a folder
    without links or hidden files is what sorted(rglob) gave (no retraining on upgrade
    beyond the folders' own times)."""
    root = make_image_folder(tmp_path / "imgs")
    (root / "a b").mkdir()
    before = fingerprint(root)
    (root / "red" / ".DS_Store").write_bytes(b"finder")
    (root / ".syncthing.tmp").write_bytes(b"sync")
    assert fingerprint(root) == before
    (root / "up").symlink_to(tmp_path, target_is_directory=True)  # up the tree: named, not walked
    (tmp_path / "elsewhere.txt").write_text("x")
    assert fingerprint(root) != before
    changed = fingerprint(root)
    (tmp_path / "elsewhere.txt").write_text("xy")
    assert fingerprint(root) == changed


def test_a_link_inside_the_folder_cannot_lead_a_corners_entry_out(tmp_path):
    root, table = make_document_folder(tmp_path / "docs")
    (tmp_path / "deep" / "dir").mkdir(parents=True)
    first = next(iter(table))
    os.replace(root / first, tmp_path / "deep" / first)
    (root / "link").symlink_to(tmp_path / "deep" / "dir", target_is_directory=True)
    table[f"link/../{first}"] = table.pop(first)  # the kernel resolves .. after the link: deep/, outside
    (root / "corners.json").write_text(json.dumps(table))
    with pytest.raises(EdgePipeError, match="does not exist"):  # read by name: docs/<first>, which is gone
        document_folder(root, 64)


def test_a_folder_recipe_needs_no_pool_and_generated_documents_do(tmp_path):
    """``phases[].pool`` counts distinct generated images; a folder's training split is its
    own pool, yet a recipe for a folder without it was refused ("Field required")."""
    from edgepipe.pipeline.recipe import Recipe
    phases = {"quick": {"phases": [{"size": 64, "steps": 10}]}}
    for kind in ("image_folder", "document_folder"):
        recipe = Recipe.model_validate({"data": {"kind": kind, "path": str(tmp_path)}, "profiles": phases})
        assert recipe.train.phases[0].pool is None
    with pytest.raises(ValueError, match=r"profiles\.quick\.phases\[0\]\.pool is required for generated documents"):
        Recipe.model_validate({"data": {"kind": "synthetic_documents"}, "profiles": phases})


def test_a_folder_feeds_a_free_size_export_at_the_photos_own_size(tmp_path, capsys):
    """verify refused --data FOLDER for a model whose input size is free (a tf2onnx export with
    dynamic axes); photos of one size now feed it as they are, photos of several sizes are refused
    naming two of them (generated photos, a model built here)."""
    import tensorflow as tf
    import tf2onnx

    from edgepipe.base.backend import keras
    from edgepipe.cli.main import main
    x = keras.Input((None, None, 3), name="pixels")
    model = keras.Model(x, keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(x))))
    model.save(tmp_path / "free.keras")
    tf2onnx.convert.from_keras(model, input_signature=(tf.TensorSpec((None, None, None, 3), tf.float32, name="pixels"),),
                               output_path=str(tmp_path / "free.onnx"))
    rng = np.random.default_rng(0)
    for folder, grow in (("same", 0), ("mixed", 1)):
        (tmp_path / folder).mkdir()
        for i in range(4):
            cv2.imwrite(str(tmp_path / folder / f"{i}.png"), rng.integers(0, 256, (24 + grow * i, 32, 3), np.uint8))
    argv = ["verify", "--model", str(tmp_path / "free.keras"), "--export", str(tmp_path / "free.onnx"), "--json"]
    capsys.readouterr()
    assert main(argv + ["--data", str(tmp_path / "same")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["pass"] and report["export"].endswith("free.onnx"), report
    assert main(argv + ["--data", str(tmp_path / "mixed")]) == 2
    assert "photos differ in size (0.png is 32x24, 1.png 32x25)" in capsys.readouterr().err
