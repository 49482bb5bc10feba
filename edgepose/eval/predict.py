"""Run a pose predictor on one square crop per annotated person and score the result."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np

from edgepose.errors import InputError
from edgepose.eval.coco import Dataset, Person
from edgepose.eval.cocoeval import detection, keypoint_ap
from edgepose.eval.crop import DEFAULT_MARGIN, person_crop
from edgepose.eval.metrics import PersonScore, Summary, score_person, summarize
from edgepose.sources.images import load_image

#: Estimates one pose in a BGR crop: ``(17, 3)`` x, y in the crop's pixels and score.
Predictor = Callable[[np.ndarray], np.ndarray]


class Progress:
    """A progress bar on a terminal; on anything else a line per tenth of the run (long runs only)."""

    def __init__(self, total: int, stream: TextIO | None = None, label: str = "eval", min_total: int = 20) -> None:
        self.total = total
        self.stream = sys.stderr if stream is None else stream
        self.label = label
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.enabled = total >= min_total or self.tty
        self._last_tenth = 0

    def update(self, done: int) -> None:
        """Report ``done`` of ``total`` persons."""
        if not self.enabled or self.total <= 0:
            return
        if self.tty:
            filled = 30 * done // self.total
            self.stream.write(f"\r{self.label} [{'#' * filled}{'.' * (30 - filled)}] {done}/{self.total}")
            if done >= self.total:
                self.stream.write("\n")
        else:
            tenth = 10 * done // self.total
            if tenth <= self._last_tenth:
                return
            self._last_tenth = tenth
            self.stream.write(f"{self.label}: {done}/{self.total} persons\n")
        self.stream.flush()


def predict(
    dataset: Dataset,
    images: Path,
    predictor: Predictor,
    margin: float | None = DEFAULT_MARGIN,
    progress: Progress | None = None,
) -> dict[int, np.ndarray]:
    """Predict every person of ``dataset`` on its own square crop.

    Args:
        dataset: The persons to evaluate.
        images: The folder the file names are relative to.
        predictor: Pose estimation on one crop.
        margin: Crop margin (see :func:`edgepose.eval.crop.square_around`); ``None`` runs the predictor on
            the whole image instead, as ``edgepose infer`` does (for images of one person each).
        progress: Where to report progress (none if ``None``).

    Returns:
        ``(17, 3)`` keypoints in image pixels, by annotation id.

    Raises:
        InputError: An image is missing or cannot be decoded (checked for all before the first crop).
    """
    files = {p.file_name: images / p.file_name for p in dataset.persons}
    missing = [name for name, path in files.items() if not path.is_file()]
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise InputError(f"image {missing[0]}{more} not found in {images}")
    by_file: dict[str, list[Person]] = {}
    for person in dataset.persons:
        by_file.setdefault(person.file_name, []).append(person)
    out: dict[int, np.ndarray] = {}
    for name, persons in by_file.items():
        image = load_image(files[name])
        for person in persons:
            crop, (x0, y0) = (image, (0, 0)) if margin is None else person_crop(image, person.bbox, margin)
            keypoints = np.array(predictor(crop), dtype=np.float64).reshape(17, 3)
            keypoints[:, 0] += x0
            keypoints[:, 1] += y0
            out[person.annotation_id] = keypoints
            if progress is not None:
                progress.update(len(out))
    return out


@dataclass(frozen=True)
class Evaluation:
    """The figures of one evaluation run.

    Attributes:
        ap: pycocotools' ``ap``, ``ap50``, ``ap75``, ``ap_medium``, ``ap_large``, ``ar``.
        summary: Mean OKS, PCK@0.2, pixel errors and worst cases.
        persons: Each person's figures, in the dataset's order.
    """

    ap: dict[str, float]
    summary: Summary
    persons: tuple[PersonScore, ...]


def evaluate(dataset: Dataset, predictions: Mapping[int, np.ndarray]) -> Evaluation:
    """Score predictions (by annotation id, ``(17, 3)`` in image pixels) against the dataset's persons."""
    scored = [p for p in dataset.persons if p.annotation_id in predictions]
    detections = [detection(p.image_id, dataset.category_id, predictions[p.annotation_id]) for p in scored]
    ap = keypoint_ap(dataset.ground_truth, detections)
    persons = tuple(
        score_person(f"{p.file_name}#{p.annotation_id}", predictions[p.annotation_id], p.keypoints, p.area)
        for p in scored
    )
    return Evaluation(ap, summarize(persons), persons)
