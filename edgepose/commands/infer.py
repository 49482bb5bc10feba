"""``edgepose infer IMAGE…``: one JSON line per image."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from edgepose.commands.setup import open_estimator
from edgepose.config import Config
from edgepose.errors import InputError
from edgepose.pose import keypoints_to_json
from edgepose.sources.images import load_image

HELP = "estimate the pose in still images, one JSON line per image"
log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    """Add the image arguments."""
    parser.add_argument("images", nargs="+", type=Path, metavar="IMAGE", help="image files (jpg, png, bmp, …)")


def execute(args: argparse.Namespace, config: Config) -> int:
    """Print one JSON object per image; carry on past bad images and exit 2 if any failed."""
    estimator = open_estimator(config.model)
    backend = estimator.backend.info.to_dict()
    failed: list[str] = []
    for path in args.images:
        try:
            image = load_image(path)
        except InputError as exc:
            print(f"edgepose: error: {exc}", file=sys.stderr)
            failed.append(str(path))
            continue
        keypoints = estimator.still(image).keypoints
        height, width = image.shape[:2]
        record = {
            "image": str(path),
            "width": width,
            "height": height,
            "score": round(float(keypoints[:, 2].mean()), 4),
            "keypoints": keypoints_to_json(keypoints),
            "backend": backend,
        }
        sys.stdout.write(json.dumps(record) + "\n")
        sys.stdout.flush()
    if failed:
        raise InputError(f"{len(failed)} of {len(args.images)} images could not be read: {', '.join(failed)}")
    return 0
