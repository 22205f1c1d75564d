"""Careless and hostile inputs across every command (issue #17).

Every case runs the CLI in-process on files this module generates, and asserts:
the exit code; exactly one ``edgepipe: error:`` line and no traceback; the inputs'
hashes unchanged and the user's other files intact; no stray temp files.
Hostile model files (Lambda layers, foreign modules, archive bombs) are in
tests/test_hostile_models.py; export gates in tests/test_verify_gates.py.
"""
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from edgepipe.base import atomic
from edgepipe.cli.main import main

PROC_OUT = "/proc/edgepipe-test/out"  # a place no one can write


def _tree_hashes(root: Path) -> dict:
    return {str(p.relative_to(root)): (hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir")
            for p in sorted(root.rglob("*"))}


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    """A user's workspace: a tiny model, its exports, data files good and bad, and files of theirs."""
    from edgepipe.base.backend import keras
    from edgepipe.base.modelio import save_keras
    from edgepipe.convert import onnx, tflite
    root = tmp_path_factory.mktemp("ws")
    keras.utils.set_random_seed(0)
    x = keras.Input((16, 16, 3), name="image")
    h = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3, activation="relu")(x))
    model = keras.Model(x, keras.layers.Dense(3, name="logits")(h))
    save_keras(model, root / "m.keras")
    tflite.write(model, root / "m.tflite")
    onnx.write(model, root / "m.onnx")
    from edgepipe.convert import coreml
    coreml.write(model, root / "m.mlpackage")
    _truncated_mlpackage(root / "m.mlpackage", root / "truncated.mlpackage")
    other = keras.Model(y := keras.Input((8, 8, 3)), keras.layers.Dense(3)(keras.layers.Flatten()(y)))
    tflite.write(other, root / "other.tflite")
    save_keras(_tutorial_model(keras), root / "tutorial.keras")
    two = [keras.Input((16, 16, 3), name="img"), keras.Input((4,), name="vec")]
    pooled = keras.layers.GlobalAveragePooling2D()(two[0])
    save_keras(keras.Model(two, keras.layers.Dense(2)(keras.layers.Concatenate()([pooled, two[1]]))),
               root / "two_inputs.keras")
    free = keras.Input((None, None, 3))
    save_keras(keras.Model(free, keras.layers.Conv2D(1, 3, padding="same", activation="sigmoid")(free)),
               root / "free_size.keras")
    rng = np.random.default_rng(0)
    np.save(root / "good.npy", rng.random((4, 16, 16, 3), np.float32))
    np.save(root / "pixels_as_floats.npy", rng.random((4, 16, 16, 3), np.float32) * 255)  # not [0, 1]
    np.save(root / "empty.npy", np.zeros((0, 16, 16, 3), np.float32))
    np.save(root / "pickled.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    (root / "text.npy").write_text("1 2 3\n4 5 6\n")
    np.save(root / "nan.npy", np.full((2, 16, 16, 3), np.nan, np.float32))
    np.save(root / "wrong_shape.npy", np.zeros((2, 9, 9, 3), np.float32))
    np.save(root / "labels_float.npy", np.zeros(4, np.float32))
    np.save(root / "labels.npy", np.arange(4) % 3)
    (root / "zero_bytes.npy").write_bytes(b"")
    np.savez(root / "archive.npz", y=np.zeros(4, np.int64))
    (root / "archive.npz").rename(root / "npz_named_npy.npy")
    _huge_header_npy(root / "huge_header.npy")
    _lying_npy(root / "lying.npy")
    (root / "data.txt").write_text("not an array")
    (root / "garbage.keras").write_bytes(b"PK\x03\x04 not really a zip")
    (root / "garbage.h5").write_bytes(os.urandom(256))
    (root / "garbage.tflite").write_bytes(b"TFL3" + os.urandom(200))
    data = (root / "m.tflite").read_bytes()
    (root / "truncated.tflite").write_bytes(data[: len(data) // 2])
    data = (root / "m.onnx").read_bytes()
    (root / "truncated.onnx").write_bytes(data[: len(data) // 3])
    (root / "empty_savedmodel").mkdir()
    (root / "notes.txt").write_text("my notes")
    (root / "theirs.tflite.model_card.json").write_text("{}")  # where convert would put its card
    (root / "photo.png").write_bytes(_png(40, 30))
    (root / "pixel.png").write_bytes(_png(1, 1))
    (root / "one_class" / "cats").mkdir(parents=True)
    for i in range(4):
        (root / "one_class" / "cats" / f"{i}.png").write_bytes(_png(16, 16))
    (root / "one_class.yaml").write_text(yaml.safe_dump({
        "name": "one", "model": {"name": "tiny_cnn", "input_size": 32},
        "data": {"kind": "image_folder", "path": str(root / "one_class")}, "profile": "q",
        "profiles": {"q": {"phases": [{"size": 32, "steps": 2, "pool": 1}], "batch_size": 2}}}))
    (root / "not_a_photo.png").write_text("hello")
    (root / "userdir").mkdir()
    (root / "userdir" / "keep.txt").write_text("mine")
    (root / "userdir.mlpackage").mkdir()  # a folder of theirs that merely has the suffix
    (root / "userdir.mlpackage" / "keep.txt").write_text("mine too")
    (root / "x.keras").mkdir()
    (root / "x.keras" / "keep.txt").write_text("a folder named like a model")
    os.symlink(root / "m.keras", root / "link_to_m.keras")
    os.symlink("loop.tflite", root / "loop.tflite")  # a link to itself
    (root / "model_card.json").write_text("{")  # another tool's file where bench looks for MACs
    (root / "labels.txt").write_text("a\nb\nc\n")
    (root / "run_file").write_text("a file where a folder is expected")
    (root / "bad.yaml").write_text("model: [unclosed\n")
    (root / "unknown_key.yaml").write_text(yaml.safe_dump({"name": "x", "modle": {"name": "tiny_cnn"}}))
    (root / "report_dir").mkdir()
    (root / "deep_report").mkdir()
    (root / "deep_report" / "report.json").write_text("[" * 200_000 + "]" * 200_000)  # past Python's stack
    (root / "deep.yaml").write_text("name: " + "[" * 5000 + "]" * 5000 + "\n")
    (root / "twice.yaml").write_text((root / "one_class.yaml").read_text() + "name: again\n")  # name: given twice
    (root / "deep_sweep.yaml").write_text("base: one_class.yaml\ngrid:\n  train.learning_rate: "
                                          + "[" * 3000 + "]" * 3000 + "\n")
    (root / "badjson").mkdir()
    (root / "badjson" / "report.json").write_text("{not json")
    (root / "wrongjson").mkdir()
    (root / "wrongjson" / "report.json").write_text(json.dumps({"artifacts": 3}))
    return root


def _tutorial_model(keras):
    """The Keras tutorial's shape: raw pixels in, its own Rescaling(1/255)."""
    x = keras.Input((16, 16, 3))
    h = keras.layers.Conv2D(4, 3, activation="relu")(keras.layers.Rescaling(1 / 255)(x))
    return keras.Model(x, keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(h)))


def _truncated_mlpackage(src: Path, dst: Path):
    import shutil
    shutil.copytree(src, dst)
    for weights in dst.rglob("weight.bin"):
        weights.write_bytes(weights.read_bytes()[:64])


def _png(w: int, h: int) -> bytes:
    import cv2
    ok, buf = cv2.imencode(".png", np.full((h, w, 3), 200, np.uint8))
    return buf.tobytes()


def _huge_header_npy(path: Path):
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), " + " " * 200_000 + "}\n"
    path.write_bytes(b"\x93NUMPY\x02\x00" + len(header).to_bytes(4, "little") + header.encode() + b"\0" * 4)


def _lying_npy(path: Path):
    """A header that claims 10^12 floats over 16 bytes of data."""
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': (1000000, 1000, 1000, 1), }"
    header += " " * (63 - len(header) % 64) + "\n"
    path.write_bytes(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode() + b"\0" * 16)


def run_cli(argv, ws, capsys):
    before = _tree_hashes(ws)
    code = main([str(a).replace("WS", str(ws)) for a in argv])
    err = capsys.readouterr().err
    after = _tree_hashes(ws)
    return code, err, before, after


def assert_clean_error(code, err, before, after, expect_code=2):
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == expect_code, err
    assert "Traceback" not in err, err
    assert len(lines) == 1 and lines[0].startswith("edgepipe: error: "), err
    assert after == before, "the workspace changed"  # inputs, user files, and no temps left behind
    assert not [k for k in after if atomic.TEMP_PREFIX in k]


# argv with WS for the workspace; each must end in one error line, exit 2, nothing written
USAGE = {
    "no_command": [],
    "unknown_command": ["frobnicate"],
    "profile_unknown_name": ["profile", "nope"],
    "profile_file_with_build_options": ["profile", "WS/m.keras", "--alpha", "0.5"],
    "profile_garbage_file": ["profile", "WS/garbage.keras"],
    "profile_size_zero": ["profile", "tiny_cnn", "--size", "0"],
    "profile_size_text": ["profile", "tiny_cnn", "--size", "big"],
    "profile_alpha_negative": ["profile", "mobilenet_v2", "--alpha", "-1"],
    "profile_classes_zero": ["profile", "tiny_cnn", "--classes", "0"],
    "profile_size_huge": ["profile", "tiny_cnn", "--size", "999999999"],
    "bench_runs_zero": ["bench", "WS/m.tflite", "--runs", "0"],
    "bench_warmup_negative": ["bench", "WS/m.tflite", "--warmup", "-1"],
    "bench_batch_zero": ["bench", "WS/m.tflite", "--batch", "0"],
    "bench_runs_nan": ["bench", "WS/m.tflite", "--runs", "nan"],
    "bench_budget_negative": ["bench", "WS/m.tflite", "--budget-s", "-5"],
    "bench_budget_inf": ["bench", "WS/m.tflite", "--budget-s", "inf"],
    "bench_baseline_negative": ["bench", "WS/m.tflite", "--baseline", "-1"],
    "bench_baseline_out_of_range": ["bench", "WS/m.tflite", "--baseline", "5", "--runs", "1", "--warmup", "0"],
    "bench_threads_zero": ["bench", "WS/m.tflite", "--threads", "0"],
    "bench_threads_text": ["bench", "WS/m.tflite", "--threads", "a,b"],
    "bench_gpu_delegate_on_the_host": ["bench", "WS/m.tflite", "--delegate", "gpu"],  # timed the CPU, exit 0
    "bench_serial_on_the_host": ["bench", "WS/m.tflite", "--serial", "emulator-5554"],
    "bench_device_unknown": ["bench", "WS/m.tflite", "--device", "toaster"],
    "quantize_samples_zero": ["quantize", "--model", "WS/m.keras", "--mode", "int8", "--out", "WS/q.tflite",
                              "--calibration-samples", "0"],
    "quantize_max_float_negative": ["quantize", "--model", "WS/m.keras", "--mode", "int8", "--out", "WS/q.tflite",
                                    "--max-float-layers", "-1"],
    "quantize_agreement_over_one": ["quantize", "--model", "WS/m.keras", "--mode", "int8", "--out", "WS/q.tflite",
                                    "--agreement", "1.5"],
    "quantize_mode_unknown": ["quantize", "--model", "WS/m.keras", "--mode", "int4", "--out", "WS/q.tflite"],
    "quantize_psnr_zero": ["quantize", "--model", "WS/m.keras", "--mode", "int8", "--out", "WS/q.tflite",
                           "--psnr", "0"],
    "convert_format_unknown": ["convert", "--model", "WS/m.keras", "--format", "caffe", "--out", "WS/o"],
    "convert_mode_unknown": ["convert", "--model", "WS/m.keras", "--format", "tflite", "--mode", "int3",
                             "--out", "WS/o.tflite"],
    "convert_missing_out": ["convert", "--model", "WS/m.keras", "--format", "tflite"],
    "convert_samples_zero": ["convert", "--model", "WS/m.keras", "--format", "tflite", "--mode", "int8",
                             "--calibration-samples", "0", "--out", "WS/o.tflite"],
    "prune_steps_zero": ["prune", "--model", "WS/m.keras", "--sparsity", "0.5", "--steps", "0", "--out", "WS/p.keras"],
    "prune_sparsity_over_one": ["prune", "--model", "WS/m.keras", "--sparsity", "1.5", "--out", "WS/p.keras"],
    "prune_batch_zero": ["prune", "--model", "WS/m.keras", "--sparsity", "0.5", "--batch-size", "0",
                         "--out", "WS/p.keras"],
    "prune_lr_zero": ["prune", "--model", "WS/m.keras", "--sparsity", "0.5", "--learning-rate", "0",
                      "--out", "WS/p.keras"],
    "prune_latency_runs_zero": ["prune", "--model", "WS/m.keras", "--sparsity", "0.5", "--latency-runs", "0",
                                "--out", "WS/p.keras"],
    "verify_atol_negative": ["verify", "--model", "WS/m.keras", "--export", "WS/m.tflite", "--atol", "-1"],
    "verify_psnr_inf": ["verify", "--model", "WS/m.keras", "--export", "WS/m.tflite", "--psnr", "inf"],
    "verify_missing_export": ["verify", "--model", "WS/m.keras"],
    "convert_input_shape_without_a_name": ["convert", "--model", "WS/m.keras", "--format", "tflite", "--input-shape",
                                           ":1x16x16x3", "--out", "WS/o.tflite"],
    "convert_input_shape_huge": ["convert", "--model", "WS/m.keras", "--format", "tflite", "--input-shape",
                                 "1x100000x100000x3", "--out", "WS/o.tflite"],
}


@pytest.mark.parametrize("argv", USAGE.values(), ids=USAGE.keys())
def test_usage_errors_are_one_line(argv, ws, capsys):
    assert_clean_error(*run_cli(argv, ws, capsys))


# argv that get past parsing and must be refused by edgepipe itself
REFUSED = {
    "convert_missing_model": ["convert", "--model", "WS/missing.keras", "--format", "tflite", "--out", "WS/o.tflite"],
    "convert_text_as_keras": ["convert", "--model", "WS/garbage.keras", "--format", "tflite", "--out", "WS/o.tflite"],
    "convert_garbage_h5": ["convert", "--model", "WS/garbage.h5", "--format", "tflite", "--out", "WS/o.tflite"],
    "convert_empty_savedmodel": ["convert", "--model", "WS/empty_savedmodel", "--format", "onnx",
                                 "--out", "WS/o.onnx"],
    "convert_out_is_input": ["convert", "--model", "WS/m.keras", "--format", "tflite", "--out", "WS/m.keras"],
    "convert_out_links_to_input": ["convert", "--model", "WS/m.keras", "--format", "tflite",
                                   "--out", "WS/link_to_m.keras"],
    "convert_coreml_over_user_folder": ["convert", "--model", "WS/m.keras", "--format", "coreml",
                                        "--out", "WS/userdir"],
    "convert_coreml_over_user_mlpackage_named_folder": ["convert", "--model", "WS/m.keras", "--format", "coreml",
                                                        "--out", "WS/userdir.mlpackage"],
    "convert_tflite_over_user_folder": ["convert", "--model", "WS/m.keras", "--format", "tflite",
                                        "--out", "WS/userdir"],
    "convert_out_under_proc": ["convert", "--model", "WS/m.keras", "--format", "tflite", "--out", PROC_OUT],
    "convert_out_missing_folder": ["convert", "--model", "WS/m.keras", "--format", "tflite",
                                   "--out", "WS/nowhere/o.tflite"],
    "convert_out_is_a_link_loop": ["convert", "--model", "WS/m.keras", "--format", "tflite",
                                   "--out", "WS/loop.tflite"],
    "convert_out_is_the_labels": ["convert", "--model", "WS/m.keras", "--format", "tflite", "--labels",
                                  "WS/labels.txt", "--out", "WS/labels.txt"],
    "convert_model_name_with_newline": ["convert", "--model", "WS/evil\nname.keras", "--format", "tflite",
                                        "--out", "WS/o.tflite"],
    "quantize_out_is_the_data": ["quantize", "--model", "WS/m.keras", "--mode", "int8", "--data", "WS/good.npy",
                                 "--out", "WS/good.npy"],
    "scan_output_unknown_image_type": ["scan", "WS/photo.png", "--model", "WS/m.tflite", "-o", "WS/page.xyz"],
    "convert_labels_missing": ["convert", "--model", "WS/m.keras", "--format", "tflite", "--out", "WS/o.tflite",
                               "--labels", "WS/missing.txt"],
    "quantize_out_is_input": ["quantize", "--model", "WS/m.keras", "--mode", "dynamic", "--out", "WS/m.keras"],
    "quantize_data_empty": ["quantize", "--model", "WS/m.keras", "--mode", "int8", "--out", "WS/q.tflite",
                            "--data", "WS/empty.npy"],
    "quantize_data_pickled": ["quantize", "--model", "WS/m.keras", "--mode", "int8", "--out", "WS/q.tflite",
                              "--data", "WS/pickled.npy"],
    "quantize_data_text": ["quantize", "--model", "WS/m.keras", "--mode", "int8", "--out", "WS/q.tflite",
                           "--data", "WS/text.npy"],
    "quantize_data_huge_header": ["quantize", "--model", "WS/m.keras", "--mode", "int8", "--out", "WS/q.tflite",
                                  "--data", "WS/huge_header.npy"],
    "quantize_data_lying_header": ["quantize", "--model", "WS/m.keras", "--mode", "int8", "--out", "WS/q.tflite",
                                   "--data", "WS/lying.npy"],
    "quantize_data_nan": ["quantize", "--model", "WS/m.keras", "--mode", "int8", "--out", "WS/q.tflite",
                          "--data", "WS/nan.npy"],
    "quantize_data_wrong_shape": ["quantize", "--model", "WS/m.keras", "--mode", "int8", "--out", "WS/q.tflite",
                                  "--data", "WS/wrong_shape.npy"],
    "quantize_data_not_npy": ["quantize", "--model", "WS/m.keras", "--mode", "int8", "--out", "WS/q.tflite",
                              "--data", "WS/data.txt"],
    "quantize_out_user_folder": ["quantize", "--model", "WS/m.keras", "--mode", "dynamic", "--out", "WS/userdir"],
    "prune_out_is_folder": ["prune", "--model", "WS/m.keras", "--sparsity", "0.5", "--out", "WS/x.keras"],
    "prune_out_is_input": ["prune", "--model", "WS/m.keras", "--sparsity", "0.5", "--out", "WS/m.keras"],
    "prune_out_not_keras": ["prune", "--model", "WS/m.keras", "--sparsity", "0.5", "--out", "WS/p.h5"],
    "verify_export_missing": ["verify", "--model", "WS/m.keras", "--export", "WS/missing.tflite"],
    "verify_export_of_another_model": ["verify", "--model", "WS/m.keras", "--export", "WS/other.tflite",
                                       "--data", "WS/good.npy"],
    "verify_export_garbage": ["verify", "--model", "WS/m.keras", "--export", "WS/garbage.tflite",
                              "--data", "WS/good.npy"],
    "verify_export_truncated_tflite": ["verify", "--model", "WS/m.keras", "--export", "WS/truncated.tflite",
                                       "--data", "WS/good.npy"],
    "verify_export_truncated_onnx": ["verify", "--model", "WS/m.keras", "--export", "WS/truncated.onnx",
                                     "--data", "WS/good.npy"],
    "verify_export_unknown_suffix": ["verify", "--model", "WS/m.keras", "--export", "WS/notes.txt",
                                     "--data", "WS/good.npy"],
    "verify_export_truncated_mlpackage": ["verify", "--model", "WS/m.keras", "--export", "WS/truncated.mlpackage",
                                          "--data", "WS/good.npy"],
    "bench_export_truncated_mlpackage": ["bench", "WS/truncated.mlpackage", "--runs", "1", "--warmup", "0"],
    "verify_data_empty": ["verify", "--model", "WS/m.keras", "--export", "WS/m.tflite", "--data", "WS/empty.npy"],
    "verify_data_pickled": ["verify", "--model", "WS/m.keras", "--export", "WS/m.tflite",
                            "--data", "WS/pickled.npy"],
    "verify_truth_float": ["verify", "--model", "WS/m.keras", "--export", "WS/m.tflite", "--data", "WS/good.npy",
                           "--truth", "WS/labels_float.npy"],
    # without --data the ids were scored against inputs verify generated: a made-up top-1, exit 0
    "verify_truth_without_data": ["verify", "--model", "WS/m.keras", "--export", "WS/m.tflite",
                                  "--truth", "WS/labels.npy"],
    "verify_truth_pickled": ["verify", "--model", "WS/m.keras", "--export", "WS/m.tflite", "--data", "WS/good.npy",
                             "--truth", "WS/pickled.npy"],
    # --truth read as --data is: a zero-byte file, an .npz renamed, a header declaring 745 GiB
    **{f"verify_truth_{name}": ["verify", "--model", "WS/m.keras", "--export", "WS/m.tflite", "--data", "WS/good.npy",
                                "--truth", f"WS/{name}.npy"] for name in ("zero_bytes", "npz_named_npy", "huge_header")},
    "bench_missing_file": ["bench", "WS/missing.tflite"],
    "bench_garbage_tflite": ["bench", "WS/garbage.tflite", "--runs", "1", "--warmup", "0"],
    "bench_unknown_suffix": ["bench", "WS/notes.txt", "--runs", "1", "--warmup", "0"],
    "scan_missing_photo": ["scan", "WS/missing.png", "--model", "WS/m.tflite"],
    "scan_not_an_image": ["scan", "WS/not_a_photo.png", "--model", "WS/m.tflite"],
    "scan_photo_is_folder": ["scan", "WS/userdir", "--model", "WS/m.tflite"],
    "scan_photo_empty_path": ["scan", "", "--model", "WS/m.tflite"],
    "scan_output_empty_path": ["scan", "WS/photo.png", "--model", "WS/m.tflite", "-o", ""],
    "scan_output_is_photo": ["scan", "WS/photo.png", "--model", "WS/m.tflite", "-o", "WS/photo.png"],
    "scan_output_is_folder": ["scan", "WS/photo.png", "--model", "WS/m.tflite", "-o", "WS/userdir"],
    "scan_output_under_proc": ["scan", "WS/photo.png", "--model", "WS/m.tflite", "-o", PROC_OUT + ".png"],
    "scan_model_garbage": ["scan", "WS/photo.png", "--model", "WS/garbage.tflite"],
    "scan_model_not_an_edge_model": ["scan", "WS/photo.png", "--model", "WS/m.tflite"],
    "report_no_report": ["report", "WS/report_dir"],
    "report_not_json": ["report", "WS/badjson"],
    "report_wrong_shape": ["report", "WS/wrongjson"],
    "run_recipe_missing": ["run", "--recipe", "WS/missing.yaml", "--out", "WS/run"],
    "run_recipe_malformed": ["run", "--recipe", "WS/bad.yaml", "--out", "WS/run"],
    "run_recipe_unknown_key": ["run", "--recipe", "WS/unknown_key.yaml", "--out", "WS/run"],
    "run_out_is_a_file": ["run", "--out", "WS/run_file"],
    "run_out_under_proc": ["run", "--out", PROC_OUT],
    "train_recipe_malformed": ["train", "--recipe", "WS/bad.yaml", "--out", "WS/run"],
    "train_out_is_a_file": ["train", "--out", "WS/run_file"],
    # the user's things: a folder of theirs is not a run folder, a file of theirs is not an output
    "run_out_user_folder": ["run", "--out", "WS/userdir"],
    "train_out_user_folder": ["train", "--out", "WS/userdir"],
    "convert_over_a_user_file": ["convert", "--model", "WS/m.keras", "--format", "tflite", "--out", "WS/notes.txt"],
    "convert_card_over_a_user_file": ["convert", "--model", "WS/m.keras", "--format", "tflite",
                                      "--out", "WS/theirs.tflite"],
    "quantize_over_a_user_file": ["quantize", "--model", "WS/m.keras", "--mode", "dynamic", "--out", "WS/notes.txt"],
    # what the model really takes
    "quantize_data_pixels_as_floats": ["quantize", "--model", "WS/m.keras", "--mode", "int8", "--out",
                                       "WS/q.tflite", "--data", "WS/pixels_as_floats.npy"],
    "convert_range_contradicts_rescaling": ["convert", "--model", "WS/tutorial.keras", "--format", "tflite",
                                            "--mode", "int8", "--input-range", "-1,1", "--out", "WS/o.tflite"],
    "quantize_two_inputs": ["quantize", "--model", "WS/two_inputs.keras", "--mode", "dynamic",
                            "--out", "WS/q.tflite"],
    "scan_free_size_model": ["scan", "WS/photo.png", "--model", "WS/free_size.keras"],
    "scan_one_pixel_photo": ["scan", "WS/pixel.png", "--model", "WS/free_size.keras"],
    "bench_free_size_model": ["bench", "WS/free_size.keras", "--runs", "1", "--warmup", "0"],
    "bench_two_inputs": ["bench", "WS/two_inputs.keras", "--runs", "1", "--warmup", "0"],
    "train_one_class_folder": ["train", "--recipe", "WS/one_class.yaml", "--out", "WS/run"],
    # a name past the file system's 255 bytes: pathlib's exists() raises instead of answering
    "convert_model_name_too_long": ["convert", "--model", "WS/" + "a" * 300 + ".keras", "--out", "WS/o.tflite"],
    "bench_name_too_long": ["bench", "WS/" + "a" * 300 + ".tflite"],
    "run_recipe_name_too_long": ["run", "--recipe", "WS/" + "a" * 300 + ".yaml", "--out", "WS/run"],
    "convert_card_name_too_long": ["convert", "--model", "WS/m.keras", "--variant", "tflite_float32",
                                   "--out", "WS/" + "b" * 240 + ".tflite"],  # the card's name is 256 bytes
    "report_nested_past_the_stack": ["report", "WS/deep_report"],
    "run_recipe_nested_past_the_stack": ["run", "--recipe", "WS/deep.yaml", "--out", "WS/run"],
    "run_recipe_with_a_key_twice": ["run", "--recipe", "WS/twice.yaml", "--out", "WS/run"],
    "sweep_nested_past_the_stack": ["sweep", "WS/deep_sweep.yaml", "--out", "WS/sweep"],
}


@pytest.mark.parametrize("argv", REFUSED.values(), ids=REFUSED.keys())
def test_refused_with_one_line_and_nothing_touched(argv, ws, capsys):
    assert_clean_error(*run_cli(argv, ws, capsys))


def test_quantize_points_free_sizes_to_the_command_that_fixes_them(ws, capsys):
    """It said "fix them with --input-shape", which quantize does not take."""
    argv = ["quantize", "--model", "WS/free_size.keras", "--mode", "int8", "--data", "WS/good.npy", "--out", "WS/q.tflite"]
    code, err, before, after = run_cli(argv, ws, capsys)
    assert_clean_error(code, err, before, after)
    assert "`edgepipe convert --mode int8 --input-shape`" in err, err


def test_profile_takes_a_model_file(ws, capsys):
    assert main(["profile", str(ws / "m.keras"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["params"] == 4 * 3 * 3 * 3 + 4 + 4 * 3 + 3  # conv + dense of the workspace's model


def test_a_manifest_edgepipe_did_not_write_is_treated_as_none(tmp_path):
    from edgepipe.pipeline.manifest import Manifest
    for foreign in ('{"name": "my web app"}', "[]", '{"stages": {"train": {"key": "k"}}}'):
        (tmp_path / "manifest.json").write_text(foreign)
        assert Manifest(tmp_path).finished("train", "k") is None


def test_records_nested_past_pythons_stack_are_damaged_not_a_traceback(tmp_path):
    """A manifest or a written-files record of '[' * 200000 raised RecursionError (exit 1)."""
    from edgepipe.pipeline.manifest import Manifest
    deep = "[" * 200_000 + "]" * 200_000
    (tmp_path / "manifest.json").write_text(deep)
    assert Manifest(tmp_path).finished("train", "k") is None
    (tmp_path / atomic.WRITTEN).write_text(deep)
    (tmp_path / "m.tflite").write_text("theirs")
    assert not atomic.made_by_edgepipe(tmp_path / "m.tflite")  # a damaged record proves nothing is ours


def test_a_manifest_from_before_outputs_were_kept_by_run_folder_still_counts(tmp_path):
    """Manifests recorded outputs as typed (``runs/base0/m.keras``); read from inside the run
    folder now, such a record found nothing and every stage of every old run ran again."""
    from edgepipe.pipeline.manifest import Manifest
    run = tmp_path / "run"
    run.mkdir()
    (run / "m.keras").write_bytes(b"the trained model")
    digest = hashlib.sha256(b"the trained model").hexdigest()
    record = {"key": "k", "outputs": {"runs/base0/m.keras": digest}, "result": {}, "seconds": 1, "finished": "x"}
    (run / "manifest.json").write_text(json.dumps({"stages": {"train": record}}))
    assert Manifest(run).finished("train", "k")
    (run / "m.keras").write_bytes(b"another model")
    assert Manifest(run).finished("train", "k") is None


def test_stale_temp_cleanup_removes_only_edgepipe_temps(tmp_path):
    theirs = [".tmp123-notes", "draft.tmp", ".old.tmp", "model.tmp.keras", ".tmpdir"]
    for name in theirs:
        (tmp_path / name).write_text("mine")
    ours = tmp_path / f"{atomic.TEMP_PREFIX}42-model.tflite"
    ours.write_text("half-written")
    assert atomic.remove_stale_temps(tmp_path) == [ours.name]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(theirs)


def _package(folder: Path, manifest: str):
    (folder / "Data" / "com.apple.CoreML").mkdir(parents=True)
    (folder / "Manifest.json").write_text(manifest)


def test_an_mlpackage_edgepipe_wrote_may_be_replaced_but_not_a_lookalike(tmp_path):
    real = tmp_path / "a.mlpackage"
    for manifest in ('{"old": 1}', '{"new": 1}'):
        with atomic.staged_path(real, folder_artifact=True) as tmp:
            _package(tmp, manifest)
    assert (real / "Manifest.json").read_text() == '{"new": 1}'
    (real / "Manifest.new").write_text('{"new": 1}')  # coremltools rewrites it on every open (verify)
    os.replace(real / "Manifest.new", real / "Manifest.json")
    with atomic.staged_path(real, folder_artifact=True) as tmp:  # ... and the package stays edgepipe's
        _package(tmp, '{"new": 1}')
    theirs = tmp_path / "theirs.mlpackage"  # a real-looking package that someone else wrote
    _package(theirs, '{"mine": 1}')
    with pytest.raises(Exception, match="edgepipe did not write it"):
        with atomic.staged_path(theirs, folder_artifact=True):
            pass
    assert (theirs / "Manifest.json").read_text() == '{"mine": 1}'
    (real / "Data" / "notes.txt").write_text("mine, inside edgepipe's package")
    with pytest.raises(Exception, match="holds files edgepipe did not write"):
        with atomic.staged_path(real, folder_artifact=True):
            pass
    assert (real / "Data" / "notes.txt").read_text() == "mine, inside edgepipe's package"
    fake = tmp_path / "b.mlpackage"
    fake.mkdir()
    (fake / "thesis.tex").write_text("mine")
    with pytest.raises(Exception, match="folder edgepipe did not make"):
        with atomic.staged_path(fake, folder_artifact=True):
            pass
    assert (fake / "thesis.tex").read_text() == "mine"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(atomic.TEMP_PREFIX)]


@pytest.mark.parametrize("sig, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_ctrl_c_or_sigterm_early_in_a_command_is_one_line_and_128_plus_the_signal(tmp_path, sig, status):
    """SIGTERM is what CI runners and `docker stop` send: an interrupt too, temp files cleaned."""
    proc = subprocess.Popen([sys.executable, "-m", "edgepipe.cli.main", "run", "--out", str(tmp_path / "run")],
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    time.sleep(1.5)  # inside the TensorFlow import or the first stage
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == status, err
    assert "Traceback" not in err and err.strip().splitlines()[-1] == "edgepipe: interrupted", err


def test_edgepipe_replaces_its_own_output_but_not_a_file_saved_over_it(tmp_path, ws, capsys):
    argv = ["convert", "--model", str(ws / "m.keras"), "--format", "tflite", "--out", str(tmp_path / "o.tflite")]
    assert main(argv) == 0 and main(argv) == 0  # its own file, recorded in .edgepipe-written.json
    os.utime(tmp_path / "o.tflite")  # touched, or copied without -p: the same bytes, still edgepipe's
    assert main(argv) == 0
    (tmp_path / "o.tflite").write_bytes(b"the user's own bytes")
    assert main(argv) == 2 and "edgepipe did not write it" in capsys.readouterr().err
    assert (tmp_path / "o.tflite").read_bytes() == b"the user's own bytes"
    # a card the user edited by hand still says "generator": "edgepipe ...", yet is theirs now
    argv[-1] = str(tmp_path / "p.tflite")
    assert main(argv) == 0
    card = tmp_path / "p.tflite.model_card.json"
    card.write_text(card.read_text().replace('"name"', '"my_notes": "by hand", "name"', 1))
    assert main(argv) == 2 and "did not write it" in capsys.readouterr().err
    assert "my_notes" in card.read_text()
    # ... and so is the same card copied to the app's folder and edited there (no record of it there)
    app = tmp_path / "app"
    app.mkdir()
    (app / "o.tflite.model_card.json").write_text((tmp_path / "o.tflite.model_card.json").read_text().replace(
        '"name"', '"my_notes": "by hand", "name"', 1))
    argv[-1] = str(app / "o.tflite")
    assert main(argv) == 2 and "did not write it" in capsys.readouterr().err
    assert "my_notes" in (app / "o.tflite.model_card.json").read_text()


def test_a_link_named_like_edgepipes_record_is_left_alone(tmp_path, ws, capsys):
    """A link named .edgepipe-written.json (to the user's notes) was replaced by a file, and a
    record read through a link would let a file of theirs pass for edgepipe's."""
    notes = tmp_path / "notes.json"
    notes.write_text('{"mine": true}')
    out = tmp_path / "out"
    out.mkdir()
    (out / atomic.WRITTEN).symlink_to(notes)
    argv = ["convert", "--model", str(ws / "m.keras"), "--format", "tflite", "--out", str(out / "o.tflite")]
    assert main(argv) == 0
    assert (out / atomic.WRITTEN).is_symlink() and notes.read_text() == '{"mine": true}'
    # nothing in the folder is provably edgepipe's now: its own file is not replaced either
    assert main(argv) == 2 and "edgepipe did not write it" in capsys.readouterr().err
    assert (out / atomic.WRITTEN).is_symlink() and notes.read_text() == '{"mine": true}'



def test_a_file_named_like_edgepipes_record_that_is_not_its_json_is_left_alone(tmp_path, ws, capsys):
    """A user's text file of that name was silently replaced by edgepipe's record."""
    out = tmp_path / "out"
    out.mkdir()
    (out / atomic.WRITTEN).write_text("my to-do list\n")
    argv = ["convert", "--model", str(ws / "m.keras"), "--format", "tflite", "--out", str(out / "o.tflite")]
    assert main(argv) == 0 and (out / atomic.WRITTEN).read_text() == "my to-do list\n"
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "edgepipe did not write it" in err and f"{atomic.WRITTEN}, is not a file edgepipe wrote" in err, err
    assert (out / atomic.WRITTEN).read_text() == "my to-do list\n"

def test_uint8_data_is_pixels(tmp_path, ws):
    """A uint8 .npy holds 0..255 pixels: calibrated as such, the int8 input scale is 1/255, not 1."""
    from ai_edge_litert.interpreter import Interpreter
    pixels = np.random.default_rng(1).integers(0, 256, (8, 16, 16, 3), dtype=np.uint8)
    np.save(tmp_path / "pixels.npy", pixels)
    out = tmp_path / "q.tflite"
    assert main(["quantize", "--model", str(ws / "m.keras"), "--mode", "int8", "--data", str(tmp_path / "pixels.npy"),
                 "--out", str(out)]) == 0
    scale, _ = Interpreter(model_path=str(out)).get_input_details()[0]["quantization"]
    assert abs(scale - 1 / 255) < 1e-4, scale


def test_a_run_folder_is_edgepipes_but_a_file_put_there_is_not(tmp_path):
    run = atomic.ensure_writable_dir(tmp_path / "run")
    atomic.write_text(run / "report.json", "{}")
    (run / "notes.txt").write_text("mine")
    atomic.check_target(run / "report.json")  # its own: may be replaced
    with pytest.raises(Exception, match="edgepipe did not write it"):
        atomic.check_target(run / "notes.txt")
    # a run folder from before the marker: what its manifest recorded (same hash) is edgepipe's
    old = tmp_path / "old"
    old.mkdir()
    (old / "m.keras").write_bytes(b"an earlier run's model")
    digest = hashlib.sha256(b"an earlier run's model").hexdigest()
    (old / "manifest.json").write_text(json.dumps({"stages": {"train": {"outputs": {"elsewhere/m.keras": digest}}}}))
    (old / "report.html").write_text('<!doctype html><html lang="en"><head><meta charset="utf-8">'
                                     '<title>edgepipe report: old</title>')
    atomic.ensure_writable_dir(old)
    atomic.check_target(old / "m.keras")
    atomic.check_target(old / "manifest.json")
    atomic.check_target(old / "report.html")
    (old / "later.txt").write_text("mine")
    with pytest.raises(Exception, match="edgepipe did not write it"):
        atomic.check_target(old / "later.txt")


def test_a_folder_with_a_manifest_and_files_of_yours_is_not_an_earlier_run(tmp_path):
    """A release folder where the user keeps a model with the manifest that proves it, beside
    their own notes or their own report.html, was claimed: their report was overwritten."""
    from edgepipe.base.errors import EdgePipeError
    for extra in ({"notes.md": "my notes"}, {"report.html": "<html>my own release report</html>"},
                  {"report.json": '{"mine": 1}'}):
        folder = tmp_path / f"release{len(list(tmp_path.iterdir()))}"
        folder.mkdir()
        (folder / "shipped.tflite").write_bytes(b"the model")
        digest = hashlib.sha256(b"the model").hexdigest()
        (folder / "manifest.json").write_text(json.dumps({"stages": {"export": {"outputs": {"x/shipped.tflite": digest}}}}))
        for name, text in extra.items():
            (folder / name).write_text(text)
        with pytest.raises(EdgePipeError, match="holds files edgepipe did not make"):
            atomic.ensure_writable_dir(folder)
        assert not (folder / atomic.OWNED).exists() and not (folder / atomic.WRITTEN).exists()


def test_a_manifest_that_proves_nothing_does_not_claim_your_folder(tmp_path):
    # before: any manifest.json with a "stages" key made every file in the folder edgepipe's to overwrite
    from edgepipe.base.errors import EdgePipeError
    (tmp_path / "manifest.json").write_text('{"stages": {"train": {"outputs": {"tiny_cnn.keras": "0" }}}}')
    (tmp_path / "tiny_cnn.keras").write_text("my model")
    with pytest.raises(EdgePipeError, match="holds files edgepipe did not make"):
        atomic.ensure_writable_dir(tmp_path)
    assert not (tmp_path / atomic.OWNED).exists() and not (tmp_path / atomic.WRITTEN).exists()


def test_a_file_replaced_but_not_yet_recorded_is_still_edgepipes(tmp_path, monkeypatch):
    """A kill between replacing state.json and recording its new hash in .edgepipe-written.json
    must not make the resumed run refuse its own checkpoint: both versions are noted before the
    rename."""
    from edgepipe.base import atomic
    from edgepipe.base.errors import EdgePipeError
    from edgepipe.train.loop import TrainState
    TrainState("k").save(tmp_path / "state.json")
    with monkeypatch.context() as m:  # the kill, scripted: the record after the rename never happens
        m.setattr(atomic, "_record_written", lambda *paths, **digests: None)
        TrainState("k", epochs_done=3).save(tmp_path / "state.json")
    assert json.loads((tmp_path / "state.json").read_text())["epochs_done"] == 3
    assert atomic.check_target(tmp_path / "state.json") == tmp_path / "state.json"
    (tmp_path / "notes.json").write_text('{"mine": true, "generator": "edgepipe 0.2.0"}')
    with pytest.raises(EdgePipeError, match="did not write it"):
        atomic.check_target(tmp_path / "notes.json")


def test_edgepipes_writing_into_one_folder_at_once_keep_every_record(tmp_path):
    """The record is read, changed and written back: two writers at once dropped each other's
    entries, and edgepipe then refused to replace its own files as the user's."""
    import threading
    from edgepipe.base import atomic

    def write(worker):
        for i in range(15):
            atomic.write_text(tmp_path / f"w{worker}-{i}.json", "{}")
    threads = [threading.Thread(target=write, args=(w,)) for w in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    recorded = json.loads((tmp_path / atomic.WRITTEN).read_text())
    assert sorted(recorded) == sorted(f"w{w}-{i}.json" for w in range(6) for i in range(15))
    assert all(atomic.made_by_edgepipe(tmp_path / name) for name in recorded)


def test_a_fifo_or_device_is_no_model(tmp_path):
    # before: verify/bench opened a FIFO named m.tflite and waited forever for a writer
    from edgepipe.base.errors import EdgePipeError
    from edgepipe.base.modelio import load_keras
    from edgepipe.evaluate.runners import open_runner
    os.mkfifo(tmp_path / "m.tflite")
    os.mkfifo(tmp_path / "m.keras")
    for opener, path in ((open_runner, tmp_path / "m.tflite"), (load_keras, tmp_path / "m.keras"),
                         (open_runner, Path("/dev/zero"))):
        with pytest.raises(EdgePipeError, match="not a regular file or a folder"):
            opener(path)
    from edgepipe.base.photos import read_rgb  # scan said "photo not found" for a FIFO that is there
    for path in (tmp_path / "m.keras", Path("/dev/zero")):
        with pytest.raises(EdgePipeError, match="not a regular file"):
            read_rgb(path)


def test_two_runs_cannot_write_one_folder_at_once(tmp_path):
    # before: both ran, and each could record the other's model under its own stage key
    from edgepipe.base.errors import EdgePipeError
    run = atomic.ensure_writable_dir(tmp_path / "run")
    with atomic.exclusive(run):
        with pytest.raises(EdgePipeError, match="another edgepipe is writing to"):
            with atomic.exclusive(run):
                pass
    with atomic.exclusive(run):  # released
        pass


def test_train_refuses_a_folder_another_edgepipe_is_writing(tmp_path, capsys):
    # before: `edgepipe train` took no lock, so two trainings into one --out mixed their checkpoints
    import yaml

    from edgepipe.cli.main import main
    from tests.conftest import TINY
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump(TINY))
    run = atomic.ensure_writable_dir(tmp_path / "run")
    with atomic.exclusive(run):
        assert main(["train", "--recipe", str(recipe), "--out", str(run)]) == 2
    assert "another edgepipe is writing to" in capsys.readouterr().err
    assert not (run / "checkpoints").exists()


def test_a_traced_functions_error_says_its_cause_not_in_user_code():
    """TensorFlow opens a traced function's error with "in user code:"; the one line said only that."""
    from edgepipe.base.errors import first_line
    raised = ValueError("in user code:\n\n    File \"model.py\", line 3, in call\n\n    ValueError: shapes (1, 3) "
                        "and (4, 2) are incompatible\n")
    assert first_line(raised) == "ValueError: shapes (1, 3) and (4, 2) are incompatible"
    assert first_line(ValueError("")) == "ValueError" and first_line(OSError("  a\nb")) == "a"


def test_a_long_library_message_is_cut_between_words():
    """Keras 3's deserialisation errors run past 200 characters; the cut fell mid-word."""
    from edgepipe.base.errors import first_line
    words = "Could not deserialize class 'Functional' because its parent module keras.src.models.functional " * 4
    cut = first_line(TypeError(words), limit=120)
    assert cut.endswith(" ...") and len(cut) <= 124 and words.startswith(cut[:-4])
    assert words[len(cut) - 4] == " "  # the next character of the message: the cut fell between two words


def test_reading_a_core_ml_package_leaves_it_as_it_was(tmp_path, ws, capsys):
    """coremltools rewrites Manifest.json whenever it opens a package: verify, bench and scan,
    which only read, rewrote the user's (bench and scan even when they then refused it)."""
    import shutil
    theirs = tmp_path / "theirs.mlpackage"
    shutil.copytree(ws / "m.mlpackage", theirs)
    manifest = theirs / "Manifest.json"
    manifest.write_text(json.dumps(json.loads(manifest.read_text()), separators=(",", ":")))  # as Xcode may keep it
    os.utime(manifest, ns=(1_000_000_000, 1_000_000_000))
    before = manifest.read_bytes()
    photo = tmp_path / "photo.png"
    import cv2
    cv2.imwrite(str(photo), np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8))
    main(["verify", "--model", str(ws / "m.keras"), "--export", str(theirs), "--data", str(ws / "good.npy")])
    main(["bench", str(theirs), "--runs", "1"])
    main(["scan", str(photo), "--model", str(theirs)])
    capsys.readouterr()
    assert manifest.read_bytes() == before and manifest.stat().st_mtime_ns == 1_000_000_000


def test_no_output_inside_an_input_folder(tmp_path, ws, capsys):
    """The input is never the output, nor holds it: an --out inside the SavedModel being
    converted, or inside prune's image folder, wrote exports and cards into the user's folders."""
    from edgepipe.base.backend import tf
    saved = tmp_path / "saved"
    module = tf.Module()
    module.fn = tf.function(lambda x: {"y": x * 2.0}, input_signature=[tf.TensorSpec((1, 4), tf.float32)])
    tf.saved_model.save(module, str(saved), signatures={"serving_default": module.fn})
    images = tmp_path / "images" / "a"
    images.mkdir(parents=True)
    before = {p: p.stat().st_mtime_ns for p in (saved, *saved.rglob("*"), images)}
    for argv in (["convert", "--model", str(saved), "--out", str(saved / "m.tflite")],
                 ["convert", "--model", str(saved), "--format", "onnx", "--out", str(saved / "variables" / "m.onnx")],
                 ["prune", "--model", str(ws / "m.keras"), "--sparsity", "0.5", "--data-folder", str(images.parent),
                  "--out", str(images / "p.keras")]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("edgepipe: error: the output") and "is inside the input folder" in err, err
    assert {p: p.stat().st_mtime_ns for p in (saved, *saved.rglob("*"), images)} == before
    assert not list(images.iterdir())


def test_a_signal_during_an_atomic_write_waits_for_the_file_and_its_record(tmp_path):
    """Ctrl-C between the temp file and its rename left the temp file (4 of 24 tries), and
    between a file and its card a new file beside the old card: the write now finishes first."""
    from unittest import mock

    from edgepipe.base import interrupts
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # xdist's workers may ignore it
    try:
        _signal_mid_write(tmp_path, mock, interrupts)
    finally:
        signal.signal(signal.SIGINT, previous)


def _signal_mid_write(tmp_path, mock, interrupts):
    target = tmp_path / "m.tflite"
    real_replace, seen = os.replace, []

    def replace_after_a_signal(src, dst):
        if not seen:
            seen.append(dst)
            os.kill(os.getpid(), signal.SIGINT)  # arrives mid-write, held until the write is whole
        return real_replace(src, dst)
    with mock.patch.object(os, "replace", replace_after_a_signal), pytest.raises(KeyboardInterrupt):
        atomic.write_bytes(target, b"new")
    assert target.read_bytes() == b"new" and atomic.made_by_edgepipe(target)
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(atomic.TEMP_PREFIX)]
    with pytest.raises(KeyboardInterrupt), interrupts.deferred():
        with interrupts.deferred():  # nested: held by the outer block too
            os.kill(os.getpid(), signal.SIGINT)
        seen.append("after the inner block")
    assert seen[-1] == "after the inner block"


def test_a_checkpoint_state_listing_files_elsewhere_is_refused_before_tensorflow_deletes_them(tmp_path):
    """TensorFlow's CheckpointManager deletes the older checkpoints its state file lists,
    wherever they are: a copied or crafted run folder could name a user's files."""
    from edgepipe.base.backend import tf
    from edgepipe.base.errors import EdgePipeError
    from edgepipe.train.loop import checkpoint_manager
    victim = tmp_path / "photos" / "holiday"
    victim.parent.mkdir()
    for suffix in (".index", ".data-00000-of-00001"):
        victim.with_name(victim.name + suffix).write_bytes(b"mine")
    folder = tmp_path / "run" / "checkpoints" / "last"
    folder.mkdir(parents=True)
    checkpoint = tf.train.Checkpoint(v=tf.Variable(1.0))
    checkpoint_manager(checkpoint, folder).save()  # a real one is accepted, and resumed
    checkpoint_manager(checkpoint, folder).save()
    (folder / "checkpoint").write_text(f'model_checkpoint_path: "{victim}"\n'  # TF deleted these on the next save
                                       f'all_model_checkpoint_paths: "{victim}"\n'
                                       'all_model_checkpoint_timestamps: 1.0\nlast_preserved_timestamp: 0.5\n')
    with pytest.raises(EdgePipeError, match="outside"):
        checkpoint_manager(checkpoint, folder)
    assert sorted(p.name for p in victim.parent.iterdir()) == ["holiday.data-00000-of-00001", "holiday.index"]
    link = tmp_path / "run" / "checkpoints" / "linked"
    link.symlink_to(victim.parent, target_is_directory=True)
    with pytest.raises(EdgePipeError, match="is a link"):
        checkpoint_manager(checkpoint, link)


def test_a_best_checkpoint_folder_that_is_a_link_is_refused_before_anything_moves(tmp_path):
    """``checkpoints/best`` linked to a folder of the user's: saving the best weights moved the
    user's files out of it into the checkpoint, and the second save failed."""
    from edgepipe.base.backend import tf
    from edgepipe.base.errors import EdgePipeError
    from edgepipe.train.loop import restore_best, save_best
    model = tf.keras.Sequential([tf.keras.Input((2,)), tf.keras.layers.Dense(1)])
    ckpt = tmp_path / "run" / "checkpoints"
    save_best(model, ckpt)  # its own folder: saved, saved again, restored
    save_best(model, ckpt)
    assert restore_best(model, ckpt)
    theirs = tmp_path / "photos"
    theirs.mkdir()
    (theirs / "holiday.jpg").write_bytes(b"mine")
    for name in ("best", ".best.tmp", ".best.old"):
        for p in (ckpt / "best", ckpt / ".best.tmp", ckpt / ".best.old"):
            shutil.rmtree(p, ignore_errors=True) if not p.is_symlink() else p.unlink()
        (ckpt / name).symlink_to(theirs, target_is_directory=True)
        with pytest.raises(EdgePipeError, match="is a link"):
            save_best(model, ckpt)
        assert [p.name for p in theirs.iterdir()] == ["holiday.jpg"], name
        (ckpt / name).unlink()
    (ckpt / "best").symlink_to(theirs, target_is_directory=True)
    with pytest.raises(EdgePipeError, match="is a link"):
        restore_best(model, ckpt)


def test_an_output_in_the_input_folder_spelt_in_another_case_is_refused(tmp_path, monkeypatch):
    """On a case-insensitive disk (macOS, Windows) ``Photos/run`` is inside ``photos``.
    Linux disks are case-sensitive, so the disk is emulated: paths that differ only in
    case are one file to ``os.path.samefile``, as they are there."""
    from edgepipe.pipeline.tasks import check_out_outside_data

    def samefile_ignoring_case(a, b):
        return str(Path(a).resolve()).lower() == str(Path(b).resolve()).lower()

    data = tmp_path / "photos"
    data.mkdir()
    (tmp_path / "Photos").mkdir()  # what the emulated disk shows under the other spelling
    monkeypatch.setattr(os.path, "samefile", samefile_ignoring_case)
    assert atomic.inside(tmp_path / "Photos" / "run", data)
    assert not atomic.inside(tmp_path / "elsewhere" / "run", data)
    recipe = type("R", (), {"data": type("D", (), {"path": str(data)})()})()
    with pytest.raises(atomic.EdgePipeError, match="inside the data folder"):
        check_out_outside_data(recipe, tmp_path / "Photos" / "run")
    check_out_outside_data(recipe, tmp_path / "elsewhere" / "run")
    with pytest.raises(atomic.EdgePipeError, match="inside the input folder"):
        atomic.check_target(tmp_path / "Photos" / "model.tflite", inputs=[data])


def test_a_second_signal_while_an_interrupted_command_unwinds_is_let_go(monkeypatch):
    """A double Ctrl-C during training: the second one, raised inside TensorFlow's teardown
    (a variable's __del__), printed "Exception ignored in ... KeyboardInterrupt" and a traceback
    after "edgepipe: interrupted". The first still interrupts; the second is let go."""
    from edgepipe.base import interrupts
    monkeypatch.setitem(interrupts._state, "interrupted", False)
    monkeypatch.setitem(interrupts._state, "signal", signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        interrupts.on_early_signal(signal.SIGTERM, None)
    interrupts.on_early_signal(signal.SIGINT, None)  # returns: the command is already on its way out
    assert interrupts.exit_status() == 143  # the first signal's status
    interrupts._state.pop("exit")  # exit_as_interrupted would leave this test process with it
