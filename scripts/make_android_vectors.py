"""Write cross-language test vectors for the Android core's Java tests.

Each vector is an 8-bit PGM edge map plus the Python quad finder's answer on
that exact map (probabilities = byte / 255). The Java tests must find the same
corners within 1 px and the same "not found" cases. tests/test_android_vectors.py
re-checks the Python side, so a change to either finder shows up in CI.

    python scripts/make_android_vectors.py [--model runs/default/hed_mobilenet_v2.tflite]
"""
import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
OUT = ROOT / "android_demo" / "core" / "src" / "test" / "resources" / "parity"

from edgepipe.mobile_models.docquad import find_quad  # noqa: E402

DRAWN = {
    "axis_aligned": [[40, 30], [210, 30], [210, 225], [40, 225]],
    "rotated": [[70, 20], [230, 70], [180, 240], [20, 190]],
    "perspective": [[90, 40], [170, 45], [230, 220], [30, 210]],
    "small": [[100, 100], [160, 105], [155, 170], [98, 160]],
    "corner_out_of_frame": [[-20, 30], [200, 10], [230, 230], [20, 240]],
    "large": [[5, 8], [250, 4], [252, 250], [3, 247]],
    "perspective_small": [[60, 70], [140, 60], [165, 170], [65, 180]],
}


def _draw(corners, thickness=2, size=256):
    m = np.zeros((size, size), np.float32)
    cv2.polylines(m, [np.round(np.asarray(corners, np.float32) * 16).astype(np.int32)], True, 1.0, thickness,
                  cv2.LINE_8, shift=4)
    return m


def drawn_cases():
    cases = {f"drawn_{k}": _draw(v) for k, v in DRAWN.items()}
    for k in ("rotated", "perspective", "axis_aligned"):
        m = cv2.GaussianBlur(_draw(DRAWN[k], thickness=5), (0, 0), 2.0)
        cases[f"thick_{k}"] = m / m.max()
    for k, cols in (("perspective", slice(100, 130)), ("rotated", slice(60, 90))):
        m = _draw(DRAWN[k])
        m[:, cols] = 0
        cases[f"broken_{k}"] = m
    for name, side in (("bottom", 2), ("left", 3)):  # the page runs off the photo on that side
        m = _draw(DRAWN["perspective"])
        c = np.asarray(DRAWN["perspective"], np.float32)
        a, b = c[side], c[(side + 1) % 4]
        cv2.line(m, tuple(int(v) for v in a), tuple(int(v) for v in b), 0.0, 5)
        cases[f"missing_side_{name}"] = m
    m = _draw(DRAWN["axis_aligned"])
    for y in range(60, 200, 12):
        cv2.line(m, (60, y), (180, y), 1.0, 1)
    cases["clutter_text_lines"] = m
    m = _draw(DRAWN["perspective_small"])
    for a, b in (((0, 30), (255, 30)), ((200, 0), (200, 255))):  # tile grout / a table edge past two sides
        cv2.line(m, a, b, 1.0, 2)
    cases["background_lines"] = m
    rng = np.random.default_rng(0)
    blank = np.zeros((256, 256), np.float32)
    one = blank.copy()
    cv2.line(one, (10, 100), (240, 120), 1.0, 2)
    two = one.copy()
    cv2.line(two, (10, 180), (240, 190), 1.0, 2)
    cases |= {"none_blank": blank, "none_noise": (rng.random((256, 256)) < 0.01).astype(np.float32),
              "none_one_line": one, "none_two_lines": two}
    return cases


def hed_cases(model_path, count=8):
    from edgepipe.evaluate.runners import open_runner
    from edgepipe.train.docgen import generate
    runner = open_runner(model_path)
    images = np.stack([generate(20_000, i).image for i in range(count)]).astype(np.float32) / 255.0
    probs = next(iter(runner.predict(images).values()))
    return {f"hed_doc_{i:02d}": probs[i, ..., 0] for i in range(count)}


def write_pgm(path, prob):
    data = np.clip(np.round(prob * 255), 0, 255).astype(np.uint8)
    path.write_bytes(f"P5\n{data.shape[1]} {data.shape[0]}\n255\n".encode() + data.tobytes())
    return data


def read_pgm(path):
    raw = path.read_bytes()
    parts = raw.split(b"\n", 3)
    w, h = map(int, parts[1].split())
    return np.frombuffer(parts[3], np.uint8).reshape(h, w)


def expected_row(name, data):
    r = find_quad(data.astype(np.float32) / np.float32(255))
    coords = ",".join(f"{v:.4f}" for v in r.corners.ravel()) if r.found else ""
    return f"{name},{int(r.found)},{coords}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", help="exported HED (.tflite/.onnx) for real edge maps")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    cases = drawn_cases() | (hed_cases(args.model) if args.model else {})
    rows = [expected_row(name, write_pgm(OUT / f"{name}.pgm", prob)) for name, prob in cases.items()]
    # real HED maps written earlier (with --model) stay; their answers are recomputed
    rows += [expected_row(p.stem, read_pgm(p)) for p in sorted(OUT.glob("hed_doc_*.pgm")) if p.stem not in cases]
    (OUT / "expected.csv").write_text("name,found,x0,y0,x1,y1,x2,y2,x3,y3\n" + "\n".join(rows) + "\n")
    print(f"wrote {len(rows)} vectors to {OUT}")


if __name__ == "__main__":
    main()
