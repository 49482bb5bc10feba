"""Brightspot as a family: one CPU-only model, recognised by its tensors, reading ``[model] min_score``."""

from __future__ import annotations

from families.brightspot.estimator import BrightspotEstimator
from families.brightspot.model import check_model, recognises

from edgepose.inference.family import EstimatorSettings, Family, Stage
from edgepose.inference.runtime.backend import Backend


def _build(backends: tuple[Backend, ...], settings: EstimatorSettings) -> BrightspotEstimator:
    (backend,) = backends
    return BrightspotEstimator(backend, settings.model.min_score)


BRIGHTSPOT = Family(
    label="Brightspot",
    stages=(Stage(check_model, cpu="cpu", edgetpu=""),),
    build=_build,
    recognises=recognises,
    options=("min_score",),
    edgetpu_refusal="brightspot's model is float32 and cannot run on the Coral EdgeTPU",
)
