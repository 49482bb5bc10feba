"""COCO keypoint AP through pycocotools' COCOeval (the only importer of pycocotools)."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Mapping
from typing import Any

import numpy as np

from edgepose.errors import BackendUnavailableError

INSTALL_HINT = "pip install 'edgepose[eval]' (or: pip install pycocotools)"


def require() -> None:
    """Check that pycocotools can be imported, before a long run needs it.

    Raises:
        BackendUnavailableError: It is not installed (with the install hint).
    """
    try:
        import pycocotools.cocoeval  # noqa: F401
    except ImportError:
        raise BackendUnavailableError(f"edgepose eval needs pycocotools: {INSTALL_HINT}") from None


def detection(image_id: int, category_id: int, keypoints: np.ndarray) -> dict[str, Any]:
    """Return one COCO result entry: keypoints ``(17, 3)`` x, y, score in image pixels; score = their mean."""
    kps = np.asarray(keypoints, dtype=np.float64).reshape(17, 3)
    flat = np.column_stack([kps[:, :2], np.ones(17)]).reshape(-1)
    return {
        "image_id": int(image_id),
        "category_id": int(category_id),
        "keypoints": [float(v) for v in flat],
        "score": float(kps[:, 2].mean()),
    }


def keypoint_ap(ground_truth: Mapping[str, Any], detections: list[dict[str, Any]]) -> dict[str, float]:
    """Run COCOeval (``iouType="keypoints"``) and return AP, AP50, AP75, AP_M, AP_L and AR.

    Args:
        ground_truth: A COCO keypoint file's content (see :func:`edgepose.eval.coco.parse`).
        detections: Result entries, e.g. from :func:`detection`.

    Raises:
        BackendUnavailableError: pycocotools is not installed.
    """
    try:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except ImportError:
        raise BackendUnavailableError(f"edgepose eval needs pycocotools: {INSTALL_HINT}") from None
    names = ("ap", "ap50", "ap75", "ap_medium", "ap_large", "ar")
    if not detections:
        return dict.fromkeys(names, 0.0)
    with contextlib.redirect_stdout(io.StringIO()):  # COCO and COCOeval print their progress
        truth = COCO()
        truth.dataset = dict(ground_truth)
        truth.createIndex()
        results = truth.loadRes(detections)
        evaluator = COCOeval(truth, results, iouType="keypoints")
        evaluator.params.imgIds = sorted({d["image_id"] for d in detections})
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    stats = [float(v) for v in evaluator.stats[:6]]
    # COCOeval reports -1 where a figure has nothing to average (e.g. no medium-sized persons).
    return {name: (value if value >= 0 else float("nan")) for name, value in zip(names, stats, strict=True)}
