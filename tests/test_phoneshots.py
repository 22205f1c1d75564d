"""The real-image evaluation set: sources split from training, phone-sized
frames with named conditions, letterboxed training frames, and the metrics."""
import numpy as np
import pytest

from edgepipe.evaluate.taskmetrics import error_summary, worst_corner_error
from edgepipe.train import realimages
from edgepipe.train.docgen import TRAIN, generate
from edgepipe.train.phoneshots import CONDITIONS, phone_shot


def test_evaluation_sources_never_reach_training():
    evaluation = set(realimages.EVAL_PHOTOS) | set(realimages.EVAL_PICTURES)
    training = set(realimages.TRAIN_PHOTOS) | set(realimages.TRAIN_PICTURES)
    assert not evaluation & training
    assert set(TRAIN.photos) <= training and set(TRAIN.pictures) <= training
    for name in sorted(evaluation | training):
        im = realimages.load(name)  # ships with a package: no download
        assert im.dtype == np.uint8 and im.ndim == 3 and im.shape[2] == 3 and min(im.shape[:2]) >= 100, name


@pytest.fixture(scope="module")
def shots():
    return [phone_shot(5, i) for i in range(len(CONDITIONS))]


def test_phone_shots_cover_every_condition_at_phone_resolutions(shots):
    assert [s.condition for s in shots] == list(CONDITIONS)
    by = {s.condition: s for s in shots}
    assert by["composite"].image.shape == (480, 640, 3)
    assert by["portrait"].image.shape == (2016, 1512, 3) and by["landscape"].image.shape == (1512, 2016, 3)
    small = by["small_page"]
    assert np.ptp(small.corners[:, 0]) < 0.4 * small.image.shape[1]
    for s in shots:
        h, w = s.image.shape[:2]
        inside = (s.corners >= -0.5 * np.array([w, h])) & (s.corners <= 1.5 * np.array([w, h]))
        assert inside.all() and s.corners.dtype == np.float32
    again = phone_shot(5, 3)
    assert np.array_equal(again.image, shots[3].image)


def test_some_training_frames_are_letterboxed_with_unlabelled_bands():
    boxed = 0
    for i in range(20):
        s = generate(11, i, 64)
        band_rows = np.where(s.image.reshape(64, -1).max(1) == 0)[0]
        band_cols = np.where(s.image.transpose(1, 0, 2).reshape(64, -1).max(1) == 0)[0]
        bands = np.concatenate([band_rows, band_cols])
        if len(bands) >= 4:
            boxed += 1
            assert s.edges[band_rows].sum() == 0 and s.edges[:, band_cols].sum() == 0
    assert 2 <= boxed <= 14


def test_worst_corner_error_and_summary():
    truth = np.array([[0, 0], [100, 0], [100, 100], [0, 100]], np.float32)
    off = truth.copy()
    off[2] += [3, 4]  # one corner 5 px off
    assert worst_corner_error(off, truth, 300, 400) == pytest.approx(1.0)
    assert worst_corner_error(np.roll(off, 1, 0), truth, 300, 400) == pytest.approx(1.0)  # start corner free
    assert worst_corner_error(None, truth, 300, 400) == float("inf")
    s = error_summary([1.0, 3.0, float("inf"), 0.5])
    assert (s["found"], s["under_2pct"], s["under_5pct"], s["count"]) == (0.75, 0.5, 0.75, 4)
