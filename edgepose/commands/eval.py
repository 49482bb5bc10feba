"""``edgepose eval``: accuracy of the still-image path on a COCO keypoint file."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from edgepose.config import Config
from edgepose.config.flags import add_command_flags
from edgepose.errors import ConfigError, InputError
from edgepose.eval import coco
from edgepose.eval.cocoeval import require
from edgepose.eval.crop import DEFAULT_MARGIN
from edgepose.eval.predict import Progress, evaluate, predict
from edgepose.eval.report import to_json, to_markdown
from edgepose.inference.factory import open_model

HELP = "measure accuracy on a COCO keypoint file: AP, OKS, PCK, pixel errors (one square crop per person)"
#: Only warnings and errors on stderr unless ``-v`` (the progress line aside): the tables go to stdout.
QUIET = True
log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    """Add the annotation, image folder, margin and report arguments."""
    parser.add_argument("--annotations", type=Path, required=True, metavar="COCO.json",
                        help="COCO-format keypoint annotations (17 COCO keypoints)")  # fmt: skip
    parser.add_argument("--images", type=Path, required=True, metavar="DIR",
                        help="folder the annotations' file names are relative to")  # fmt: skip
    parser.add_argument("--margin", type=float, default=DEFAULT_MARGIN, metavar="F",
                        help="crop each person square around its box, its longer side enlarged by F "
                        "(default 0.25)")  # fmt: skip
    parser.add_argument("--output", "-o", type=Path, metavar="FILE", help="write every figure as JSON to FILE")
    add_command_flags(parser, "eval")


def execute(args: argparse.Namespace, config: Config) -> int:
    """Evaluate the configured model's still-image path; print a Markdown table, write JSON if asked."""
    if not 0.0 <= args.margin <= 4.0:
        raise ConfigError(f"--margin must be between 0 and 4, not {args.margin}")
    if not args.images.is_dir():
        raise InputError(f"image folder not found: {args.images}")
    require()
    dataset = coco.load(args.annotations)
    if not dataset.persons:
        raise InputError(f"{args.annotations}: no person with labelled keypoints to evaluate")
    family, estimator = open_model(config.model)
    tta = config.model.tta if "tta" in family.options else "none"  # a family without flip TTA runs none
    log.info("evaluating %d persons with %s (tta %s)", len(dataset.persons), estimator.info.model, tta)
    progress = Progress(len(dataset.persons))
    predictions = predict(dataset, args.images, lambda crop: estimator.still(crop).keypoints, args.margin, progress)
    evaluation = evaluate(dataset, predictions)
    info = estimator.info  # after the run: the CPU's if the EdgeTPU worker gave up on the way
    settings = {
        "annotations": str(args.annotations),
        "images": str(args.images),
        "margin": args.margin,
        "tta": tta,
        "backend": info.to_dict(),
    }
    title = f"{info.model} · {info.delegate} · tta {tta} · margin {args.margin:g}"
    sys.stdout.write(to_markdown(evaluation, title))
    if args.output:
        try:
            args.output.write_text(json.dumps(to_json(evaluation, settings), indent=2) + "\n")
        except OSError as exc:
            raise InputError(f"cannot write {args.output}: {exc.strerror}") from None
    return 0
