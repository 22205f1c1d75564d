import cv2
import numpy as np

from edgepipe.mobile_models.docquad import order_corners
from edgepipe.train.docgen import generate


def test_same_seed_and_index_give_identical_samples():
    a, b = generate(7, 3), generate(7, 3)
    assert np.array_equal(a.image, b.image)
    assert np.array_equal(a.edges, b.edges)
    assert np.array_equal(a.corners, b.corners)


def test_different_index_or_seed_differ():
    a = generate(7, 3)
    assert not np.array_equal(a.image, generate(7, 4).image)
    assert not np.array_equal(a.image, generate(8, 3).image)


def test_shapes_and_dtypes_at_any_size():
    for size in (64, 256):
        s = generate(0, 0, size)
        assert s.image.shape == (size, size, 3) and s.image.dtype == np.uint8
        assert s.edges.shape == (size, size) and set(np.unique(s.edges)) <= {0, 1}
        assert s.corners.shape == (4, 2)


def test_corners_are_ordered_tl_tr_br_bl():
    for i in range(20):
        c = generate(1, i).corners
        assert np.allclose(order_corners(c), c)
        # TL is the corner nearest the image origin; the quad is clockwise (y down)
        assert np.argmin(c.sum(1)) == 0
        area2 = sum(np.cross(c[k], c[(k + 1) % 4]) for k in range(4))
        assert area2 > 0


def test_edge_map_is_the_quad_border():
    for i in range(10):
        s = generate(2, i)
        drawn = np.zeros_like(s.edges)
        cv2.polylines(drawn, [np.round(s.corners).astype(np.int32)], True, 1, 3)
        on_border = (s.edges & drawn).sum() / s.edges.sum()
        assert on_border > 0.95, f"sample {i}: only {on_border:.0%} of edge pixels on the quad border"
        assert s.edges.sum() > 100


def test_every_side_is_partly_visible():
    for i in range(40):
        c = generate(3, i).corners
        for k in range(4):
            pts = c[k] + np.linspace(0, 1, 32)[:, None] * (c[(k + 1) % 4] - c[k])
            assert np.mean(np.all((pts >= 0) & (pts <= 255), 1)) >= 0.3


def test_document_is_brighter_than_background_on_average():
    """The page is pasted: pixels inside the quad differ from the background."""
    diffs = []
    for i in range(10):
        s = generate(4, i)
        mask = np.zeros(s.edges.shape, np.uint8)
        cv2.fillPoly(mask, [np.round(s.corners).astype(np.int32)], 1)
        inside = s.image[mask == 1].mean()
        outside = s.image[mask == 0].mean()
        diffs.append(abs(inside - outside))
    assert np.mean(diffs) > 5


def test_tf_data_pipeline_is_deterministic():
    from edgepipe.train.datasets import document_dataset
    a = next(iter(document_dataset(5, 4, 64, 4, ["fuse"], shuffle=False)))
    b = next(iter(document_dataset(5, 4, 64, 4, ["fuse"], shuffle=False)))
    assert np.array_equal(a[0].numpy(), b[0].numpy())
    assert a[0].shape == (4, 64, 64, 3) and a[1]["fuse"].shape == (4, 64, 64, 1)
    assert float(a[0].numpy().max()) <= 1.0
    expected = generate(5, 0, 64)
    assert np.allclose(a[0].numpy()[0], expected.image / 255.0)


def test_heldout_composition_shares_no_background_or_layout_with_training():
    from edgepipe.train.docgen import HELDOUT, TRAIN
    for field in ("photos", "textures", "pictures"):
        assert not set(getattr(TRAIN, field)) & set(getattr(HELDOUT, field)), field
    assert set(TRAIN.layouts) & set(HELDOUT.layouts) == {"picture"}  # printed pictures, from disjoint sources
    a, b = generate(9, 1, 128, composition="heldout"), generate(9, 1, 128, composition="heldout")
    assert np.array_equal(a.image, b.image) and not np.array_equal(a.image, generate(9, 1, 128).image)
    drawn = np.zeros_like(a.edges)
    cv2.polylines(drawn, [np.round(a.corners).astype(np.int32)], True, 1, 3)
    assert (a.edges & drawn).sum() / a.edges.sum() > 0.95


def test_realism_features_appear_in_the_stream():
    """Hands, folds, receipts, low light and motion blur each occur in a few hundred samples."""
    from unittest import mock

    from edgepipe.train import docgen
    seen = {name: 0 for name in ("_hand", "_fold", "_receipt", "_motion_blur")}
    originals = {name: getattr(docgen, name) for name in seen}

    def counting(name):
        def wrapper(*args, **kwargs):
            seen[name] += 1
            return originals[name](*args, **kwargs)
        return wrapper
    with mock.patch.multiple(docgen, **{name: counting(name) for name in seen}):
        for i in range(150):
            docgen.generate(4, i, 64)
    assert all(count >= 3 for count in seen.values()), seen


def test_the_region_label_is_the_visible_page():
    for i in range(12):
        s = generate(6, i, 128)
        assert s.region.shape == (128, 128) and set(np.unique(s.region)) <= {0, 1}
        expected = np.zeros((128, 128), np.uint8)
        cv2.fillPoly(expected, [np.round(s.corners).astype(np.int32)], 1)
        bands = s.image.sum(-1) == 0  # letterbox bands are exact zeros
        assert not s.region[bands.all(1)].any() and not s.region[:, bands.all(0)].any()
        agree = (s.region == expected)[~bands].mean()
        assert agree > 0.98, (i, agree)
        assert s.edges[s.region == 0].sum() < s.edges.sum()  # the border lies on the page's rim


def test_desk_objects_lie_in_the_page_plane_and_leave_the_page_on_top():
    """A phone, card or book is warped by the page's homography into the background; the
    page itself, pasted afterwards, is untouched and labelled alone."""
    from edgepipe.train import deskobjects
    rng = np.random.default_rng(0)
    h, w, pw, ph = 200, 240, 60, 84
    corners = np.array([[80, 50], [150, 60], [145, 150], [75, 140]], np.float32)
    homography = cv2.getPerspectiveTransform(np.array([[0, 0], [pw, 0], [pw, ph], [0, ph]], np.float32), corners)
    changed = 0
    for _ in range(20):
        desk = np.full((h, w, 3), 100.0, np.float32)
        out = deskobjects.lay(rng, desk.copy(), homography, (pw, ph), (240, 240, 235))
        assert out.shape == desk.shape and np.isfinite(out).all()
        changed += int((np.abs(out - desk).max(-1) > 5).sum() > 50)
    assert changed >= 15  # most draws put something visible on the desk


def test_desk_objects_are_in_the_training_stream_only_and_leave_the_labels_the_pages():
    from unittest import mock

    from edgepipe.train import deskobjects, docgen
    assert docgen.TRAIN.desk_objects > 0 and docgen.HELDOUT.desk_objects == 0  # held-out photos stay as they were
    seen, real_lay = [0], deskobjects.lay

    def lay(*a, **k):
        seen[0] += 1
        return real_lay(*a, **k)
    with mock.patch.object(deskobjects, "lay", lay):
        for i in range(60):
            s = docgen.generate(11, i, 64)
            drawn = np.zeros_like(s.edges)
            cv2.polylines(drawn, [np.round(s.corners).astype(np.int32)], True, 1, 3)
            assert (s.edges & drawn).sum() / max(1, s.edges.sum()) > 0.95
    assert seen[0] >= 8, seen
