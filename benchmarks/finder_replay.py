"""Replay the quad finder on cached edge maps: finder settings scored in seconds.

    .venv/bin/python benchmarks/finder_replay.py --run runs/default \
        [--sets indep:1,indep:2,phone:777,phone:778] \
        [--variant "min_area_frac=0.015,min_pair_angle_deg=30" ...]

The held-out benchmarks (``independent_scenes.py``, ``document_quality.py``)
spend most of their time composing scenes and running the network. The finder
only needs the edge map, so this script composes each set once and caches the
network's inputs as ``scan`` prepares them (letterbox, auto-exposure), keyed by
the sha256 of the code that makes the scenes; then it runs each model once per
scene and caches the maps, keyed by the model's sha256 too. Then it scores the finder's defaults and each
``--variant`` (``QuadParams`` fields) on the same maps, printing for each set
the found rate and the share with every corner within 2% and 5% of the photo
diagonal, the figures the two benchmarks print for the same model.

For the defaults it also counts the misses where the true quad would outscore
the quad chosen: there the page's lines never became a candidate (candidate
generation), as opposed to misses the edge map itself causes.
"""
import argparse
import dataclasses
import hashlib
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from edgepipe.evaluate.runners import open_runner  # noqa: E402
from edgepipe.evaluate.taskmetrics import worst_corner_error  # noqa: E402
from edgepipe.mobile_models import docquad  # noqa: E402
from edgepipe.mobile_models import scan as scanning  # noqa: E402

COUNTS = {"indep": 160, "phone": 140, "heldout": 240, "train": 240}


def scene_source(kind: str, seed: int):
    """index -> a scene with ``image`` (RGB photo) and ``corners`` (photo pixels)."""
    if kind == "indep":
        import independent_scenes
        return lambda i: independent_scenes.compose(seed, i)
    if kind in ("heldout", "train"):  # our own renderer's compositions, as the run's verify scores them
        from edgepipe.train.docgen import generate
        return lambda i: generate(seed, i, 256, composition=kind)
    from edgepipe.train.phoneshots import phone_shot
    return lambda i: phone_shot(seed, i)


def cache_inputs(kind: str, seed: int, h_in: int, w_in: int, path: Path) -> dict:
    """The network's inputs for one set, as ``scan`` prepares them (letterbox,
    auto-exposure), with rois, true corners (input pixels) and photo sizes.
    Composing the scenes is most of the time, and does not depend on the model."""
    if path.is_file():
        return dict(np.load(path))
    source = scene_source(kind, seed)
    images, rois, corners, sizes = [], [], [], []
    for i in range(COUNTS[kind]):
        scene = source(i)
        image, box = scanning.letterbox(scene.image, h_in, w_in)
        images.append(scanning.expose(image, box))
        rois.append(box.roi)
        corners.append(box.to_input(scene.corners))
        sizes.append(scene.image.shape[:2])
        print(f"\r{kind}:{seed} scene {i + 1}/{COUNTS[kind]}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    inputs = {"image": np.array(images, np.uint8), "roi": np.array(rois), "corners": np.array(corners),
              "size": np.array(sizes)}
    save(inputs, path)
    return inputs


def cache_maps(runner, inputs: dict, path: Path) -> dict:
    """Edge maps of one set's inputs, with their rois, corners and photo sizes."""
    if path.is_file():
        return dict(np.load(path)) | {"image": inputs["image"]}
    edges = [scanning.edges_and_page(runner.predict(image[None].astype(np.float32) / 255.0))[0][0, ..., 0]
             for image in inputs["image"]]
    maps = {"edges": np.array(edges, np.float32), **{k: inputs[k] for k in ("roi", "corners", "size")}}
    save(maps, path)
    return maps | {"image": inputs["image"]}  # the finder's step 9 reads the input's pixels


def save(arrays: dict, path: Path):
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(path)


def digest(paths) -> str:
    return hashlib.sha256(b"".join(hashlib.sha256(p.read_bytes()).digest() for p in paths)).hexdigest()[:16]


def photo_error(found, truth, roi, size) -> float:
    """Worst corner error as % of the photo diagonal, from input-pixel corners."""
    x, y, w, h = roi
    to_photo = np.array([size[1] / w, size[0] / h])
    found = None if found is None else (found - [x, y]) * to_photo
    return worst_corner_error(found, (truth - [x, y]) * to_photo, size[1], size[0])


def score(maps: dict, params: docquad.QuadParams, diagnose: bool = False) -> dict:
    errors, generation = [], 0
    for edges, roi, truth, size, image in zip(maps["edges"], maps["roi"], maps["corners"], maps["size"],
                                              maps["image"]):
        result = docquad.find_quad(edges, params, roi=tuple(roi), image=image)
        err = photo_error(result.corners, truth, roi, size)
        errors.append(err)
        if diagnose and not err < 2 and true_quad_wins(edges, tuple(roi), truth, result, params, image):
            generation += 1
    errors = np.array(errors)
    return {"found": np.isfinite(errors).mean() * 100, "under_2pct": (errors < 2).mean() * 100,
            "under_5pct": (errors < 5).mean() * 100, "misses": int((~(errors < 2)).sum()),
            "true_quad_would_win": generation}


def true_quad_wins(edges, roi, truth, result, params, image) -> bool:
    """Would the finder's own score have picked the true quad, had it been a candidate?"""
    frame, binary = docquad.threshold_edges(edges, params, roi)
    scorer = docquad.QuadScorer(docquad._dilate(binary, params.support_tol), None, params, frame, image)
    true_score, true_frac = scorer.score(np.asarray(truth, np.float64))
    found_score = scorer.score(np.asarray(result.corners, np.float64))[0] if result.found else -np.inf
    return true_frac >= params.min_support and true_score > found_score


def parse_set(item: str) -> tuple[str, int]:
    kind, _, seed = item.strip().partition(":")
    if kind not in COUNTS or not seed.isdigit():
        raise SystemExit(f"finder_replay: a set is KIND:SEED with KIND one of {', '.join(COUNTS)}; got {item!r}")
    return kind, int(seed)


def parse_variant(text: str) -> dict:
    fields = {f.name: f.type for f in dataclasses.fields(docquad.QuadParams)}
    out = {}
    for item in filter(None, (s.strip() for s in text.split(","))):
        key, _, value = item.partition("=")
        if key not in fields:
            raise SystemExit(f"finder_replay: unknown QuadParams field {key!r}; fields: {', '.join(fields)}")
        name = getattr(fields[key], "__name__", str(fields[key]))
        kind = {"int": int, "bool": lambda v: v.lower() in ("1", "true", "yes")}.get(name, float)
        out[key] = kind(value)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", default="runs/default", help="run folder (its hed_mobilenet_v2.int8.tflite)")
    ap.add_argument("--model", help="export to use instead of the run's int8 TFLite")
    ap.add_argument("--sets", default="indep:1,indep:2,phone:777,phone:778",
                    help="comma-separated KIND:SEED, KIND indep (independent_scenes), phone (document_quality), "
                         "or heldout / train (train/docgen.py's compositions, 256x256)")
    ap.add_argument("--variant", action="append", default=[], help="QuadParams overrides, e.g. 'max_lines=14'")
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "edgepipe_finder_maps")
    args = ap.parse_args()
    model = Path(args.model) if args.model else Path(args.run) / "hed_mobilenet_v2.int8.tflite"
    if not model.is_file():
        raise SystemExit(f"finder_replay: no model file at {model}")
    # the inputs depend on the code that makes the scenes and the input; the maps on the model too
    root = Path(__file__).resolve().parent.parent
    scene_code = [root / "benchmarks/independent_scenes.py", root / "train/docgen.py",
                  root / "train/deskobjects.py", root / "train/phoneshots.py", root / "mobile_models/scan.py"]
    scenes_key, model_key = digest(scene_code), digest([model])
    args.cache.mkdir(parents=True, exist_ok=True)
    runner = open_runner(model)
    h_in, w_in = runner.inputs[0].shape[1:3]
    sets = [parse_set(item) for item in args.sets.split(",")]
    maps = {}
    for k, s in sets:
        inputs = cache_inputs(k, s, h_in, w_in, args.cache / f"inputs_{scenes_key}_{h_in}x{w_in}_{k}{s}.npz")
        maps[k, s] = cache_maps(runner, inputs, args.cache / f"maps_{scenes_key}_{model_key}_{k}{s}.npz")
    print(f"model: {model} (maps cached in {args.cache})")
    print("variant".ljust(40) + "".join(f"{k}:{s}".rjust(22) for k, s in sets))
    print(" " * 40 + "".join("found / <2% / <5%".rjust(22) for _ in sets))
    for text in [""] + args.variant:
        params = dataclasses.replace(docquad.QuadParams(), **parse_variant(text))
        t0 = time.time()
        rows = [score(maps[s], params, diagnose=not text) for s in sets]
        print((text or "defaults").ljust(40)[:40] + "".join(
            f"{r['found']:.1f} / {r['under_2pct']:.1f} / {r['under_5pct']:.1f}".rjust(22) for r in rows)
            + f"   ({time.time() - t0:.0f} s)")
        if not text:
            print("  misses where the true quad would win (never a candidate): "
                  + ", ".join(f"{k}:{s} {r['true_quad_would_win']} of {r['misses']}" for (k, s), r in zip(sets, rows)))


if __name__ == "__main__":
    main()
