import numpy as np

from edgepipe.train.losses import class_balanced_sigmoid_ce


def _numpy_loss(y, x):
    beta = (1 - y).sum() / y.size
    p = 1 / (1 + np.exp(-x))
    pos = -beta * (y * np.log(p)).sum()
    neg = -(1 - beta) * ((1 - y) * np.log(1 - p)).sum()
    return (pos + neg) / y.size


def test_matches_the_hed_formula():
    rng = np.random.default_rng(0)
    y = (rng.random((2, 16, 16, 1)) < 0.1).astype(np.float32)
    x = rng.normal(0, 2, y.shape).astype(np.float32)
    got = class_balanced_sigmoid_ce(y, x).numpy()
    want = [_numpy_loss(y[i], x[i]) for i in range(2)]
    assert np.allclose(got, want, rtol=1e-4)


def test_balanced_weights_edges_by_beta():
    """With 10% edges, missing an edge pixel costs ~9x more than a false alarm."""
    y = np.zeros((1, 10, 10, 1), np.float32)
    y[0, :1] = 1  # 10 of 100 pixels
    miss = np.zeros_like(y)
    miss[0, 0, 0] = -5.0  # one edge pixel predicted as background
    miss[0, 1:] = -20.0
    miss[0, 0, 1:] = 20.0
    alarm = np.full_like(y, -20.0)
    alarm[0, :1] = 20.0
    alarm[0, 5, 5] = 5.0  # one background pixel predicted as edge
    lm = class_balanced_sigmoid_ce(y, miss).numpy()[0]
    la = class_balanced_sigmoid_ce(y, alarm).numpy()[0]
    assert 8 < lm / la < 10


def test_image_without_edges_costs_zero_and_stays_finite():
    y = np.zeros((2, 8, 8, 1), np.float32)
    y[1, 2, 2] = 1
    x = np.random.default_rng(1).normal(0, 3, y.shape).astype(np.float32)
    loss = class_balanced_sigmoid_ce(y, x).numpy()
    assert loss[0] == 0.0
    assert np.isfinite(loss).all() and loss[1] > 0


def test_dice_charges_false_edges_that_the_balanced_loss_lets_through():
    """A map that also fires on a background contour as long as the page edge:
    the class-balanced loss barely notices, the Dice term doubles."""
    import numpy as np
    from edgepipe.train.losses import soft_dice, with_dice
    y = np.zeros((1, 32, 32, 1), np.float32)
    y[0, 8, 4:28] = 1
    clean = np.where(y > 0, 8.0, -8.0).astype(np.float32)
    noisy = clean.copy()
    noisy[0, 20, 4:28] = 8.0  # a false line
    ce_clean, ce_noisy = (class_balanced_sigmoid_ce(y, m).numpy()[0] for m in (clean, noisy))
    d_clean, d_noisy = (soft_dice(y, m).numpy()[0] for m in (clean, noisy))
    assert d_clean < 0.01 and d_noisy > 0.3
    assert (d_noisy - d_clean) > 10 * (ce_noisy - ce_clean)
    assert with_dice(0.0) is class_balanced_sigmoid_ce
    both = with_dice(2.0)(y, noisy).numpy()[0]
    assert abs(both - (ce_noisy + 2 * d_noisy)) < 1e-5
