"""The export variants of issue #21 on a zoo classifier (tiny_cnn trained on digits)
and on HED: each converts, verifies with its own gate (read from the file), and
reloads as what it claims to be; the GPU-delegate report; one format table."""
import json

import numpy as np
import pytest

from edgepipe.cli.main import main
from edgepipe.cli.verify import _export_variant
from edgepipe.convert.formats import VARIANTS, export, format_of
from edgepipe.evaluate.gates import check_output, default_gate
from edgepipe.evaluate.runners import KerasRunner, open_runner

NEW = ["tflite_uint8", "onnx_float16", "onnx_int8", "coreml_linear8", "coreml_palette6", "coreml_palette4",
       "coreml_sparse50"]
# what verify reads back from each file, and the gate metric it then applies (classifier, dense output)
DETECTED = {"tflite_uint8": "int8", "onnx_float16": "float16", "onnx_int8": "int8", "coreml_linear8": "linear8",
            "coreml_palette6": "palette6", "coreml_palette4": "palette4", "coreml_sparse50": "sparse50"}


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """tiny_cnn at 32x32, trained on digits until its predictions are decisive (int8
    agreement means little on random weights); held-out images and calibration data."""
    from edgepipe import mobile_models
    from edgepipe.base.backend import keras
    from edgepipe.train.digits import digits_arrays
    d = tmp_path_factory.mktemp("variants_digits")
    keras.utils.set_random_seed(0)
    model = mobile_models.build("tiny_cnn", input_shape=(32, 32, 3), classes=10)
    x, y = digits_arrays(32, "train")
    for layer in model.layers:
        if hasattr(layer, "momentum"):
            layer.momentum = 0.9
    lr = keras.optimizers.schedules.CosineDecay(3e-3, 8 * -(-len(x) // 32), alpha=0.1)
    model.compile(keras.optimizers.Adam(lr), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, batch_size=32, epochs=8, verbose=0)
    xv, yv = digits_arrays(32, "val")
    assert model.evaluate(xv, yv, verbose=0)[1] > 0.85
    model.save(d / "digits.keras")
    np.save(d / "x.npy", xv)  # all 269: one flipped near-tie is 0.4 point of agreement
    np.save(d / "calib.npy", x[:64])
    return d


@pytest.fixture(scope="module")
def hed(tmp_path_factory, tiny_images):
    """A 32x32 HED with non-trivial BatchNorm statistics, and generated documents."""
    from edgepipe import mobile_models
    from edgepipe.mobile_models.hed import inference_model
    from tests.conftest import randomise_batchnorm
    d = tmp_path_factory.mktemp("variants_hed")
    model = randomise_batchnorm(inference_model(mobile_models.build("hed_mobilenet_v2", input_shape=(32, 32, 3),
                                                                    width=0.5)))  # k-means time ~ weights
    model.save(d / "hed.keras")
    from edgepipe.train.docgen import generate
    images = np.stack([generate(321, i, 32).image for i in range(8)]).astype(np.float32) / 255.0
    np.save(d / "x.npy", images)
    return d, model, images


def _verify(capsys, model, export_path, data):
    capsys.readouterr()
    code = main(["verify", "--model", str(model), "--export", str(export_path), "--data", str(data), "--json",
                 "--no-drill-down"])
    return code, json.loads(capsys.readouterr().out)


def _reloads_as(variant, path):
    """Open the file fresh and check it is what the variant says."""
    v = VARIANTS[variant]
    runner = open_runner(path)
    assert format_of(path) == v.format and runner.runtime == {"litert": "litert", "onnxruntime": "onnxruntime",
                                                              "coreml": "coreml"}[v.runner]
    if variant == "tflite_uint8":
        assert runner.inputs[0].dtype == "uint8" and runner.outputs[0].dtype == "uint8"
    if v.format == "onnx":
        assert runner.inputs[0].dtype == "tensor(float)"  # float I/O around the fp16 / int8 graph
    if v.format == "coreml":
        from edgepipe.evaluate.milref import ReferenceProgram
        ops = {o.op_type for o in ReferenceProgram(path).ops}
        want = {"linear8": "constexpr_affine_dequantize", "palette6": "constexpr_lut_to_dense",
                "palette4": "constexpr_lut_to_dense", "sparse50": "constexpr_sparse_to_dense"}[v.precision]
        assert want in ops
    return runner


def _coreml_compressed(model_path, out_dir, stem):
    """Core ML converts slowly (~10 s even for a tiny net): convert once, compress each way."""
    from edgepipe.base.modelio import load_keras
    from edgepipe.convert import coreml
    from edgepipe.convert.coreml_compress import compress
    from edgepipe.convert.fold import export_graph
    fp16 = coreml.to_mlmodel(export_graph(load_keras(model_path)), "fp16", target="iOS16")
    paths = {}
    for variant in NEW[3:]:
        paths[variant] = out_dir / f"{stem}{VARIANTS[variant].suffix}"
        compress(fp16, VARIANTS[variant].precision).save(str(paths[variant]))
    return paths


@pytest.fixture(scope="module")
def digits_coreml(digits):
    return _coreml_compressed(digits / "digits.keras", digits, "digits")


@pytest.mark.parametrize("variant", NEW)
def test_classifier_variant_converts_verifies_and_reloads(digits, digits_coreml, capsys, variant):
    v = VARIANTS[variant]
    out = digits / f"digits{v.suffix}"
    if v.format != "coreml":  # the CLI path; Core ML's CLI path: test_compressed_coreml_from_the_cli
        assert main(["convert", "--model", str(digits / "digits.keras"), "--variant", variant,
                     "--data", str(digits / "calib.npy"), "--calibration-samples", "64", "--out", str(out)]) == 0
    code, report = _verify(capsys, digits / "digits.keras", out, digits / "x.npy")
    row = report["outputs"][0]
    print(f"{variant}: top-1 agreement {row['top1_agreement']:.1%}, PSNR {row['psnr_db']:.1f} dB, {row['gate']}")
    metric = "psnr_db" if v.gate == "half" else "top1_agreement"  # fp16 is held to PSNR, the rest to top-1
    assert report["variant"] == DETECTED[variant] and row["gate"].startswith(metric)
    if variant == "coreml_sparse50":  # half the weights of a net trained dense: the gate judges it by its own
        # numbers (0.62-0.87 agreement across CPU kernels and thread counts; the bound is 0.95)
        assert code == (0 if row["top1_agreement"] >= 0.95 and row["psnr_db"] >= 12 else 1), row
        assert report["pass"] == (code == 0), row
    else:
        assert code == 0 and report["pass"], row
    if v.format == "tflite":
        assert report["gpu_delegate"]["compatible"], report["gpu_delegate"]
    _reloads_as(variant, out)


def test_hed_variants_convert_verify_and_reload(hed, capsys):
    """Every new variant of HED, each gated by verify on what it reads from the file:
    PSNR >= 40 dB (fp16), >= 30 dB (int8, 8-bit and 6-bit weights), >= 20 dB (lossy)."""
    import onnx
    from edgepipe.convert.fold import export_graph
    from edgepipe.convert.onnx import to_onnx_bytes
    from edgepipe.convert.onnx_variants import reduce_precision
    d, model, images = hed
    folded = export_graph(model)
    v = VARIANTS["tflite_uint8"]
    paths = {"tflite_uint8": export(v, folded, d / f"hed{v.suffix}", images)}
    proto = to_onnx_bytes(folded)  # tf2onnx once (export() runs it per variant), reduced two ways
    for variant in ("onnx_float16", "onnx_int8"):
        paths[variant] = d / f"hed{VARIANTS[variant].suffix}"
        onnx.save(reduce_precision(onnx.load_from_string(proto), VARIANTS[variant].precision, images),
                  str(paths[variant]))
    paths |= _coreml_compressed(d / "hed.keras", d, "hed")
    x = np.round(images * 255) / 255  # the 8-bit pixels a Core ML ImageType sees, for every format alike
    ref = KerasRunner(model).predict(x)["edges"]
    for variant, path in paths.items():
        if variant in ("onnx_int8", "coreml_palette4"):  # the CLI end to end (loading HED takes seconds)
            code, report = _verify(capsys, d / "hed.keras", path, d / "x.npy")
            precision, row, ok = report["variant"], report["outputs"][0], code == 0 and report["pass"]
        else:  # verify's own steps: the precision read from the file, its gate, the check
            runner = _reloads_as(variant, path)
            precision = _export_variant(runner, path)[0]
            row = check_output(ref, next(iter(runner.predict(x).values())), default_gate(precision, False))
            ok = row["pass"]
        print(f"HED {variant}: PSNR {row['psnr_db']:.1f} dB ({row['gate']})")
        assert precision == DETECTED[variant] and row["gate"].startswith("psnr_db")
        assert ok, (variant, row)


def test_compressed_coreml_from_the_cli(digits, capsys, tmp_path):
    """``convert --variant coreml_palette4`` writes a classifier bundle: ImageType input,
    labels, the card, 4-bit palettes, and verify gates it (lossy gate)."""
    import coremltools as ct
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(str(i) for i in range(10)))
    out = tmp_path / "cli.palette4.mlpackage"
    assert main(["convert", "--model", str(digits / "digits.keras"), "--variant", "coreml_palette4",
                 "--labels", str(labels), "--author", "me", "--out", str(out)]) == 0
    assert "%|" not in capsys.readouterr().err  # coremltools' compression-pass progress bars
    spec = ct.utils.load_spec(str(out))
    assert spec.description.input[0].type.WhichOneof("Type") == "imageType"
    assert json.loads(spec.description.metadata.userDefined["model_card"])["author"] == "me"
    card = json.loads((tmp_path / "cli.palette4.mlpackage.model_card.json").read_text())
    assert card["artifacts"][0]["variant"] == "palette4" and card["labels"] == labels.read_text().split()
    code, report = _verify(capsys, digits / "digits.keras", out, digits / "x.npy")
    assert report["variant"] == "palette4" and code == 0, report["outputs"]
    _reloads_as("coreml_palette4", out)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".edgepipe-tmp-")]


def test_gpu_report_names_ops_the_delegate_cannot_take(tmp_path, capsys):
    from edgepipe.base.backend import tf
    from edgepipe.evaluate.gpucompat import describe, gpu_report

    @tf.function(input_signature=[tf.TensorSpec([1, 8, 8, 3], tf.float32)])
    def f(x):
        flat = tf.reshape(x, [1, -1])
        return tf.nn.relu(tf.math.top_k(flat, 3).values) + tf.cast(tf.argmax(flat, axis=1), tf.float32)[:, None]
    path = tmp_path / "odd.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_concrete_functions([f.get_concrete_function()], f).convert())
    report = gpu_report(path)
    flagged = {u["op"] for u in report["unsupported"]}
    assert not report["compatible"] and {"ARG_MAX", "TOPK_V2"} <= flagged and "RELU" not in flagged
    assert "ARG_MAX x1" in describe(report) and "RESHAPE" not in describe(report)


def test_convert_picks_variants_from_the_table_and_refuses_what_it_lacks(digits, capsys):
    model = str(digits / "digits.keras")
    for argv, needle in (
            (["--format", "coreml", "--precision", "int8"], "coreml has no precision int8; valid: fp16, fp32, linear8"),
            (["--variant", "onnx_int8", "--format", "tflite"], "--variant onnx_int8 is onnx int8; --format tflite"),
            ([], "give --format (coreml, onnx, tflite) or --variant NAME")):
        capsys.readouterr()
        assert main(["convert", "--model", model, "--out", str(digits / "x.out"), *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("edgepipe: error:") and needle in err and "\n" not in err, err


def test_one_table_drives_runners_gates_and_docs():
    from edgepipe.evaluate.gates import LOSSY, default_gate, gate_family
    from edgepipe.pipeline.recipe import EXPORT_VARIANTS
    from edgepipe.pipeline.recipe_docs import reference
    assert set(EXPORT_VARIANTS) == set(VARIANTS)
    docs = reference()
    assert all(f"`{name}`" in docs and f"`{v.suffix}`" in docs for name, v in VARIANTS.items())
    assert all(format_of(f"m{v.suffix}") == v.format for v in VARIANTS.values())
    assert gate_family("palette5") == "lossy" and gate_family("palette8") == "quantized"
    with pytest.raises(ValueError):
        gate_family("int4")
    assert default_gate("palette4", True).threshold == LOSSY["agreement"] < default_gate("palette6", True).threshold
    assert default_gate("float16", False).metric == "psnr_db" and default_gate("fp32", False).metric == "max_abs"


def test_pareto_plot_keeps_untimed_exports_in_the_size_panel():
    from edgepipe.pipeline.plots import pareto_svg
    svg = pareto_svg([{"label": "tflite int8", "size_mb": 0.4, "p50_ms": 9.0, "accuracy": 0.9},
                      {"label": "coreml palette4", "size_mb": 0.2, "p50_ms": None, "accuracy": 0.88}], "acc")
    assert "coreml palette4" in svg and "tflite int8" in svg
