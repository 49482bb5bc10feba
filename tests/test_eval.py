"""edgepose eval: COCO files built from the shared photos, AP from pycocotools against hand computation, the CLI."""

from __future__ import annotations

import io
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import assert_one_line_error, model_args, run_cli
from evalset import View, write_eval_set

from edgepose.errors import InputError
from edgepose.eval import coco
from edgepose.eval.crop import person_crop, square_around
from edgepose.eval.predict import Progress, evaluate, predict

#: COCO's keypoint sigmas, copied here so the hand computation does not share edgepose's constant.
SIGMAS = np.array([0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072, 0.062, 0.062, 0.107, 0.107,
                   0.087, 0.087, 0.089, 0.089])  # fmt: skip
VIEWS = [View(0.4, 4 / 3, 0.8, 0.3), View(0.75, 16 / 9, 0.6, 0.7), View(1.2, 3 / 4, 0.9, 0.5), View(0.3, 1.0, 0.7, 0.5)]


@pytest.fixture(scope="module")
def evalset(testdata: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The two photos and four views of each: 10 persons, one per image."""
    return write_eval_set(testdata, tmp_path_factory.mktemp("evalset"), VIEWS)


def hand_oks(predicted: np.ndarray, truth: np.ndarray, area: float) -> float:
    labelled = truth[:, 2] > 0
    d2 = ((predicted[:, :2] - truth[:, :2]) ** 2).sum(axis=1)
    return float(np.mean(np.exp(-d2[labelled] / (2 * area * (2 * SIGMAS[labelled]) ** 2))))


def hand_ap(oks: list[float], scores: list[float]) -> float:
    """COCO's AP for one person and one detection per image: 101-point interpolated, averaged over 0.50:0.95."""
    order = np.argsort(-np.array(scores), kind="mergesort")
    values = np.array(oks)[order]
    aps = []
    for threshold in np.linspace(0.5, 0.95, 10):
        tp = np.cumsum(values >= threshold)
        recall = tp / len(values)
        precision = tp / np.arange(1, len(values) + 1)
        envelope = np.maximum.accumulate(precision[::-1])[::-1]
        points = [envelope[np.searchsorted(recall, r, side="left")] if r <= recall[-1] else 0.0
                  for r in np.linspace(0, 1, 101)]  # fmt: skip
        aps.append(np.mean(points))
    return float(np.mean(aps))


def with_scores(keypoints: np.ndarray, score: float) -> np.ndarray:
    out = keypoints.copy()
    out[:, 2] = score
    return out


def test_perfect_prediction_scores_one(evalset: Path) -> None:
    dataset = coco.load(evalset)
    assert len(dataset.persons) == 10
    predictions = {p.annotation_id: with_scores(p.keypoints, 0.9) for p in dataset.persons}
    result = evaluate(dataset, predictions)
    assert hand_ap([1.0] * 10, [0.9] * 10) == 1.0
    assert result.ap["ap"] == pytest.approx(1.0)
    assert result.ap["ap50"] == pytest.approx(1.0) and result.ap["ap75"] == pytest.approx(1.0)
    assert result.summary.mean_oks == pytest.approx(1.0)
    assert result.summary.pck == 1.0
    assert result.summary.mean_error_px == pytest.approx(0.0, abs=1e-9)


def test_half_lost_scores_half_the_recall_points(evalset: Path) -> None:
    """Five persons found exactly (scored higher), five far off: precision 1 up to recall 0.5, so AP = 51/101."""
    dataset = coco.load(evalset)
    predictions = {}
    for i, person in enumerate(dataset.persons):
        found = i % 2 == 0
        kps = with_scores(person.keypoints, 0.9 if found else 0.3)
        if not found:
            kps[:, 0] += 5 * np.sqrt(person.area)
        predictions[person.annotation_id] = kps
    result = evaluate(dataset, predictions)
    assert result.ap["ap"] == pytest.approx(51 / 101)
    assert result.summary.mean_oks == pytest.approx(0.5, abs=1e-6)


def test_shifted_prediction_matches_hand_computed_ap(evalset: Path) -> None:
    """Growing shifts: every person's OKS and pycocotools' AP equal the hand computation, and AP drops below 1."""
    dataset = coco.load(evalset)
    predictions, oks, scores = {}, [], []
    for i, person in enumerate(dataset.persons):
        kps = with_scores(person.keypoints, 0.95 - 0.07 * ((i * 3) % 10))  # scores not in shift order
        kps[:, 0] += 0.02 * (i + 1) * np.sqrt(person.area)
        kps[:, 1] -= 0.01 * (i + 1) * np.sqrt(person.area)
        predictions[person.annotation_id] = kps
        oks.append(hand_oks(kps, person.keypoints, person.area))
        scores.append(float(kps[:, 2].mean()))
    result = evaluate(dataset, predictions)
    expected = hand_ap(oks, scores)
    print(f"shifted: OKS {np.round(oks, 3).tolist()}, AP by hand {expected:.4f}, pycocotools {result.ap['ap']:.4f}")
    assert [p.oks for p in result.persons] == pytest.approx(oks)
    assert 0.2 < expected < 0.95
    assert result.ap["ap"] == pytest.approx(expected, abs=1e-9)
    assert result.summary.mean_oks == pytest.approx(np.mean(oks))


def test_crop_is_square_with_margin_and_black_outside() -> None:
    image = np.full((100, 80, 3), 200, dtype=np.uint8)
    x0, y0, side = square_around((10.0, 20.0, 40.0, 60.0), 0.25)
    assert side == 75 and (x0, y0) == (-8, 12)  # centre (30, 50), side 60 × 1.25
    crop, origin = person_crop(image, (10.0, 20.0, 40.0, 60.0), 0.25)
    assert crop.shape == (75, 75, 3) and origin == (-8, 12)
    assert (crop[:, :8] == 0).all() and (crop[:, 8:] == 200).all()


def test_predictions_map_back_to_image_pixels(evalset: Path) -> None:
    """A predictor that finds a marker in the crop: its position must come back in image pixels."""
    folder = evalset.parent
    dataset = coco.load(evalset)
    person = dataset.persons[3]
    image = cv2.imread(str(folder / person.file_name))
    mx, my = int(person.bbox[0] + 5), int(person.bbox[1] + 7)
    image[my, mx] = (0, 0, 255)
    cv2.imwrite(str(folder / "marked.png"), image)
    data = json.loads(evalset.read_text())
    data["images"] = [dict(im, file_name="marked.png") for im in data["images"] if im["id"] == person.image_id]
    data["annotations"] = [a for a in data["annotations"] if a["id"] == person.annotation_id]
    marked = coco.parse(data)

    def find_marker(crop: np.ndarray) -> np.ndarray:
        ys, xs = np.nonzero((crop[:, :, 2] == 255) & (crop[:, :, 0] == 0) & (crop[:, :, 1] == 0))
        return np.tile([xs[0], ys[0], 1.0], (17, 1))

    found = predict(marked, folder, find_marker)
    assert found[person.annotation_id][0].tolist() == [mx, my, 1.0]


def test_progress_lines_when_not_a_terminal() -> None:
    stream = io.StringIO()
    progress = Progress(40, stream)
    for done in range(1, 41):
        progress.update(done)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 10 and lines[-1] == "eval: 40/40 persons"
    quiet = io.StringIO()
    Progress(5, quiet).update(5)
    assert quiet.getvalue() == "", "short runs stay quiet"


def test_other_keypoint_layouts_are_refused(evalset: Path) -> None:
    data = json.loads(evalset.read_text())
    data["categories"][0]["keypoints"] = [f"landmark_{i}" for i in range(33)]
    with pytest.raises(InputError, match=r"33 keypoints.*17 COCO keypoints"):
        coco.parse(data)


@pytest.mark.slow
def test_eval_cli_markdown_and_json(models_dir: Path, evalset: Path, tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    args = ("eval", "--annotations", str(evalset), "--images", str(evalset.parent), *model_args(models_dir))
    proc = run_cli(*args, "--output", str(report))
    assert proc.returncode == 0, proc.stderr
    assert "| persons | AP | AP50 | AP75 | mean OKS | PCK@0.2 | mean error px |" in proc.stdout
    assert "| left_wrist |" in proc.stdout and "worst keypoints" in proc.stdout
    data = json.loads(report.read_text())
    assert data["persons"] == 10 and data["settings"]["tta"] == "flip" and data["settings"]["margin"] == 0.25
    assert set(data["coco"]) == {"ap", "ap50", "ap75", "ap_medium", "ap_large", "ar"}
    assert 0.9 <= data["coco"]["ap"] <= 1.0 and data["mean_oks"] > 0.9 and data["pck@0.2"] > 0.9
    assert len(data["per_person"]) == 10 and len(data["keypoints"]) == 17
    worst = data["worst_keypoints"][0]
    assert worst["error_px"] == max(e for p in data["per_person"] for e in p["errors_px"] if e is not None)
    single = run_cli(*args, "--tta", "none", "--output", str(tmp_path / "none.json"))
    assert single.returncode == 0, single.stderr
    none = json.loads((tmp_path / "none.json").read_text())
    assert none["settings"]["tta"] == "none" and none["mean_error_px"] != data["mean_error_px"]


@pytest.mark.slow
def test_eval_cli_bad_input(models_dir: Path, evalset: Path, tmp_path: Path) -> None:
    images = str(evalset.parent)
    models = model_args(models_dir)
    missing = run_cli("eval", "--annotations", str(tmp_path / "nope.json"), "--images", images, *models)
    assert_one_line_error(missing, 2, "annotation file not found")
    (tmp_path / "bad.json").write_text("{not json")
    assert_one_line_error(run_cli("eval", "--annotations", str(tmp_path / "bad.json"), "--images", images, *models),
                          2, "not a JSON file")  # fmt: skip
    data = json.loads(evalset.read_text())
    data["categories"][0]["keypoints"] = data["categories"][0]["keypoints"][:13]
    (tmp_path / "layout.json").write_text(json.dumps(data))
    layout = run_cli("eval", "--annotations", str(tmp_path / "layout.json"), "--images", images, *models)
    assert_one_line_error(layout, 2, "needs the 17 COCO keypoints")
    no_images = run_cli("eval", "--annotations", str(evalset), "--images", str(tmp_path), *models)
    assert_one_line_error(no_images, 2, "not found in")
    assert_one_line_error(run_cli("eval", "--annotations", str(evalset), "--images", str(tmp_path / "x"), *models),
                          2, "image folder not found")  # fmt: skip
    margin = run_cli("eval", "--annotations", str(evalset), "--images", images, "--margin", "-1", *models)
    assert_one_line_error(margin, 2, "--margin")
    tta = run_cli("eval", "--annotations", str(evalset), "--images", images, "--tta", "mirror", *models)
    assert_one_line_error(tta, 2, "--tta")
    required = run_cli("eval", "--images", images, *models)
    assert_one_line_error(required, 2, "--annotations")


@pytest.mark.slow
@pytest.mark.parametrize("model", ["posenet", "blazepose"])
def test_eval_says_no_tta_for_families_without_one(
    model: str, request: pytest.FixtureRequest, testdata: Path, tmp_path: Path
) -> None:
    # --tta (default flip) applies to MoveNet's still path only: PoseNet and BlazePose run a single pass.
    folder = request.getfixturevalue("posenet_dir" if model == "posenet" else "blazepose_models")
    annotations = write_eval_set(testdata, tmp_path / "set", [VIEWS[1]], originals=False)
    report = tmp_path / "report.json"
    proc = run_cli("eval", "--annotations", str(annotations), "--images", str(annotations.parent), "--model", model,
                   "--output", str(report), *model_args(folder))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "· tta none ·" in proc.stdout and "tta flip" not in proc.stdout
    assert json.loads(report.read_text())["settings"]["tta"] == "none"
