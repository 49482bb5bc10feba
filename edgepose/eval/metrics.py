"""Accuracy figures for predicted keypoints against labelled ones: OKS, PCK, pixel errors, worst cases.

Pure functions over numpy arrays. Only labelled keypoints (visibility ``v > 0``) count.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from edgepose.pose import KEYPOINT_INDEX, KEYPOINT_NAMES

#: COCO's per-keypoint OKS constants (``sigmas`` in pycocotools' COCOeval), in KEYPOINT_NAMES order.
COCO_SIGMAS = (
    np.array([0.26, 0.25, 0.25, 0.35, 0.35, 0.79, 0.79, 0.72, 0.72, 0.62, 0.62, 1.07, 1.07, 0.87, 0.87, 0.89, 0.89])
    / 10.0
)
#: PCK counts a keypoint as correct within this fraction of the torso size.
PCK_ALPHA = 0.2
_TORSO_PAIRS = (
    (KEYPOINT_INDEX["left_shoulder"], KEYPOINT_INDEX["right_hip"]),
    (KEYPOINT_INDEX["right_shoulder"], KEYPOINT_INDEX["left_hip"]),
)


def errors_px(predicted: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Return the ``(17,)`` Euclidean pixel distance per keypoint, NaN where the truth is unlabelled.

    Args:
        predicted: ``(17, 2+)`` x, y (score ignored).
        truth: ``(17, 3)`` x, y, visibility.
    """
    distance: np.ndarray = np.hypot(predicted[:, 0] - truth[:, 0], predicted[:, 1] - truth[:, 1]).astype(np.float64)
    distance[truth[:, 2] <= 0] = np.nan
    return distance


def oks(predicted: np.ndarray, truth: np.ndarray, area: float) -> float:
    """Return COCO's object keypoint similarity of one prediction with one labelled person.

    ``mean over labelled keypoints of exp(-d² / (2 · area · (2σ)²))``, as pycocotools computes it.
    """
    labelled = truth[:, 2] > 0
    if not labelled.any():
        return float("nan")
    d2 = (predicted[:, 0] - truth[:, 0]) ** 2 + (predicted[:, 1] - truth[:, 1]) ** 2
    e = d2 / (2.0 * (2.0 * COCO_SIGMAS) ** 2 * (area + np.spacing(1)))
    return float(np.exp(-e[labelled]).mean())


def torso_size(truth: np.ndarray) -> float:
    """Return the torso diameter (left shoulder to right hip, else right shoulder to left hip), NaN if unlabelled."""
    for a, b in _TORSO_PAIRS:
        if truth[a, 2] > 0 and truth[b, 2] > 0:
            return float(np.hypot(truth[a, 0] - truth[b, 0], truth[a, 1] - truth[b, 1]))
    return float("nan")


@dataclass(frozen=True)
class PersonScore:
    """One person's figures.

    Attributes:
        name: Where the person is (image file and annotation id).
        oks: COCO OKS with its own annotation.
        errors: ``(17,)`` pixel errors, NaN where unlabelled.
        correct: ``(17,)`` PCK hits as 1.0/0.0, NaN where unlabelled or without a torso size.
        scores: ``(17,)`` the predicted keypoint scores.
    """

    name: str
    oks: float
    errors: np.ndarray
    correct: np.ndarray
    scores: np.ndarray


def score_person(name: str, predicted: np.ndarray, truth: np.ndarray, area: float) -> PersonScore:
    """Compute OKS, pixel errors and PCK@0.2 (torso) for one prediction."""
    errors = errors_px(predicted, truth)
    torso = torso_size(truth)
    correct = np.where(np.isnan(errors) | np.isnan(torso), np.nan, (errors <= PCK_ALPHA * torso).astype(np.float64))
    return PersonScore(name, oks(predicted, truth, area), errors, correct, predicted[:, 2].astype(np.float64))


def _nanmean(values: np.ndarray) -> float:
    finite = values[~np.isnan(values)]
    return float(finite.mean()) if finite.size else float("nan")


@dataclass(frozen=True)
class WorstKeypoint:
    """One of the largest keypoint errors."""

    person: str
    keypoint: str
    error_px: float
    score: float


@dataclass(frozen=True)
class WorstPerson:
    """One of the lowest-OKS persons."""

    person: str
    oks: float
    mean_error_px: float


@dataclass(frozen=True)
class Summary:
    """Figures over a set of persons (the pycocotools AP comes separately)."""

    persons: int
    mean_oks: float
    pck: float
    mean_error_px: float
    per_keypoint: dict[str, dict[str, float]]
    worst_keypoints: list[WorstKeypoint]
    worst_persons: list[WorstPerson]


def summarize(scores: Sequence[PersonScore], worst: int = 10) -> Summary:
    """Average the persons' figures and list the worst keypoints (largest error) and persons (lowest OKS)."""
    if not scores:
        nan = float("nan")
        return Summary(0, nan, nan, nan, {}, [], [])
    errors = np.stack([s.errors for s in scores])
    correct = np.stack([s.correct for s in scores])
    per_keypoint = {
        name: {
            "mean_error_px": _nanmean(errors[:, i]),
            "pck": _nanmean(correct[:, i]),
            "labelled": int((~np.isnan(errors[:, i])).sum()),
        }
        for i, name in enumerate(KEYPOINT_NAMES)
    }
    flat = [(float(s.errors[i]), s, i) for s in scores for i in range(17) if not np.isnan(s.errors[i])]
    flat.sort(key=lambda item: -item[0])
    worst_keypoints = [WorstKeypoint(s.name, KEYPOINT_NAMES[i], e, float(s.scores[i])) for e, s, i in flat[:worst]]
    ranked = sorted(scores, key=lambda s: s.oks)
    worst_persons = [WorstPerson(s.name, s.oks, _nanmean(s.errors)) for s in ranked[:worst]]
    return Summary(
        persons=len(scores),
        mean_oks=_nanmean(np.array([s.oks for s in scores])),
        pck=_nanmean(correct),
        mean_error_px=_nanmean(errors),
        per_keypoint=per_keypoint,
        worst_keypoints=worst_keypoints,
        worst_persons=worst_persons,
    )
