"""``edgepose infer IMAGE…``: one JSON line per image."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from edgepose.config import Config
from edgepose.config.flags import add_command_flags
from edgepose.errors import InputError
from edgepose.inference.estimator import Estimator
from edgepose.inference.factory import open_estimator
from edgepose.pose import keypoints_to_json, landmarks_to_json
from edgepose.sources.images import load_image

HELP = "estimate the pose in still images, one JSON line per image"
#: Only warnings and errors on stderr unless ``-v``: the results go to stdout.
QUIET = True
log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    """Add the image arguments."""
    parser.add_argument("images", nargs="+", type=Path, metavar="IMAGE", help="image files (jpg, png, bmp, …)")
    add_command_flags(parser, "infer")


def execute(args: argparse.Namespace, config: Config) -> int:
    """Print one JSON object per image.

    Every image is read before the model is loaded, so a bad path fails at once, with one line.

    Raises:
        InputError: An image is missing or cannot be decoded (nothing is estimated then).
    """
    images = _read_all(args.images)
    estimator = open_estimator(config.model)
    try:
        for path, image in images:
            _print(path, image, estimator)
    except BrokenPipeError:  # the reader went away (``| head``): stop quietly, like any filter and like ``run``
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def _print(path: Path, image: np.ndarray, estimator: Estimator) -> None:
    """Estimate the pose in one image and print its JSON line."""
    estimate = estimator.still(image)
    best = estimate.poses[0] if estimate.poses else None
    height, width = image.shape[:2]
    record: dict[str, Any] = {
        "image": str(path),
        "width": width,
        "height": height,
        "score": round(estimate.poses[0].score if estimate.poses else 0.0, 4),
        "keypoints": keypoints_to_json(estimate.keypoints),
        "poses": [pose.to_dict() for pose in estimate.poses],
        "backend": estimator.info.to_dict(),  # after the image: the CPU's if the EdgeTPU gave up
    }
    if best is not None and best.landmarks is not None:
        record["landmarks"] = landmarks_to_json(best.landmarks)
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


def _read_all(paths: list[Path]) -> list[tuple[Path, np.ndarray]]:
    images: list[tuple[Path, np.ndarray]] = []
    problems: list[str] = []
    for path in paths:
        try:
            images.append((path, load_image(path)))
        except InputError as exc:
            problems.append(str(exc))
    if len(problems) == 1 and len(paths) == 1:
        raise InputError(problems[0])
    if problems:
        raise InputError(f"{len(problems)} of {len(paths)} images cannot be read: {'; '.join(problems)}")
    return images
