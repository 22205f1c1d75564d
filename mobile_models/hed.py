"""HED (holistically-nested edge detection) for document scanning.

Both backbones are tables whose rows mirror the seed (S3:117-166 and the
hed-tutorial repo). Each table row is ``(block, t, c, n, s, side)``: block type,
expansion, output channels, repeats, stride of the first repeat, and the side
output (dsn1..dsn5) tapped after the row, if any. Side outputs are 1-channel
logits upsampled by a transposed conv (kernel 2f, stride f); the fuse layer is a
1x1 conv over the concatenated sides. Outputs are logits named side1..side5 and
fuse; ``inference_model`` adds the sigmoid edge map that apps consume.

With ``region=True`` the network also predicts where the page is: a coarse
page-region logit map from the deepest side's features (a page is a large,
smooth region, so 1/16 resolution upsampled bilinearly is enough). Trained with
the edges, it lets the quad finder prefer the quad whose sides separate page
from world over one built from a page side and a background contour.
"""
import numpy as np

from edgepipe.base.backend import keras, layers
from edgepipe.mobile_models.blocks import conv_bn, inverted_residual
from edgepipe.mobile_models.docquad import EDGES, PAGE
from edgepipe.mobile_models.registry import register
from edgepipe.base.errors import EdgePipeError

HED_VGG = [
    # block  t    c   n  s  side
    ("conv", 1,  12, 2, 1, 1),
    ("conv", 1,  24, 2, 2, 2),  # stride 2 here stands for the seed's 2x2 max-pool
    ("conv", 1,  48, 3, 2, 3),
    ("conv", 1,  96, 3, 2, 4),
    ("conv", 1, 192, 3, 2, 5),
]

HED_MOBILENET_V2 = [
    # block  t   c  n  s  side
    ("conv", 1,  3, 1, 1, None),  # two full-resolution convs, not in MobileNetV2,
    ("conv", 1,  6, 1, 1, 1),     # so that dsn1 sees the input's resolution
    ("ir",   6, 12, 1, 2, 2),
    ("ir",   6, 24, 2, 2, 3),
    ("ir",   6, 48, 3, 2, 4),
    ("ir",   6, 64, 4, 2, 5),
]

FULL_SIDE_CHANNELS = 6
SIDE_NAMES = ("side1", "side2", "side3", "side4", "side5")
REGION = "region"  # the page-region logits (training head)


def _walk(table, x, pool_downsample):
    """Walk a table; return (tensor, total stride) tapped for each side output."""
    taps, total_stride = [], 1
    for r, (block, t, c, n, s, side) in enumerate(table, start=1):
        total_stride *= s
        for i in range(n):
            stride = s if i == 0 else 1
            name = f"block{r}_{i}"
            if block == "conv":
                if stride > 1 and pool_downsample:
                    x = layers.MaxPooling2D(2, name=f"{name}_pool")(x)
                    stride = 1
                x = conv_bn(x, c, 3, stride, name, act="relu")
            else:
                x = inverted_residual(x, t, c, stride, name)
        if side:
            taps.append((x, total_stride))
    return taps


def _side_head(x, k, factor):
    y = conv_bn(x, 1, 1, 1, f"dsn{k}", act=None)
    if factor > 1:
        y = layers.Conv2DTranspose(1, 2 * factor, strides=factor, padding="same",
                                   name=f"dsn{k}_up")(y)
    return layers.Activation("linear", name=SIDE_NAMES[k - 1])(y)


def _check_input(input_shape):
    h, w, c = input_shape
    if c != 3 or any(d is not None and d % 16 for d in (h, w)):
        raise EdgePipeError(f"HED needs an HxWx3 input with H and W multiples of 16 (or None), "
                            f"got {tuple(input_shape)}")


def _region_head(x, factor):
    y = conv_bn(x, 16, 3, 1, "region_conv", act="relu")
    y = layers.Conv2D(1, 1, use_bias=True, name="region_logits")(y)
    y = layers.UpSampling2D(factor, interpolation="bilinear", name="region_up")(y)
    return layers.Activation("linear", name=REGION)(y)


def build_hed(table, input_shape=(256, 256, 3), pool_downsample=False, name="hed", region=False,
              full_side=False):
    _check_input(input_shape)
    image = keras.Input(input_shape, name="image")
    taps = _walk(table, image, pool_downsample)
    if full_side:  # side 1 from one full-resolution conv beside a half-resolution body
        taps = [(conv_bn(image, FULL_SIDE_CHANNELS, 3, 1, "full_side", act="relu"), 1)] + taps
    sides = [_side_head(x, k, stride) for k, (x, stride) in enumerate(taps, start=1)]
    fused = layers.Concatenate(name="dsn_concat")(sides)
    fuse = layers.Conv2D(1, 1, use_bias=True, name="fuse")(fused)
    outputs = sides + [fuse] + ([_region_head(*taps[-1])] if region else [])
    model = keras.Model(image, outputs, name=name)
    _bilinear_init(model)
    return model


def _bilinear_init(model):
    """Start transposed convs as bilinear upsamplers (HED paper); trains faster
    and avoids checkerboard artefacts early on."""
    for layer in model.layers:
        if isinstance(layer, layers.Conv2DTranspose):
            k = layer.kernel_size[0]
            f = (k + 1) // 2
            center = f - 0.5 if k % 2 == 0 else f - 1
            og = np.arange(k, dtype=np.float32)
            filt = 1 - np.abs(og - center) / f
            kernel = np.outer(filt, filt)[:, :, None, None]
            layer.set_weights([kernel.astype(np.float32), np.zeros(1, np.float32)])


def inference_model(model, output="fuse"):
    """The deployable HED: the sigmoid edge map named ``edges`` in [0, 1], and,
    for a model with a region head, the page-region probabilities named ``page``.

    ``output='fuse'`` uses the fuse logits (the paper's default); ``'mean'``
    averages the sigmoid of the fuse and all side outputs.
    """
    by_name = dict(zip(model.output_names, model.outputs))
    if output == "fuse":
        edges = layers.Activation("sigmoid", name=EDGES)(by_name["fuse"])
    elif output == "mean":
        probs = [layers.Activation("sigmoid", name=f"{n}_prob")(by_name[n]) for n in (*SIDE_NAMES, "fuse")]
        edges = layers.Average(name=EDGES)(probs)
    else:
        raise EdgePipeError(f"HED output must be 'fuse' or 'mean', got '{output}'")
    if REGION not in by_name:
        return keras.Model(model.input, edges, name=f"{model.name}_edges")
    page = layers.Activation("sigmoid", name=PAGE)(by_name[REGION])
    return keras.Model(model.input, [edges, page], name=f"{model.name}_edges")


def _width(c: int, width: float) -> int:
    """Channels scaled by ``width``; stages stay multiples of 4 (int8 kernels' lanes)."""
    if width == 1.0:
        return c
    return max(4, int(round(c * width / 4)) * 4) if c >= 12 else max(2, round(c * width))


def scaled_table(table, stem_stride=1, width=1.0, expansion=None, sides=5):
    """A variant of ``table`` for speed sweeps (issue #18): the first row's stride
    (2 puts side 1 at half resolution; the last stage then keeps stride 1, so the
    deepest side stays at /16), every width times ``width``, every inverted
    residual's expansion set to ``expansion``, and only the first ``sides`` side
    outputs (the stages after the last one are dropped)."""
    if stem_stride not in (1, 2) or not 0 < width <= 2 or sides not in range(2, 6):
        raise EdgePipeError(f"HED options: stem_stride 1 or 2, 0 < width <= 2, sides 2..5; "
                            f"got {stem_stride}, {width}, {sides}")
    rows = []
    for r, (block, t, c, n, s, side) in enumerate(table):
        if r == 0:
            s = stem_stride
        elif r == len(table) - 1 and stem_stride == 2:
            s = 1
        t = expansion if (block == "ir" and expansion) else t
        rows.append((block, t, _width(c, width), n, s, side))
        if side == sides:
            break
    return rows


@register("hed_mobilenet_v2", "edges", "MobileNetV2-style HED document-edge detector (seed S3, hed-tutorial repo)")
def hed_mobilenet_v2(input_shape=(256, 256, 3), stem_stride=1, width=1.0, expansion=6, sides=5, region=False,
                     full_side=0):
    if region not in (0, 1) or full_side not in (0, 1) or (full_side and stem_stride != 2):
        raise EdgePipeError(f"HED options region and full_side are 0 or 1, full_side with stem_stride 2 only; "
                            f"got region {region}, full_side {full_side}")
    table = scaled_table(HED_MOBILENET_V2, int(stem_stride), float(width), int(expansion), int(sides))
    if full_side:  # the body's half-resolution tap gives way to the full-resolution one
        table = [row[:5] + (None if row[5] == 1 else row[5],) for row in table]
    return build_hed(table, input_shape, name="hed_mobilenet_v2", region=bool(region), full_side=bool(full_side))


@register("hed_vgg", "edges", "VGG-style HED with the seed's 12/24/48/96/192 channels")
def hed_vgg(input_shape=(256, 256, 3)):
    return build_hed(HED_VGG, input_shape, pool_downsample=True, name="hed_vgg")
