"""The evaluation report: a Markdown table for people and the full figures as JSON."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from edgepose.eval.metrics import PCK_ALPHA
from edgepose.eval.predict import Evaluation


def _num(value: float, digits: int = 3) -> float | None:
    """Round for JSON; NaN (nothing to average) becomes null."""
    return None if math.isnan(value) else round(value, digits)


def to_json(evaluation: Evaluation, settings: Mapping[str, Any]) -> dict[str, Any]:
    """Return every figure of an evaluation, with the settings it ran with."""
    s = evaluation.summary
    return {
        "settings": dict(settings),
        "persons": s.persons,
        "coco": {k: _num(v, 4) for k, v in evaluation.ap.items()},
        "mean_oks": _num(s.mean_oks, 4),
        f"pck@{PCK_ALPHA}": _num(s.pck, 4),
        "mean_error_px": _num(s.mean_error_px, 2),
        "keypoints": {
            name: {"mean_error_px": _num(k["mean_error_px"], 2), "pck": _num(k["pck"], 4), "labelled": k["labelled"]}
            for name, k in s.per_keypoint.items()
        },
        "worst_keypoints": [{"person": w.person, "keypoint": w.keypoint, "error_px": round(w.error_px, 2),
                             "score": round(w.score, 3)} for w in s.worst_keypoints],
        "worst_persons": [{"person": w.person, "oks": _num(w.oks, 4), "mean_error_px": _num(w.mean_error_px, 2)}
                          for w in s.worst_persons],
        "per_person": [
            {"person": p.name, "oks": _num(p.oks, 4), "errors_px": [_num(float(e), 2) for e in p.errors]}
            for p in evaluation.persons
        ],
    }  # fmt: skip


def _cell(value: float | None, digits: int = 3) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def to_markdown(evaluation: Evaluation, title: str, worst: int = 5) -> str:
    """Return the headline figures, the per-keypoint errors and the worst keypoints as Markdown tables."""
    s, ap = evaluation.summary, evaluation.ap
    lines = [
        f"### {title}",
        "",
        f"| persons | AP | AP50 | AP75 | mean OKS | PCK@{PCK_ALPHA} | mean error px |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        f"| {s.persons} | {_cell(ap['ap'])} | {_cell(ap['ap50'])} | {_cell(ap['ap75'])} | {_cell(s.mean_oks)} "
        f"| {_cell(s.pck)} | {_cell(s.mean_error_px, 1)} |",
        "",
        f"| keypoint | mean error px | PCK@{PCK_ALPHA} | labelled |",
        "| --- | ---: | ---: | ---: |",
    ]
    lines += [
        f"| {name} | {_cell(k['mean_error_px'], 1)} | {_cell(k['pck'])} | {int(k['labelled'])} |"
        for name, k in s.per_keypoint.items()
    ]
    if s.worst_keypoints:
        lines += ["", "| worst keypoints | keypoint | error px | score |", "| --- | --- | ---: | ---: |"]
        lines += [
            f"| {w.person} | {w.keypoint} | {w.error_px:.1f} | {w.score:.2f} |" for w in s.worst_keypoints[:worst]
        ]
    return "\n".join(lines) + "\n"
