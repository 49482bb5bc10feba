"""Model families as plugins: the registry and the manifest agree, the model names everyone shows are theirs,
and a family that lives only in the tests (tests/families/brightspot) runs with nothing else changed.

Brightspot is added the way docs/families.md says a family is added: its folder, one registry entry (a copy of
the registry with it) and its manifest entry (a copy of the manifest with it), both handed to the factory.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Mapping
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import LIGHTNING, ROOT, assert_one_line_error, model_args, run_cli
from families.brightspot.estimator import BrightspotEstimator
from families.brightspot.family import BRIGHTSPOT
from families.brightspot.model import SIDE, manifest_entry, write_model

from edgepose.config import ModelConfig, SourceConfig
from edgepose.errors import ModelError
from edgepose.health import PipelineStats
from edgepose.inference.factory import model_files, open_model
from edgepose.inference.family import Family
from edgepose.inference.registry import FAMILIES
from edgepose.inference.runtime.backend import Backend
from edgepose.manifest import ModelSpec, load_manifest, model_choices, model_names, sha256_of
from edgepose.pipeline.loop import Service, ServiceOptions
from edgepose.pose import PoseResult
from edgepose.sources import open_source

RUNTIME = "ai_edge_litert"


def disagreements(families: Mapping[str, Family], specs: list[ModelSpec]) -> list[str]:
    """Say where a registry and a manifest disagree (nothing: they agree)."""
    problems = [
        f"{s.name} {s.variant}: family {s.family!r} is not in the registry" for s in specs if s.family not in families
    ]
    problems += [f"family {name!r} has no manifest entry" for name in families if name not in {s.family for s in specs}]
    problems += [
        f"family {name!r} runs on the CPU only and says nothing to --delegate edgetpu"
        for name, family in families.items()
        if not family.edgetpu and not family.edgetpu_refusal
    ]
    for model in model_names(specs):
        entries = [s for s in specs if s.name == model]
        kinds = {s.family for s in entries}
        if len(kinds) != 1:
            problems.append(f"{model}: entries of the families {sorted(kinds)}")
            continue
        family = families.get(kinds.pop())
        if family is None:
            continue
        wanted = {variant for stage in family.stages for variant in (stage.cpu, stage.edgetpu) if variant}
        variants = {s.variant for s in entries}
        if variants != wanted:
            problems.append(f"{model}: variants {sorted(variants)}, its family opens {sorted(wanted)}")
    return problems


def test_the_registry_and_the_manifest_agree() -> None:
    assert disagreements(FAMILIES, load_manifest()) == []
    assert set(FAMILIES) == {"movenet", "posenet", "blazepose"}


def test_a_registry_and_a_manifest_that_disagree_are_caught() -> None:
    specs = load_manifest()
    without_blazepose = {name: family for name, family in FAMILIES.items() if name != "blazepose"}
    assert "blazepose detector: family 'blazepose' is not in the registry" in disagreements(without_blazepose, specs)
    as_posenet = [dataclasses.replace(s, family="posenet") if s.name == "blazepose" else s for s in specs]
    assert "blazepose: variants ['detector', 'landmark'], its family opens ['cpu', 'edgetpu']" in disagreements(
        FAMILIES, as_posenet
    )
    assert "family 'blazepose' has no manifest entry" in disagreements(FAMILIES, as_posenet)


def test_each_family_declares_its_stages_its_edgetpu_and_its_options() -> None:
    movenet, posenet, blazepose = FAMILIES["movenet"], FAMILIES["posenet"], FAMILIES["blazepose"]
    assert (movenet.edgetpu, posenet.edgetpu, blazepose.edgetpu) == (True, True, False)
    assert [stage.cpu for stage in blazepose.stages] == ["detector", "landmark"]
    assert blazepose.recognises is None  # a bare file cannot be two stages
    assert (movenet.options, posenet.options, blazepose.options) == (("crop_alpha", "tta"), ("max_people",), ())


@pytest.mark.slow
def test_model_names_in_help_validation_and_doctor_are_the_manifests(
    models_dir: Path, testdata: Path, tmp_path: Path
) -> None:
    """On main these were four lists: validation left out blazepose, doctor posenet."""
    names = model_names(load_manifest())
    assert names == ["lightning", "thunder", "posenet", "blazepose"]
    assert f"{model_choices()} (default {ModelConfig.name})" in " ".join(run_cli("infer", "--help").stdout.split())
    empty = run_cli("infer", "--model", "", *model_args(models_dir), str(testdata / "squat.bmp"))
    assert_one_line_error(empty, 2, "model must name a model")
    doctor = run_cli("doctor", "--model", "nosuchmodel", *model_args(tmp_path))
    (fix,) = [line for line in doctor.stdout.splitlines() if line.startswith("FAIL model:")]
    for name in names:
        assert name in empty.stderr, empty.stderr
        assert name in fix.split("fix:", 1)[1], fix


# -- a family that lives only in the tests ------------------------------------------------------------------


@pytest.fixture
def brightspot(tmp_path: Path) -> tuple[dict[str, Family], list[ModelSpec], Path]:
    """The registry and the manifest with brightspot added, and a models folder holding its file."""
    folder = tmp_path / "models"
    model = write_model(folder)
    manifest = tmp_path / "manifest.toml"
    manifest.write_text((ROOT / "models" / "manifest.toml").read_text() + manifest_entry(model))
    return {**FAMILIES, "brightspot": BRIGHTSPOT}, load_manifest(manifest), folder


def _scene(cell: tuple[int, int], size: tuple[int, int] = (640, 480)) -> np.ndarray:
    """A dark frame with one bright cell (row, column) of brightspot's grid."""
    width, height = size
    image = np.full((height, width, 3), 20, dtype=np.uint8)
    row, col = cell
    image[row * height // SIDE : (row + 1) * height // SIDE, col * width // SIDE : (col + 1) * width // SIDE] = 255
    return image


def test_the_test_family_agrees_with_its_manifest_entry(brightspot: tuple[dict[str, Family], list[ModelSpec], Path]):
    families, specs, folder = brightspot
    assert disagreements(families, specs) == []
    assert model_names(specs)[-1] == "brightspot" and "brightspot" in model_choices(ModelConfig.name, specs)
    (files,) = model_files("brightspot", folder, families, specs)
    assert files.cpu_path == folder / "brightspot.tflite" and files.edgetpu_path is None


def test_the_test_family_opens_by_name_and_runs(brightspot: tuple[dict[str, Family], list[ModelSpec], Path]) -> None:
    families, specs, folder = brightspot
    cfg = ModelConfig(name="brightspot", models_dir=str(folder), runtime=RUNTIME, min_score=0.5)
    family, estimator = open_model(cfg, families=families, specs=specs)
    try:
        assert family is BRIGHTSPOT and isinstance(estimator, BrightspotEstimator)
        assert estimator.info.model == "brightspot.tflite" and estimator.info.delegate == "xnnpack"  # auto, no twin
        (pose,) = estimator.still(_scene((2, 5))).poses
        assert pose.keypoints[0].tolist() == pytest.approx([5.5 * 640 / SIDE, 2.5 * 480 / SIDE, 1.0], abs=1e-3)
        (tracked,) = estimator.track(_scene((6, 1))).poses
        assert tracked.keypoints[0, :2].tolist() == pytest.approx([1.5 * 640 / SIDE, 6.5 * 480 / SIDE])
        assert estimator.still(np.zeros((480, 640, 3), dtype=np.uint8)).poses == ()  # min_score, its option
    finally:
        estimator.close()


def test_the_pipeline_runs_the_test_family(brightspot: tuple[dict[str, Family], list[ModelSpec], Path],
                                           tmp_path: Path) -> None:  # fmt: skip
    families, specs, folder = brightspot
    image = tmp_path / "scene.png"
    cv2.imwrite(str(image), _scene((3, 3)))
    estimator = open_model(ModelConfig(name="brightspot", models_dir=str(folder), runtime=RUNTIME),
                           families=families, specs=specs)[1]  # fmt: skip
    results: list[PoseResult] = []

    class Collect:
        def start(self) -> None:
            pass

        def publish(self, result: PoseResult) -> None:
            results.append(result)

        def close(self) -> None:
            pass

    stats = PipelineStats()
    stats.inference = estimator.backend
    try:
        Service(open_source(str(image), SourceConfig()), estimator, [Collect()], ServiceOptions(), stats).run(
            threading.Event()
        )
    finally:
        estimator.close()
    (result,) = results
    assert result.people(0.5) == 1 and result.keypoints[0, :2].tolist() == pytest.approx([280.0, 210.0])
    assert stats.backend_info(estimator.info).model == "brightspot.tflite"


def test_a_bare_file_of_the_test_family_is_recognised_only_with_its_registry_entry(
    brightspot: tuple[dict[str, Family], list[ModelSpec], Path],
) -> None:
    families, specs, folder = brightspot
    cfg = ModelConfig(name=str(folder / "brightspot.tflite"), runtime=RUNTIME)
    family, estimator = open_model(cfg, families=families, specs=specs)
    estimator.close()
    assert family is BRIGHTSPOT
    with pytest.raises(ModelError, match=r"a MoveNet single-pose model outputs \(1, 1, 17, 3\)"):
        open_model(cfg)  # the registry without brightspot: checked as the default model's family


def test_the_test_familys_checksum_and_edgetpu_refusal_need_nothing_else(
    brightspot: tuple[dict[str, Family], list[ModelSpec], Path],
) -> None:
    families, specs, folder = brightspot
    cfg = ModelConfig(name="brightspot", models_dir=str(folder), runtime=RUNTIME)
    with pytest.raises(ModelError, match="cannot run on the Coral EdgeTPU"):
        open_model(dataclasses.replace(cfg, delegate="edgetpu"), families=families, specs=specs)
    model = folder / "brightspot.tflite"
    data = model.read_bytes()
    model.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))  # one flipped byte: same size, other checksum
    with pytest.raises(ModelError, match=r"is damaged.*edgepose models fetch brightspot"):
        open_model(cfg, families=families, specs=specs)
    model.unlink()
    with pytest.raises(ModelError, match=r"model file not found.*edgepose models fetch brightspot"):
        open_model(cfg, families=families, specs=specs)
    with pytest.raises(ModelError, match="family 'brightspot', which is not one of movenet, posenet, blazepose"):
        open_model(cfg, specs=specs)  # its manifest entry without its registry entry


def test_a_stage_that_fails_closes_the_stages_already_open(
    blazepose_models: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """BlazePose's landmark entry pointed at Lightning: the detector, opened first, is closed again."""
    lightning = blazepose_models / LIGHTNING
    specs = [
        dataclasses.replace(s, file=LIGHTNING, sha256=sha256_of(lightning), bytes=lightning.stat().st_size)
        if s.variant == "landmark"
        else s
        for s in load_manifest()
    ]
    opened: list[Backend] = []
    closed: list[Backend] = []
    init, close = Backend.__init__, Backend.close

    def spy_init(self: Backend, *args: object) -> None:
        init(self, *args)  # type: ignore[arg-type]
        opened.append(self)

    def spy_close(self: Backend) -> None:
        closed.append(self)
        close(self)

    monkeypatch.setattr(Backend, "__init__", spy_init)
    monkeypatch.setattr(Backend, "close", spy_close)
    cfg = ModelConfig(name="blazepose", models_dir=str(blazepose_models), runtime=RUNTIME, delegate="xnnpack")
    with pytest.raises(ModelError, match="BlazePose's landmark model"):
        open_model(cfg, specs=specs)
    assert [b.info.model for b in opened] == ["pose_detection.tflite", LIGHTNING]
    assert set(map(id, closed)) == set(map(id, opened))  # on main the detector was left open
