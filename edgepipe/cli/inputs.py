"""What the commands feed a model: the user's ``--data`` or generated documents."""
import argparse
import math
import re
import sys
from pathlib import Path

import numpy as np

from edgepipe.base.errors import EdgePipeError, first_line


MIN_SIDE = 64  # the document generator's camera blur needs room: smaller inputs get a scaled-down document


def sample_inputs(shape, data=None, count=32, spec=None, image=None) -> np.ndarray:
    """``--data`` (.npy, NHWC images in [0, 1] or uint8) or generated documents at the
    model's size: realistic pixels, not uniform noise, so activations have real ranges.
    ``spec`` (convert.inputspec) maps them to what the model takes, so a model that reads
    raw pixels calibrates on 0..255; without one they stay in [0, 1]. ``image``: whether
    the input takes images (``graphio.Port.is_image``; default: 3 channels); any other
    input (a vector, a channels-first image) takes ``--data`` as it is."""
    from edgepipe.convert.inputspec import DEFAULT
    spec = spec or DEFAULT
    shape = tuple(shape)
    image = (len(shape) == 3 and shape[-1] == 3) if image is None else image
    if data:
        x = load_data(data, "--data", shape, most=count)
        if len(x.shape[1:]) != len(shape) or any(d is not None and d != g for d, g in zip(shape, x.shape[1:])):
            raise EdgePipeError(f"--data has shape {x.shape}, the model expects (N, {', '.join(map(str, shape))})")
        if not image:  # a tensor, fed as the model takes it: as verify feeds it and its card says
            return _in_model_range(_finite(x, data), spec, data)
        return spec.from_unit(unit_images(x, f"--data {data}"))
    if not image or None in shape:
        raise EdgePipeError(f"model input {shape} needs --data (generated data is NHWC images only)")
    h, w, channels = shape
    side = max(h, w)
    pixels = np.stack([_document(i, side)[:h, :w] for i in range(count)])
    return spec.from_pixels(pixels if channels == 3 else luma(pixels))


def luma(pixels: np.ndarray) -> np.ndarray:
    """RGB pixels -> one grayscale channel (ITU-R BT.601, what OpenCV and PIL use)."""
    return (pixels.astype(np.float64) @ np.array([0.299, 0.587, 0.114]))[..., None]


def _in_model_range(x: np.ndarray, spec, data) -> np.ndarray:
    """A spatial tensor input (N, H, W, ...) whose model rescales raw values itself (a
    leading Rescaling(1/255)) calibrated on values in [0, 1] would quantize a 255th of its
    real range: refused."""
    if spec.source == "model" and x.ndim >= 3 and spec.own_range()[1] >= 255 and x.size and float(np.abs(x).max()) <= 1:
        raise EdgePipeError(f"--data {data} holds values in [{x.min():g}, {x.max():g}], but {spec.note}: it takes "
                            "raw values up to 255; give them as the model takes them (this input is no NHWC "
                            "image, so edgepipe feeds --data as it is)")
    return x


def unit_images(x: np.ndarray, where: str) -> np.ndarray:
    """Images in [0, 1]: uint8 arrays are pixels 0..255; float arrays must already be in [0, 1]
    (the input spec then maps them to what the model takes, so they are never scaled twice)."""
    if x.dtype == np.uint8:
        return x.astype(np.float32) / 255.0
    if not np.issubdtype(x.dtype, np.floating):
        raise EdgePipeError(f"{where} holds {x.dtype} values; images go in as uint8 pixels 0..255 or floats in "
                            "[0, 1]")
    x = np.asarray(x, np.float32)
    if not np.isfinite(x).all():
        raise EdgePipeError(f"{where} contains NaN or Inf")
    lo, hi = float(x.min()), float(x.max())
    if lo < -1e-3 or hi > 1 + 1e-3:
        raise EdgePipeError(f"{where} holds values in [{lo:g}, {hi:g}]; images go in as floats in [0, 1] or uint8 "
                            "pixels 0..255 (edgepipe maps them to the model's own input range)")
    return x


def _document(index: int, side: int) -> np.ndarray:
    from edgepipe.train.docgen import generate
    if side >= MIN_SIDE:
        return generate(424242, index, side).image
    import cv2
    return cv2.resize(generate(424242, index, MIN_SIDE).image, (side, side), interpolation=cv2.INTER_AREA)


def _numbers(counts: tuple, what: str, check=lambda values: True):
    """An argparse type: comma-separated finite numbers, as many as one of ``counts``,
    that pass ``check`` (so nonsense is a one-line usage error before the model loads)."""
    def parse(text: str):
        try:
            values = tuple(float(v) for v in text.split(","))
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if len(values) not in counts or not all(math.isfinite(v) for v in values) or not check(values):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return values
    parse.__name__ = what
    return parse


def add_input_spec_args(parser):
    """How the app's pixels map to the model's input (default: what the model's own
    Rescaling/Normalization layers say, else pixel / 255)."""
    # "-1,1" is a value, not an option: argparse only knows "-1" and "-.5" as negative numbers
    parser._negative_number_matcher = re.compile(r"^-\d+$|^-\d*\.\d+$|^-[\d.]+(e-?\d+)?(,-?[\d.]+(e-?\d+)?)+$")
    g = parser.add_argument_group("input spec (written to the model card, TFLite metadata, Core ML ImageType)")
    g.add_argument("--input-range", type=_numbers((2,), "LO,HI with LO < HI", lambda v: v[0] < v[1]), metavar="LO,HI",
                   help="pixels 0..255 map linearly onto [LO, HI], e.g. -1,1 (keras.applications MobileNetV2), "
                        "0,1 or 0,255 (raw pixels)")
    g.add_argument("--mean", type=_numbers((1, 3), "one or three numbers"), metavar="R,G,B",
                   help="pixel-space mean per channel, in the model's channel order: x = (pixel - mean) / std "
                        "(ImageNet: 123.675,116.28,103.53)")
    g.add_argument("--std", type=_numbers((1, 3), "one or three numbers > 0", lambda v: min(v) > 0), metavar="R,G,B",
                   help="pixel-space std per channel (ImageNet: 58.395,57.12,57.375)")
    g.add_argument("--bgr", action="store_true", help="the model takes its channels in BGR order")


def input_spec(args, model, ports=None):
    """(spec, ports): the spec the user's flags give, else the model's own, else the
    default; ``ports`` (``convert.graphio``): the export's inputs, returned with each
    image input's own spec (the flags apply to every image input; without them each
    input says what its own layers take) and a 1-channel input marked as a grayscale
    image when the flags describe it. ``spec`` is the first image input's."""
    from dataclasses import replace
    from edgepipe.convert.graphio import with_images
    from edgepipe.convert.inputspec import DEFAULT, InputSpec, from_model, from_range
    if args.input_range and (args.mean or args.std):
        raise EdgePipeError("--input-range and --mean/--std both say how pixels map to the input; give one")
    user = None
    flags = args.input_range or args.mean or args.std or args.bgr
    ports = list(ports or [])
    if flags and ports and not any(p.is_image for p in ports):
        ports = with_images(ports, grayscale=True)  # the user says it takes pixels
    if flags and ports and not any(p.is_image for p in ports):
        shapes = ", ".join("x".join("?" if d is None else str(d) for d in p.shape) for p in ports)
        raise EdgePipeError(f"--input-range/--mean/--std/--bgr describe an image input (NHWC, 3 or 1 channels); "
                            f"this model takes {shapes}, which its bundle describes as a tensor fed as it is")
    if args.input_range:
        user = from_range(*args.input_range)
    elif args.mean or args.std:
        user = InputSpec(args.mean or (0.0,), args.std or (1.0,), source="user")
    images = [(i, p) for i, p in enumerate(ports) if p.is_image] or [(0, None)]
    owns = {i: from_model(model, i) for i, _ in images}
    for own in owns.values():
        if user and own and (user.mean, user.std) != (own.mean, own.std):  # calibrating on the wrong range ruins int8
            raise EdgePipeError(f"{own.note}, so it takes pixels in [{own.value_range()[0]:g}, "
                                f"{own.value_range()[1]:g}]; --input-range/--mean/--std say "
                                f"[{user.value_range()[0]:g}, {user.value_range()[1]:g}]: drop them, edgepipe reads "
                                "the model's own")
    specs = {}
    for i, port in images:
        spec = user or owns[i] or DEFAULT
        channels = port.shape[-1] if port else 3 if ports else model.input_shape[-1]
        if args.bgr:
            if channels == 1:
                raise EdgePipeError("--bgr: the model's image input is grayscale (1 channel); there is no channel "
                                    "order")
            spec = replace(spec, color_order="BGR")
        spec.per_channel(channels)  # a one-line error when the counts do not fit the model
        specs[i] = spec
    ports = [replace(p, pixel_spec=specs.get(i)) for i, p in enumerate(ports)]
    return specs[images[0][0]], ports


def say_kept_state(path, fmt: str):
    """A TFLite file that keeps an LSTM's state between calls: what the app must do, said once written."""
    if fmt == "tflite":
        from edgepipe.convert.tflite import state_note
        note = state_note(path)
        if note:
            print(note, file=sys.stderr)


def say_assumed_range(spec, model, ports):
    """Tell the user when the bundle assumed ``pixel / 255`` for an image input that neither
    they nor the model describe (``spec`` is what ``input_spec`` chose). Called after the file
    is written, so an error stays one line."""
    assumed = [p for p in ports or [] if p.is_image and (p.pixel_spec or spec).source == "default"]
    if _edgepipe_network(model) or not assumed:
        return
    which = ("its input" if len(ports) == 1 else
             f"input{'s' if len(assumed) > 1 else ''} {', '.join(repr(p.name) for p in assumed)}")
    what = ("a SavedModel signature does not say" if not hasattr(model, "layers")
            and getattr(model, "keras_model", None) is None
            else "the model's Rescaling/Normalization layers are not a per-channel scale and offset on its "
                 "input that edgepipe can read, so they do not say" if _has_preprocessing(model)
            else f"the model starts with no Rescaling/Normalization layer{' there' if len(ports) > 1 else ''}, "
                 "so it does not say")
    print(f"note: {what} how pixels map to {which}; the bundle states pixel / 255 (pass "
          "--input-range 0,255 if it takes raw pixels, -1,1 for keras.applications' MobileNets)", file=sys.stderr)


def _has_preprocessing(model) -> bool:
    """Whether a Rescaling or Normalization layer is anywhere in the model (one edgepipe could
    not read: per-pixel statistics, or past a branch), so the note does not say there is none."""
    layers = getattr(getattr(model, "keras_model", None) or model, "layers", None) or []
    return any(type(layer).__name__ in ("Rescaling", "Normalization") for layer in layers)


def _edgepipe_network(model) -> bool:
    """One of edgepipe's own networks (trained, pruned or quantized here): they take pixel / 255
    by design, so a note would be noise. A model from anywhere else gets the note."""
    from edgepipe.mobile_models import registry
    name = getattr(model, "name", "") if hasattr(model, "layers") else ""
    return any(name == n or name.startswith(n + "_") for n in registry.names())


def add_shape_args(parser):
    """Free dimensions and the batch of an export (``convert.graphio``)."""
    g = parser.add_argument_group("input shapes")
    g.add_argument("--input-shape", action="append", type=_shape, metavar="[NAME:]1xHxWxC",
                   help="fix the free dimensions of an input, batch first, e.g. 1x224x224x3; repeat with "
                        "NAME: for each input of a model that has several")
    g.add_argument("--dynamic-batch", action="store_true",
                   help="keep the batch free in the export (tflite, onnx; default: a batch of 1)")


MAX_INPUT_ELEMENTS = 1 << 28  # 1 GiB of float32 per input: past it converters crash instead of failing


def _shape(text: str):
    from edgepipe.convert.graphio import parse_shape
    try:
        name, shape = parse_shape(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected [NAME:]1xHxWxC (positive integers), got {text!r}") from None
    if math.prod(shape) > MAX_INPUT_ELEMENTS:
        raise argparse.ArgumentTypeError(f"{text!r} is {math.prod(shape):,} values per input, over the "
                                         f"{MAX_INPUT_ELEMENTS:,} edgepipe exports")
    return name, shape


def given_shapes(args) -> dict:
    """{input name or None: shape} from ``--input-shape``; one input given twice is an error."""
    given = {}
    for name, shape in args.input_shape or []:
        if name in given:
            raise EdgePipeError(f"--input-shape given twice for {f'input {name!r}' if name else 'the input'}")
        given[name] = shape
    return given


def sample_feeds(shapes: dict, data=None, count=32, images=None, dtypes=None, id_limit=2) -> dict:
    """{input name: array} for ``shapes`` ({name: shape, batch first}): ``--data``
    (.npy for a model with one input, .npz keyed by input name) or generated inputs:
    documents for the inputs named in ``images`` (default: ``graphio.image_names``);
    for others, by ``dtypes`` ({name: dtype name}), seeded: both values of a bool,
    whole numbers 0..``id_limit - 1`` for an integer (ids every runtime casts alike),
    uniform [0, 1) otherwise. Images are in [0, 1] (the input spec maps them), others
    as the model takes them."""
    from edgepipe.convert.graphio import image_names
    images = image_names(shapes) if images is None else images
    if data:
        return _data_feeds(shapes, data, images)
    rng, dtypes = np.random.default_rng(20), dtypes or {}
    order = [name for name in shapes if name in images]
    return {name: _own_documents(sample_inputs(shape[1:], count=count, image=True), order.index(name))
            if name in images else _generated(rng, (count, *shape[1:]), dtypes.get(name), id_limit)
            for name, shape in shapes.items()}


def _own_documents(batch: np.ndarray, k: int) -> np.ndarray:
    """The k-th image input's documents: the batch rolled by k and, for odd k, mirrored, so
    that no two image inputs see the same picture (an export with two image inputs wired
    the wrong way round gave the same outputs, and passed verify)."""
    if k == 0:
        return batch
    batch = np.roll(batch, k, axis=0)
    return np.ascontiguousarray(batch[:, :, ::-1]) if k % 2 and batch.ndim == 4 else batch


def _generated(rng, shape: tuple, dtype: str | None, id_limit: int) -> np.ndarray:
    """A tensor input's generated values, as float32 (the runners cast them to the model's dtype)."""
    kind = _dtype_kind(dtype)
    if kind == "bool":  # uniform floats cast to bool are all True: one branch would never run
        return (rng.random(shape) < 0.5).astype(np.float32)
    if kind == "int":  # fractions are truncated by one runtime and rounded by another
        return rng.integers(0, max(1, id_limit), shape).astype(np.float32)
    return rng.random(shape, np.float32)


def _dtype_kind(dtype: str | None) -> str:
    """"bool", "int" or "float" for a runtime's dtype name ("int32", ONNX's "tensor(int64)")."""
    name = str(dtype or "float32").removeprefix("tensor(").rstrip(")")
    if name in ("bool", "bool_"):
        return "bool"
    return "int" if name.startswith(("int", "uint")) else "float"


def _data_feeds(shapes: dict, data, images: set) -> dict:
    names = list(shapes)
    if Path(data).suffix != ".npz":
        if len(names) != 1:
            raise EdgePipeError(f"the model has {len(names)} inputs ({', '.join(names)}): give --data as an .npz "
                                f"with one array per input name")
        x = load_data(data, "--data", shapes[names[0]][1:])
        return {names[0]: _checked(x, shapes[names[0]], data, names[0], names[0] in images)}
    arrays = load_npz(data, "--data")
    if set(arrays) != set(names):
        raise EdgePipeError(f"--data {data} holds {_listed(sorted(arrays)) or 'nothing'}; the model's inputs are "
                            f"{_listed(names)}")
    feeds = {n: _checked(arrays[n], shapes[n], data, n, n in images) for n in names}
    if len({len(x) for x in feeds.values()}) != 1:
        raise EdgePipeError(f"--data {data}: the arrays hold different numbers of items "
                            f"({', '.join(f'{n}: {len(x)}' for n, x in feeds.items())})")
    return feeds


def calibration_feeds(ports: list, data, count: int, spec=None) -> dict:
    """{input name: calibration array} for a model of several inputs, from ``--data`` as an
    .npz of one array per input name (at most ``count`` items, spread over it); image inputs
    mapped to what the model takes, as ``sample_inputs`` maps one, other inputs as they are."""
    from edgepipe.convert.inputspec import DEFAULT
    spec = spec or DEFAULT
    names = [p.name for p in ports]
    if not data or Path(data).suffix != ".npz":
        raise EdgePipeError(f"int8 calibration of a model of {len(ports)} inputs ({_listed(names)}) needs --data as "
                            "an .npz with one array per input name (or --variant tflite_dynamic: int8 weights, "
                            "no calibration)")
    feeds = _data_feeds({p.name: p.shape for p in ports}, data, {p.name for p in ports if p.is_image})
    keep = spread(len(next(iter(feeds.values()))), count)
    return {p.name: spec.from_unit(feeds[p.name][keep]) if p.is_image else _in_model_range(feeds[p.name][keep], spec, data)
            for p in ports}


def _listed(names: list, most: int = 8) -> str:
    """Names for a one-line message: the first ``most``, and how many more."""
    more = f" and {len(names) - most} more" if len(names) > most else ""
    return ", ".join(map(str, names[:most])) + more


def _checked(x: np.ndarray, shape, data, name, image: bool) -> np.ndarray:
    want = tuple(shape[1:])
    if x.ndim != len(shape) or any(w is not None and w != g for w, g in zip(want, x.shape[1:])):
        from edgepipe.evaluate.runners import transposed_image
        free = ", ".join("?" if d is None else str(d) for d in want)
        if transposed_image(want, x.shape[1:]):  # the data is right; the model is channels-first
            raise EdgePipeError(f"--data {name!r} holds images of shape {x.shape[1:]}; input {name!r} takes them "
                                f"channels-first, (N, {free}): edgepipe checks and times channels-last (NHWC) "
                                "models, as TFLite, Core ML and phone apps take images; export it NHWC")
        raise EdgePipeError(f"--data {name!r} has shape {x.shape}, the model expects (N, {free})")
    if image:
        return unit_images(x, f"--data {data} ({name!r})")
    return _finite(x, data)


def _finite(x: np.ndarray, data) -> np.ndarray:
    x = np.asarray(x, np.float32)
    if not np.isfinite(x).all():
        raise EdgePipeError(f"--data {data} contains NaN or Inf")
    return x


MAX_DATA_BYTES = 4 << 30  # what --data may hold in memory as float32


def load_npz(path, option: str) -> dict:
    """A user's .npz of named arrays, sized from the zip's directory before any is read
    (a member never yields more than its declared size); each array as ``load_npy``."""
    import zipfile
    path = Path(path)
    if not path.is_file():
        raise EdgePipeError(f"{option} must be an existing .npy or .npz file, got {path}")
    try:
        with zipfile.ZipFile(path) as archive:
            declared = sum(i.file_size for i in archive.infolist())
        if declared > MAX_DATA_BYTES:
            raise EdgePipeError(f"{option} {path} unpacks to {declared:,} bytes, over the {MAX_DATA_BYTES >> 30} GiB "
                                "edgepipe reads into memory; pass a smaller sample")
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except EdgePipeError:
        raise
    except (ValueError, OSError, EOFError, TypeError, zipfile.BadZipFile) as e:
        raise EdgePipeError(f"{option} {path} is not a readable .npz archive ({first_line(e, 120)})") from None
    for k, arr in arrays.items():
        if not isinstance(arr, np.ndarray):  # numpy hands back a member that is no .npy (a .DS_Store) as bytes
            raise EdgePipeError(f"{option} {path}: member {k!r} is no .npy array; an .npz holds one array per "
                                "input name and nothing else")
        if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool) or arr.size == 0:
            raise EdgePipeError(f"{option} {path}: array {k!r} must hold numbers, has {arr.dtype} {arr.shape}")
    return arrays


def load_data(path, option: str, shape, most: int | None = None) -> np.ndarray:
    """``--data``: an .npy array, or a folder of photos (at any depth, in path order, at most
    ``most``, spread over it) read upright and resized to the input's H x W as uint8 pixels, one channel for a
    grayscale input: as Keras' image_dataset_from_directory and edgepipe's own training read them."""
    if not Path(path).is_dir():
        return load_npy(path, option, most)
    return folder_pixels(path, option, shape, most)


def spread(count: int, most: int | None) -> np.ndarray:
    """``most`` indices of ``count`` items, evenly over them (all of them when ``most`` is None or more):
    class folders and arrays sorted by class come one class after another."""
    if most is None or count <= most:
        return np.arange(count)
    return np.unique(np.linspace(0, count - 1, most).round().astype(int))


def folder_pixels(root, option: str, shape, most: int | None = None) -> np.ndarray:
    """The photos under ``root`` as (N, H, W, C) uint8, resized to the input's H x W; for an
    input whose size is free, at the photos' own size when they all share one."""
    import cv2

    from edgepipe.base.photos import read_rgb
    from edgepipe.train.folders import photo_files
    shape = tuple(shape)
    if len(shape) != 3 or shape[-1] not in (1, 3) or not all(v is None or isinstance(v, int) and v > 0
                                                             for v in shape[:2]):
        raise EdgePipeError(f"{option} {root} is a folder of photos, which feeds an image input (height, width, 1 "
                            f"or 3 channels); this input is {shape}: give {option} as an .npy array")
    h, w, channels = shape
    files = photo_files(root)
    files = [files[i] for i in spread(len(files), most)]
    pixels, first = [], None
    for path in files:
        rgb = read_rgb(path)
        if h is None or w is None:  # free size: the first photo's, which every other must share
            first = first or (path, rgb.shape[:2])
            _same_size(first, (path, rgb.shape[:2]), option, root)
        else:
            rgb = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)
        pixels.append(rgb if channels == 3 else np.round(luma(rgb)).astype(np.uint8))
        if 4 * pixels[-1].size * len(files) > MAX_DATA_BYTES:  # known at the first photo: all share its size
            raise EdgePipeError(f"{option} {root}: {len(files)} photos of {rgb.shape[1]}x{rgb.shape[0]} are over "
                                f"the {MAX_DATA_BYTES >> 30} GiB edgepipe holds in memory as float32; give fewer")
    return np.stack(pixels)


def _same_size(first, this, option: str, root):
    """Photos for an input whose size is free are stacked at their own size, which they must
    share: there is no one size to stack them at, and edgepipe does not guess one."""
    (pa, a), (pb, b) = first, this
    if a != b:
        raise EdgePipeError(f"{option} {root}: the model's input size is free and the photos differ in size "
                            f"({Path(pa).name} is {a[1]}x{a[0]}, {Path(pb).name} {b[1]}x{b[0]}): fix the input "
                            f"size (convert --input-shape) or give photos of one size")


def load_npy(path, option: str, most: int | None = None) -> np.ndarray:
    """A user's .npy array, memory-mapped first so a lying header costs nothing:
    no pickles, no empty or non-numeric arrays, nothing over ``MAX_DATA_BYTES``;
    with ``most``, only that many items, spread over it, are read."""
    path = Path(path)
    if path.suffix != ".npy" or not path.is_file():
        raise EdgePipeError(f"{option} must be an existing .npy file, got {path}")
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError, TypeError) as e:
        reason = first_line(e, 120)
        raise EdgePipeError(f"{option} {path} is not a readable .npy array ({reason})") from None
    if not isinstance(arr, np.ndarray) or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise EdgePipeError(f"{option} {path} must hold a numeric array, has {getattr(arr, 'dtype', type(arr))}")
    if arr.size == 0:
        raise EdgePipeError(f"{option} {path} is empty (shape {arr.shape})")
    if most is not None and arr.ndim and len(arr) > most:
        arr = arr[spread(len(arr), most)]
    if arr.size * 4 > MAX_DATA_BYTES:
        raise EdgePipeError(f"{option} {path} holds {arr.size:,} values, over the {MAX_DATA_BYTES >> 30} GiB "
                            "edgepipe reads into memory; pass a smaller sample")
    return np.array(arr)
