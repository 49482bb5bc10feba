"""COCO keypoint annotation files: read (validated, 17 COCO keypoints only) and build.

A file holds ``images`` (id, file_name, width, height), ``annotations`` (id, image_id, category_id,
bbox ``[x, y, w, h]``, keypoints ``[x1, y1, v1, …]``, num_keypoints, area, iscrowd) and
``categories`` (the person category names its ``keypoints``). Visibility ``v`` is 0 for an
unlabelled keypoint, 1 for labelled but hidden and 2 for labelled and visible.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgepose.errors import InputError
from edgepose.pose import KEYPOINT_NAMES, SKELETON_EDGES

#: The COCO person category.
PERSON_CATEGORY_ID = 1


@dataclass(frozen=True)
class Person:
    """One annotated person to evaluate.

    Attributes:
        annotation_id: The annotation's id.
        image_id: The image's id.
        file_name: The image file, relative to the images folder.
        bbox: ``(x, y, w, h)`` in image pixels.
        area: The annotation's area (COCO's OKS scale ``s²``).
        keypoints: ``(17, 3)`` float64: x, y in image pixels and visibility 0/1/2.
    """

    annotation_id: int
    image_id: int
    file_name: str
    bbox: tuple[float, float, float, float]
    area: float
    keypoints: np.ndarray

    @property
    def labelled(self) -> np.ndarray:
        """A ``(17,)`` mask of the keypoints with a position (``v > 0``)."""
        return np.asarray(self.keypoints[:, 2] > 0)


@dataclass(frozen=True)
class Dataset:
    """A validated keypoint file: the persons to evaluate and the ground truth for pycocotools.

    Attributes:
        persons: Non-crowd persons with at least one labelled keypoint, in annotation order.
        ground_truth: The file's images and its keypoint category's annotations, with ``area`` and
            ``num_keypoints`` filled in where missing (what ``pycocotools.coco.COCO`` needs).
        category_id: The keypoint category's id.
    """

    persons: tuple[Person, ...]
    ground_truth: dict[str, Any]
    category_id: int


def _fail(path: Path | str, message: str) -> InputError:
    return InputError(f"{path}: {message}")


def _keypoint_category(path: Path | str, categories: Any) -> dict[str, Any]:
    """Return the one category with keypoints; other layouts than COCO's 17 are refused."""
    if not isinstance(categories, list):
        raise _fail(path, "not a COCO keypoint file: 'categories' must be a list")
    with_keypoints = [c for c in categories if isinstance(c, dict) and c.get("keypoints")]
    if not with_keypoints:
        raise _fail(path, "not a COCO keypoint file: no category lists 'keypoints'")
    if len(with_keypoints) > 1:
        raise _fail(path, f"{len(with_keypoints)} categories have keypoints; edgepose eval needs exactly one (person)")
    category = with_keypoints[0]
    names = tuple(str(n) for n in category["keypoints"])
    if names != KEYPOINT_NAMES:
        raise _fail(
            path,
            f"keypoint layout of category {category.get('name', category.get('id'))!r} has {len(names)} keypoints "
            f"({', '.join(names[:4])}{', …' if len(names) > 4 else ''}); edgepose eval needs the 17 COCO keypoints "
            "in COCO order (nose, left_eye, …, right_ankle)",
        )
    return category


def parse(data: Any, path: Path | str = "annotations") -> Dataset:
    """Validate a decoded COCO keypoint file and collect the persons to evaluate.

    Args:
        data: The decoded JSON.
        path: Where it came from, for error messages.

    Raises:
        InputError: Not a COCO keypoint file, another keypoint layout, or a malformed annotation.
    """
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise _fail(path, "not a COCO keypoint file: expected an object with 'images', 'annotations', 'categories'")
    if not isinstance(data.get("annotations"), list):
        raise _fail(path, "not a COCO keypoint file: 'annotations' must be a list")
    category = _keypoint_category(path, data.get("categories"))
    category_id = category.get("id")
    if not isinstance(category_id, int):
        raise _fail(path, f"the keypoint category's id must be a whole number, not {category_id!r}")
    try:
        images = {int(im["id"]): im for im in data["images"]}
        files = {i: str(im["file_name"]) for i, im in images.items()}
        for im in images.values():
            int(im["width"]), int(im["height"])
    except (KeyError, TypeError, ValueError) as exc:
        raise _fail(path, f"an image entry lacks id, file_name, width or height ({exc})") from None
    annotations: list[dict[str, Any]] = []
    persons: list[Person] = []
    for ann in data["annotations"]:
        if not isinstance(ann, dict) or ann.get("category_id") != category_id:
            continue
        try:
            ann_id, image_id = int(ann["id"]), int(ann["image_id"])
            keypoints = np.asarray(ann["keypoints"], dtype=np.float64)
            x, y, w, h = (float(v) for v in ann["bbox"])
        except (KeyError, TypeError, ValueError) as exc:
            raise _fail(path, f"annotation {ann.get('id')!r} lacks id, image_id, bbox or keypoints ({exc})") from None
        if keypoints.shape != (51,) or not np.isfinite(keypoints).all():
            raise _fail(path, f"annotation {ann_id} has {keypoints.size} keypoint values; 17 COCO keypoints are 51")
        if image_id not in images:
            raise _fail(path, f"annotation {ann_id} refers to image {image_id}, which is not in 'images'")
        keypoints = keypoints.reshape(17, 3)
        labelled = int((keypoints[:, 2] > 0).sum())
        area = float(ann.get("area", w * h))
        annotations.append({**ann, "area": area, "num_keypoints": int(ann.get("num_keypoints", labelled)),
                            "iscrowd": int(ann.get("iscrowd", 0))})  # fmt: skip
        if labelled and not annotations[-1]["iscrowd"] and w > 0 and h > 0:
            persons.append(Person(ann_id, image_id, files[image_id], (x, y, w, h), area, keypoints))
    ground_truth = {"images": list(images.values()), "annotations": annotations, "categories": [category]}
    return Dataset(tuple(persons), ground_truth, category_id)


def load(path: Path) -> Dataset:
    """Read and validate a COCO keypoint file.

    Raises:
        InputError: Missing, unreadable, not JSON, or not a 17-keypoint COCO file.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"annotation file not found: {path}") from None
    except OSError as exc:
        raise InputError(f"cannot read annotation file {path}: {exc.strerror}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path} is not a JSON file: {exc}") from None
    return parse(data, path)


@dataclass(frozen=True)
class Labelled:
    """One person to write into a built file: keypoints ``(17, 3)`` x, y, visibility and the box."""

    keypoints: np.ndarray
    bbox: tuple[float, float, float, float]
    area: float | None = None


def build(images: Sequence[tuple[str, int, int, Sequence[Labelled]]]) -> dict[str, Any]:
    """Build a COCO keypoint file from ``(file_name, width, height, persons)`` per image.

    Args:
        images: One entry per image; its persons' keypoints are in that image's pixels. A
            person's area defaults to its box's area.

    Returns:
        The file's content, ready for ``json.dumps``.
    """
    out: dict[str, Any] = {
        "images": [],
        "annotations": [],
        "categories": [{"id": PERSON_CATEGORY_ID, "name": "person", "supercategory": "person",
                        "keypoints": list(KEYPOINT_NAMES),
                        "skeleton": [[a + 1, b + 1] for a, b in SKELETON_EDGES]}],
    }  # fmt: skip
    for image_id, (file_name, width, height, persons) in enumerate(images, start=1):
        out["images"].append({"id": image_id, "file_name": file_name, "width": width, "height": height})
        for person in persons:
            kps = np.asarray(person.keypoints, dtype=np.float64).reshape(17, 3)
            x, y, w, h = (float(v) for v in person.bbox)
            out["annotations"].append({
                "id": len(out["annotations"]) + 1,
                "image_id": image_id,
                "category_id": PERSON_CATEGORY_ID,
                "bbox": [round(x, 2), round(y, 2), round(w, 2), round(h, 2)],
                "area": round(float(person.area if person.area is not None else w * h), 2),
                "iscrowd": 0,
                "num_keypoints": int((kps[:, 2] > 0).sum()),
                "keypoints": [round(float(v), 2) for v in kps.reshape(-1)],
            })  # fmt: skip
    return out
