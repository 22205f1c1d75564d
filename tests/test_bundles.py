"""App bundles: TFLite metadata read back by Google's reader, Core ML classifiers
with labels, and `edgepipe convert` writing a model card that fits the schema."""
import json
from pathlib import Path

import numpy as np
import pytest

from edgepipe import mobile_models
from edgepipe.base.backend import keras
from edgepipe.convert import tflite
from edgepipe.convert.tflite_metadata import associated_files, attach
from edgepipe.evaluate.runners import open_runner
from edgepipe.pipeline.cards import classifier_meta, generic_meta
from edgepipe.cli.main import main

LABELS = [f"digit {i}" for i in range(10)]


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    from edgepipe.base.modelio import save_keras
    model = mobile_models.build("tiny_cnn", input_shape=(32, 32, 3), classes=10)
    path = save_keras(model, tmp_path_factory.mktemp("cls") / "digits.keras")
    return model, path


def _metadata_json(reader, path):
    shown = reader.MetadataDisplayer.with_model_file(str(path))
    return json.loads(shown.get_metadata_json()), shown


def test_hed_tflite_metadata_reads_back_with_googles_reader(tiny_hed, tiny_images, tmp_path,
                                                           tflite_support_metadata):
    meta = generic_meta(tiny_hed, "hed", {"author": "A. Dev", "license": "MIT", "version": "2.1"})
    plain = tflite.write(tiny_hed, tmp_path / "plain.tflite")
    tagged = tflite.write(tiny_hed, tmp_path / "tagged.tflite", meta=meta)
    md, shown = _metadata_json(tflite_support_metadata, tagged)
    assert (md["name"], md["author"], md["license"], md["version"]) == ("hed", "A. Dev", "MIT", "2.1")
    image = md["subgraph_metadata"][0]["input_tensor_metadata"][0]
    assert image["content"]["content_properties"] == {"color_space": "RGB",
                                                      "default_size": {"width": 64, "height": 64}}
    norm = image["process_units"][0]["options"]
    assert (norm["mean"], norm["std"]) == ([0.0], [255.0])  # (pixel - 0) / 255 = the [0, 1] it was trained on
    edges = md["subgraph_metadata"][0]["output_tensor_metadata"][0]
    assert edges["name"] == "edges" and edges["stats"] == {"max": [1.0], "min": [0.0]}
    assert shown.get_packed_associated_file_list() == ["model_card.json"]
    assert json.loads(associated_files(tagged)["model_card.json"]) == meta
    # metadata changes nothing the interpreter computes
    a, b = open_runner(plain).predict(tiny_images), open_runner(tagged).predict(tiny_images)
    assert np.array_equal(next(iter(a.values())), next(iter(b.values())))


def test_classifier_tflite_packs_labels_and_reattaching_replaces(classifier, tmp_path, tflite_support_metadata):
    model, _ = classifier
    meta = classifier_meta(model, LABELS, "digits")
    path = tflite.write(model, tmp_path / "digits.tflite", meta=meta)
    md, shown = _metadata_json(tflite_support_metadata, path)
    out = md["subgraph_metadata"][0]["output_tensor_metadata"][0]
    assert out["associated_files"][0] == {"name": "labels.txt", "type": "TENSOR_AXIS_LABELS",
                                          "description": "class names, one per line, in output order"}
    assert shown.get_associated_file_buffer("labels.txt").decode().splitlines() == LABELS
    # a second attach (new version) replaces the metadata instead of stacking archives
    again = tmp_path / "again.tflite"
    again.write_bytes(attach(path.read_bytes(), meta | {"version": "9"}))
    assert _metadata_json(tflite_support_metadata, again)[0]["version"] == "9"
    assert sorted(associated_files(again)) == ["labels.txt", "model_card.json"]
    assert abs(again.stat().st_size - path.stat().st_size) < 64


def test_labels_must_match_the_classes(classifier):
    from edgepipe.base.errors import EdgePipeError
    with pytest.raises(EdgePipeError, match="3 labels given, the model has 10 classes"):
        classifier_meta(classifier[0], ["a", "b", "c"], "digits")


@pytest.mark.parametrize("labels", [["only"], ["cats", "dogs"]])
def test_labels_on_a_one_unit_binary_head_are_refused(labels):
    """The transfer-learning tutorial's Dense(1): one label made a Core ML classifier that always
    answered it; two were refused as a count mismatch that did not say why."""
    from edgepipe.base.errors import EdgePipeError
    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, keras.layers.Dense(1)(keras.layers.GlobalAveragePooling2D()(inputs)))
    with pytest.raises(EdgePipeError, match="one output unit: a binary score"):
        classifier_meta(model, labels, "cats_vs_dogs")


def test_coreml_classifier_gets_labels_and_image_input(classifier, tmp_path):
    import coremltools as ct
    from edgepipe.convert import coreml
    model, _ = classifier
    path = coreml.write(model, tmp_path / "digits.mlpackage", "fp16", classifier_meta(model, LABELS, "digits"))
    spec = ct.utils.load_spec(str(path))
    assert spec.description.predictedFeatureName == "classLabel"
    assert spec.description.predictedProbabilitiesName == model.output_names[0]
    types = {o.name: o.type.WhichOneof("Type") for o in spec.description.output}
    assert types == {"classLabel": "stringType", model.output_names[0]: "dictionaryType"}
    assert all(label in str(spec.mlProgram) for label in LABELS)  # the classify op's class list
    image = spec.description.input[0].type.imageType
    assert image.colorSpace == ct.proto.FeatureTypes_pb2.ImageFeatureType.RGB and image.width == 32
    card = json.loads(spec.description.metadata.userDefined["model_card"])
    assert card["labels"] == LABELS


def test_convert_cli_writes_a_classifier_bundle_and_card(classifier, tmp_path, tflite_support_metadata):
    import jsonschema
    _, keras_path = classifier
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(LABELS) + "\n")
    out = tmp_path / "digits.int8.tflite"
    rc = main(["convert", "--model", str(keras_path), "--format", "tflite", "--mode", "int8",
               "--labels", str(labels), "--author", "QA", "--out", str(out)])
    assert rc == 0
    card = json.loads((tmp_path / "digits.int8.tflite.model_card.json").read_text())
    schema = json.loads((Path(__file__).parent.parent / "schemas" / "model_card.schema.json").read_text())
    jsonschema.validate(card, schema)
    assert card["labels"] == LABELS and card["author"] == "QA"
    quant = card["artifacts"][0]["quantization"]["input"]
    assert quant["dtype"] == "int8" and quant["scale"] > 0
    md, _ = _metadata_json(tflite_support_metadata, out)
    assert md["author"] == "QA"


def test_convert_cli_rejects_a_bad_labels_file(classifier, tmp_path, capsys):
    _, keras_path = classifier
    (tmp_path / "few.txt").write_text("cat\ndog\n")
    out = tmp_path / "x.tflite"
    (tmp_path / "twice.txt").write_text("cat\ndog\ncat\n")
    for labels, message in ((tmp_path / "missing.txt", "does not exist"), (tmp_path / "few.txt", "2 labels given"),
                            (tmp_path / "twice.txt", "names cat more than once")):
        rc = main(["convert", "--model", str(keras_path), "--format", "tflite", "--labels", str(labels),
                   "--out", str(out)])
        assert rc == 2 and message in capsys.readouterr().err
        assert not out.exists()
