"""Datasets behind one interface, on tiny data the tests make: image folders,
document folders (corners JSON / CSV), digits; the errors users cause; ODS/OIS."""
import json

import cv2
import numpy as np
import pytest

from edgepipe.evaluate.taskmetrics import ods_ois
from edgepipe.base.errors import EdgePipeError
from edgepipe.pipeline.recipe import AugmentCfg, DataCfg
from edgepipe.train import data
from edgepipe.train.docgen import generate
from edgepipe.train.folders import document_folder, image_folder

COLORS = {"red": (0, 0, 255), "green": (0, 255, 0), "blue": (255, 0, 0)}  # BGR on disk


def make_image_folder(root, per_class=5, size=20):
    rng = np.random.default_rng(0)
    for name, bgr in COLORS.items():
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            img = np.clip(np.array(bgr, np.float32) + rng.normal(0, 20, (size, size, 3)), 0, 255).astype(np.uint8)
            cv2.imwrite(str(root / name / f"{i}.png"), img)
    return root


def make_document_folder(root, count=4, size=96, fmt="json"):
    root.mkdir(parents=True)
    table = {}
    for i in range(count):
        s = generate(31, i, size)
        while (s.corners < 0).any() or (s.corners > size).any():  # user photos have the page in frame
            s = generate(31, i + 1000 * count, size)
            i += 1000 * count
        cv2.imwrite(str(root / f"doc{i}.jpg"), cv2.cvtColor(s.image, cv2.COLOR_RGB2BGR))
        table[f"doc{i}.jpg"] = s.corners[::-1].tolist()  # any order: the loader sorts them
    if fmt == "json":
        (root / "corners.json").write_text(json.dumps(table))
    else:
        lines = ["file,x1,y1,x2,y2,x3,y3,x4,y4"] + [",".join([k] + [str(v) for p in pts for v in p])
                                                   for k, pts in table.items()]
        (root / "corners.csv").write_text("\n".join(lines) + "\n")
    return root, table


def test_image_folder_splits_are_stratified_and_disjoint(tmp_path):
    root = make_image_folder(tmp_path / "imgs")
    train, val, test = (image_folder(root, 16, split) for split in ("train", "val", "test"))
    assert train.class_names == ["blue", "green", "red"]
    assert train.images.shape == (9, 16, 16, 3) and val.images.shape == test.images.shape == (3, 16, 16, 3)
    assert sorted(np.bincount(val.labels).tolist()) == sorted(np.bincount(test.labels).tolist()) == [1, 1, 1]
    pixels = [{im.tobytes() for im in part.images} for part in (train, val, test)]
    assert not (pixels[0] & pixels[1] or pixels[0] & pixels[2] or pixels[1] & pixels[2])  # disjoint
    red = train.images[train.labels == 2].mean(axis=(0, 1, 2))
    assert red[0] > 0.8 and red[2] < 0.2  # RGB order, scaled to [0, 1]


@pytest.mark.parametrize("setup, message", [
    (lambda r: None, "does not exist"),
    (lambda r: r.mkdir(), "has no class folders"),
    (lambda r: (make_image_folder(r), [p.unlink() for p in list((r / "red").iterdir())[2:]]), "has 2 image"),
    (lambda r: (make_image_folder(r), (r / "red" / "0.png").write_bytes(b"not a png")), "not a readable image"),
])
def test_image_folder_errors_name_the_problem(tmp_path, setup, message):
    root = tmp_path / "imgs"
    setup(root)
    with pytest.raises(EdgePipeError, match=message) as e:
        image_folder(root, 16)
    assert str(root) in str(e.value)


def test_image_folder_skips_mac_leftovers_and_reads_a_copy_once(tmp_path, capsys):
    """A copy (or a link) of a photo landed in training and in the held-out test at once;
    __MACOSX and AppleDouble ._ files from a Mac's archive were read as a class and as images."""
    import shutil
    root = make_image_folder(tmp_path / "imgs")
    (root / "__MACOSX" / "red").mkdir(parents=True)
    (root / "__MACOSX" / "red" / "._0.png").write_bytes(b"\x00\x05\x16\x07AppleDouble")
    (root / "red" / "._0.png").write_bytes(b"\x00\x05\x16\x07AppleDouble")
    shutil.copy(root / "red" / "0.png", root / "red" / "copy.png")
    (root / "red" / "link.png").symlink_to(root / "red" / "1.png")
    loaded = image_folder(root, 16)
    assert loaded.class_names == ["blue", "green", "red"] and np.bincount(loaded.labels).tolist() == [5, 5, 5]
    assert "copy.png is a copy of" in capsys.readouterr().err
    for split in ("train", "val", "test"):  # training reads three splits: the folder is hashed once
        image_folder(root, 16, split)
    assert "copy.png is a copy of" not in capsys.readouterr().err
    shutil.copy(root / "red" / "2.png", root / "green" / "red_by_mistake.png")
    with pytest.raises(EdgePipeError, match="same image under two classes"):
        image_folder(root, 16)


@pytest.mark.parametrize("name, message", [("cat\ndog", "control character"), (b"caf\xe9", "not UTF-8")])
def test_a_class_name_no_labels_file_can_hold_is_refused(tmp_path, name, message):
    """'cat\\ndog' split into two labels in labels.txt and shifted every class after it;
    a name that is not UTF-8 failed at export, after training."""
    import os
    root = make_image_folder(tmp_path / "imgs")
    folder = os.path.join(os.fsencode(root), name) if isinstance(name, bytes) else root / name
    os.rename(root / "red", folder)
    with pytest.raises(EdgePipeError, match=message):
        image_folder(root, 16)


def test_a_tiny_image_in_an_image_folder_is_refused(tmp_path):
    root = make_image_folder(tmp_path / "imgs")
    cv2.imwrite(str(root / "red" / "0.png"), np.zeros((1, 1, 3), np.uint8))
    with pytest.raises(EdgePipeError, match="too small"):
        image_folder(root, 16)


def test_what_the_folder_holds_keys_the_training(tmp_path, capsys):
    """Photos added to the folder were not trained on (the train stage was 'up to date'),
    and the re-split then scored the old model on images it had trained on."""
    from edgepipe.cli.main import main
    from edgepipe.pipeline.recipe import Recipe
    from edgepipe.pipeline.tasks import data_inputs, train_key
    root = make_image_folder(tmp_path / "imgs")
    recipe = Recipe.model_validate({"model": {"name": "tiny_cnn", "input_size": 32},
                                    "data": {"kind": "image_folder", "path": str(root)},
                                    "profiles": {"quick": {"phases": [{"size": 32, "steps": 2, "pool": 1}],
                                                           "batch_size": 2, "steps_per_epoch": 2}}})
    before = (data_inputs(recipe), train_key(recipe))
    cv2.imwrite(str(root / "red" / "new.png"), np.full((20, 20, 3), (0, 0, 250), np.uint8))
    after = (data_inputs(recipe), train_key(recipe))
    assert before[0] != after[0] and before[1] != after[1]
    assert data_inputs(recipe) == after[0]  # and the same folder gives the same key
    # a run folder inside the data folder would be read back as a class: refused, nothing made
    (tmp_path / "r.yaml").write_text(json.dumps(recipe.model_dump(exclude_none=True)))
    for command in ("run", "train"):
        assert main([command, "--recipe", str(tmp_path / "r.yaml"), "--out", str(root / "runs")]) == 2
        assert "inside the data folder" in capsys.readouterr().err and not (root / "runs").exists()


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_document_folder_renders_edges_at_the_scaled_corners(tmp_path, fmt):
    root, table = make_document_folder(tmp_path / "docs", fmt=fmt)
    docs = document_folder(root, 64)
    assert docs.images.shape == (4, 64, 64, 3) and docs.edges.shape == (4, 64, 64)
    first = np.asarray(table[docs.files[0]]) * 64 / 96
    assert np.allclose(sorted(docs.corners[0].tolist()), sorted(first.tolist()), atol=1e-4)
    tl = np.round(docs.corners[0][0]).astype(int).clip(0, 63)
    assert docs.edges[0][max(tl[1] - 2, 0):tl[1] + 3, max(tl[0] - 2, 0):tl[0] + 3].any()


@pytest.mark.parametrize("corners, message", [
    ([[1, 1], [50, 1], [50, 50]], "needs 4 corner points, got 3"),
    ([[1, 1], [500, 1], [50, 50], [1, 50]], "fall outside"),
    ([[1, 1], ["a", 1], [50, 50], [1, 50]], "must be numbers"),
    ([[True, True], [False, True], [True, False], [False, False]], "not true/false"),
    ([[50, 50], [50, 50], [50, 50], [50, 50]], "no page: they enclose 0 square pixels"),
    ([[10, 10], [40, 40], [70, 70], [90, 90]], "no page: they enclose"),  # on a line
    ([[10, 10], [80, 10], [30, 30], [10, 80]], "not make a convex quadrilateral"),  # a dart
])
def test_document_folder_rejects_bad_corners(tmp_path, corners, message):
    root, table = make_document_folder(tmp_path / "docs", count=2)
    table[next(iter(table))] = corners
    (root / "corners.json").write_text(json.dumps(table))
    with pytest.raises(EdgePipeError, match=message):
        document_folder(root, 64)


@pytest.mark.parametrize("write, message", [
    (lambda r: (r / "corners.csv").write_bytes("file,x1,y1,x2,y2,x3,y3,x4,y4\ncaf\xe9.jpg,1,1,9,1,9,9,1,9\n"
                                              .encode("cp1252")), "not UTF-8"),
    (lambda r: (r / "corners.csv").write_text("doc0.jpg,1,1,50,1,50,50,1,50\n"), "first line must be the header"),
    (lambda r: (r / "corners.csv").write_text("file,y1,x1,y2,x2,y3,x3,y4,x4\n"), "first line must be the header"),
    (lambda r: (r / "corners.csv").write_text("file,x1,y1,x2,y2,x3,y3,x4,y4\na.jpg,1,1,50,1,50,50,1,50\n"
                                              "a.jpg,1,1,50,1,50,50,1,50\n"), "line 3: a.jpg is listed more than once"),
    (lambda r: (r / "corners.json").write_text('{"a.jpg": [[1, 1], [9, 1], [9, 9], [1, 9]], '
                                               '"a.jpg": [[1, 1], [2, 1], [2, 2], [1, 2]]}'), "lists a.jpg more than once"),
    (lambda r: ((r / "corners.json").write_text("{}"), (r / "corners.csv").write_text("")), "has both"),
    (lambda r: (r / "corners.csv").write_text("file,x1,y1,x2,y2,x3,y3,x4,y4\n\n\nb.jpg,1,1,50,1,50,50,1,50\n"
                                              "b.jpg,1,1,50,1,50,50,1,50\n"), "line 5: b.jpg"),  # editor's numbering
    (lambda r: (r / "corners.json").write_text('{"a.jpg": [[1, 1], [9, 1], [9, 9], [1, 1' + "0" * 4000 + ']]}'),
     "corners must be numbers"),
    (lambda r: (r / "corners.json").write_text("[" * 100_000 + "]" * 100_000), "not valid JSON"),
    # deep enough to parse, and to run a recursive check out of stack (a RecursionError traceback)
    (lambda r: (r / "corners.json").write_text('{"a.jpg": ' + "[" * 600 + "1" + "]" * 600 + "}"),
     "not lists nested deeper"),
    (lambda r: (r / "corners.json").write_text('{"a\\u0000.jpg": [[1, 1], [9, 1], [9, 9], [1, 9]]}'),
     "listed in the corners file but does not exist"),
])
def test_corners_files_a_careless_user_writes_are_refused(tmp_path, write, message):
    root = tmp_path / "docs"
    root.mkdir()
    write(root)
    with pytest.raises(EdgePipeError, match=message):
        document_folder(root, 64)


def test_one_photo_listed_under_two_names_is_refused(tmp_path):
    root, table = make_document_folder(tmp_path / "docs", count=3)
    name = next(iter(table))
    (root / "corners.json").write_text(json.dumps(table | {f"./{name}": table[name]}))
    with pytest.raises(EdgePipeError, match="the same photo"):
        document_folder(root, 64)


def test_corners_with_a_byte_order_mark_and_unlabelled_photos(tmp_path, capsys):
    root, table = make_document_folder(tmp_path / "docs", count=3, fmt="csv")
    (root / "corners.csv").write_bytes(b"\xef\xbb\xbf" + (root / "corners.csv").read_bytes())  # Excel's CSV UTF-8
    cv2.imwrite(str(root / "extra.jpg"), np.zeros((40, 40, 3), np.uint8))
    assert len(document_folder(root, 64).files) == 3
    assert "3 labelled photos; 1 without corners are not used (extra.jpg)" in capsys.readouterr().err


def test_verify_scores_images_that_neither_trained_nor_chose_the_checkpoint(tmp_path):
    root, _ = make_document_folder(tmp_path / "docs", count=6)
    cfg = DataCfg(kind="document_folder", path=str(root))
    parts = [data.documents(cfg, split, 32)[2] for split in ("train", "val", "test")]
    assert [len(p) for p in parts] == [4, 1, 1]
    keys = [{c.tobytes() for c in p} for p in parts]
    assert not (keys[0] & keys[1] or keys[0] & keys[2] or keys[1] & keys[2])
    with pytest.raises(EdgePipeError, match="2 labelled photo.*at least 3"):
        data.documents(DataCfg(kind="document_folder", path=str(make_document_folder(tmp_path / "two", 2)[0])),
                       "train", 32)


def test_document_folder_without_corners_file(tmp_path):
    (tmp_path / "docs").mkdir()
    with pytest.raises(EdgePipeError, match="no corners.json or corners.csv"):
        document_folder(tmp_path / "docs", 64)


def test_one_interface_for_every_kind(tmp_path):
    docs_root, _ = make_document_folder(tmp_path / "docs", count=5)
    imgs_root = make_image_folder(tmp_path / "imgs")
    x, y, names = data.classes(DataCfg(kind="digits"), "train", 16)
    assert x.shape[1:] == (16, 16, 3) and names == [str(i) for i in range(10)]
    x, y, names = data.classes(DataCfg(kind="image_folder", path=str(imgs_root)), "val", 16)
    assert len(names) == 3 and len(x) == 3
    images, edges, corners = data.documents(DataCfg(kind="document_folder", path=str(docs_root)), "val", 32)
    assert images.dtype == np.uint8 and len(images) == 1 and corners.shape == (1, 4, 2)
    images, _, _ = data.documents(DataCfg(val_size=3), "val", 32)
    assert len(images) == 3
    with pytest.raises(EdgePipeError, match="no class labels"):
        data.classes(DataCfg(), "train", 16)
    with pytest.raises(ValueError, match="data.path is required"):
        DataCfg(kind="image_folder")


def test_flip_augmentation_moves_the_edge_map_with_the_image():
    from edgepipe.base.backend import tf
    tf.random.set_seed(3)
    image = np.zeros((8, 8, 3), np.float32)
    image[:, 0] = 1.0
    edges = image[..., :1].copy()
    fn = data.augment(AugmentCfg(flip=True))
    for _ in range(8):
        x, y = fn(tf.constant(image), {"fuse": tf.constant(edges)})
        assert np.array_equal(x.numpy()[..., :1], y["fuse"].numpy())


def test_ods_is_at_least_the_fixed_threshold_f_and_ois_at_least_ods():
    from edgepipe.evaluate.taskmetrics import edge_fscore
    rng = np.random.default_rng(0)
    truth = np.zeros((3, 32, 32), np.uint8)
    truth[:, 10, 4:28] = 1
    pred = truth * rng.uniform(0.2, 0.3, truth.shape) + rng.uniform(0, 0.15, truth.shape)  # faint edges
    fixed = edge_fscore(pred, truth, 0.5)["f_score"]
    m = ods_ois(pred, truth)
    assert fixed == 0.0 and m["ods_f"] > 0.9 and 0.15 <= m["ods_threshold"] <= 0.2
    assert m["ois_f"] >= m["ods_f"] - 1e-9


def test_document_folder_letterboxes_a_portrait_photo_like_scan(tmp_path):
    root = tmp_path / "docs"
    root.mkdir()
    photo = np.full((120, 80, 3), 90, np.uint8)
    cv2.rectangle(photo, (10, 20), (70, 100), (240, 240, 240), -1)
    cv2.imwrite(str(root / "p.png"), photo)
    (root / "corners.json").write_text(json.dumps({"p.png": [[10, 20], [70, 20], [70, 100], [10, 100]]}))
    docs = document_folder(root, 64)
    scale = 64 / 120
    x0 = (64 - round(80 * scale)) // 2  # black bands left and right, as scan pads
    assert docs.images[0][:, :x0].max() == 0 and docs.images[0][:, 32].min() > 0
    assert np.allclose(docs.corners[0][0], [x0 + 10 * (43 / 80), 20 * scale], atol=1e-3)
    assert docs.edges[0][:, :x0].sum() == 0 and docs.edges[0].sum() > 0
    assert docs.rois[0].tolist() == [x0, 0, round(80 * scale), 64]  # the finder's roi, as scan's letterbox gives it


def test_held_out_documents_carry_the_roi_scan_would_pass():
    """Generated frames letterboxed into the input have their content box beside them;
    square ones cover the input."""
    from edgepipe.train.docgen import PAD_VALUE
    images, _, _, rois = data.documents(DataCfg(val_size=12), "test", 64, rois=True)
    assert rois.shape == (12, 4)
    boxed = [r for r in rois if tuple(r) != (0, 0, 64, 64)]
    assert boxed, "the held-out stream letterboxes a share of its frames"
    for image, (x, y, w, h) in zip(images, rois):
        outside = np.ones((64, 64), bool)
        outside[y:y + h, x:x + w] = False
        assert (image[outside] == PAD_VALUE).all() and w * h > 0


def test_verify_corner_scores_give_the_finder_each_frames_roi(monkeypatch):
    """Verify's corner scores run the finder as scan does: on a letterboxed frame it
    ignores the bands (the roi) and reads the pixels."""
    from edgepipe.evaluate import taskmetrics
    images, edges, corners, rois = data.documents(DataCfg(val_size=12), "test", 64, rois=True)
    seen, real = [], taskmetrics.find_quad
    monkeypatch.setattr(taskmetrics, "find_quad", lambda m, p, roi=None, page=None, image=None:
                        seen.append((roi, image)) or real(m, p, roi=roi, page=page, image=image))
    taskmetrics.corner_metrics(edges.astype(np.float32), corners, images=images, rois=rois)
    assert [r for r, _ in seen] == [tuple(int(v) for v in r) for r in rois]
    assert all(im is not None for _, im in seen)


def test_digits_are_8_bit_like_the_pixels_apps_feed():
    """Core ML's ImageType takes 8-bit pixels; off-grid floats would make its parity look worse than it is."""
    from edgepipe.train.digits import digits_arrays
    x, _ = digits_arrays(24, "val")
    assert x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1
    np.testing.assert_array_equal(np.round(x * 255), x * 255)


def test_a_recipes_relative_data_path_is_beside_the_recipe_or_else_under_the_working_folder(tmp_path, monkeypatch):
    import yaml
    from edgepipe.pipeline.recipe import load_recipe
    make_image_folder(tmp_path / "project" / "photos")
    make_image_folder(tmp_path / "work" / "old_photos")
    recipe = {"data": {"kind": "image_folder", "path": "photos"},
              "profiles": {"quick": {"phases": [{"size": 32, "steps": 1, "pool": 1}]}}}
    (tmp_path / "project" / "r.yaml").write_text(yaml.safe_dump(recipe))
    monkeypatch.chdir(tmp_path / "work")
    assert load_recipe(tmp_path / "project" / "r.yaml").data.path == str(tmp_path / "project" / "photos")
    recipe["data"]["path"] = "old_photos"  # only under the working folder: found there, as it always was
    (tmp_path / "project" / "r.yaml").write_text(yaml.safe_dump(recipe))
    assert load_recipe(tmp_path / "project" / "r.yaml").data.path == str(tmp_path / "work" / "old_photos")
    recipe["data"]["path"] = "nowhere"
    (tmp_path / "project" / "r.yaml").write_text(yaml.safe_dump(recipe))
    with pytest.raises(EdgePipeError, match=str(tmp_path / "project" / "nowhere")):
        load_recipe(tmp_path / "project" / "r.yaml")
