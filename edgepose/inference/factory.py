"""Building the estimator from config, shared by the subcommands."""

from __future__ import annotations

import threading

from edgepose.config import ModelConfig
from edgepose.inference import movenet, posenet
from edgepose.inference.backends import Backend, BackendRequest, default_threads, open_backend
from edgepose.inference.blazepose import BlazePoseEstimator, open_blazepose
from edgepose.inference.estimator import Estimator, PoseEstimator
from edgepose.inference.posenet_estimator import PoseNetEstimator
from edgepose.models import model_family, models_dir, resolve_model, resolve_stages, verify_installed

#: The manifest variants each ``--delegate`` may load: ``auto`` tries the EdgeTPU twin, then the CPU file
#: (also the EdgeTPU worker's fallback); BlazePose loads all its stages whatever the delegate.
LOADED_VARIANTS: dict[str, tuple[str, ...]] = {
    "auto": ("edgetpu", "cpu"),
    "edgetpu": ("edgetpu",),
    "xnnpack": ("cpu",),
    "cpu": ("cpu",),
}


def is_posenet(backend: Backend) -> bool:
    """Tell the model family from the opened model: PoseNet has three output maps, MoveNet one output."""
    return len(backend.outputs) == len(posenet.OUTPUT_CHANNELS)


def check_family(backend: Backend) -> None:
    """Check the opened model against its family's expectations (see :func:`is_posenet`).

    Raises:
        ModelError: The model fits neither family; the message says what to use.
    """
    (posenet.check_model if is_posenet(backend) else movenet.check_model)(backend)


def open_estimator(cfg: ModelConfig, crop_alpha: float = 1.0, stop: threading.Event | None = None) -> Estimator:
    """Verify the model's files, open the backend(s) the config asks for and wrap them in the family's estimator.

    ``crop_alpha`` < 1 low-passes MoveNet's video crop region (``[smoothing] crop_alpha``); BlazePose's
    region follows its own landmarks. ``stop`` is the run's stop event: the EdgeTPU worker's recovery ends
    when it is set. Release the estimator with :func:`close_estimator`.

    Raises:
        ModelError: Bad model name, file or shape, or a manifest model's file that fails its checksum.
        BackendUnavailableError: Runtime or requested delegate unavailable.
    """
    request = BackendRequest(
        runtime=cfg.runtime,
        delegate=cfg.delegate,
        threads=cfg.threads or default_threads(),
        edgetpu_library=cfg.edgetpu_library,
        edgetpu_probe=cfg.edgetpu_probe,
        edgetpu_worker=cfg.edgetpu_worker,
        stop=stop,
    )
    folder = models_dir(cfg.models_dir)
    if model_family(cfg.name) == "blazepose":
        stages = resolve_stages(cfg.name, folder)
        verify_installed(cfg.name, folder, stages)
        return open_blazepose(stages["detector"], stages["landmark"], request)
    verify_installed(cfg.name, folder, LOADED_VARIANTS.get(cfg.delegate, ()))
    backend = open_backend(resolve_model(cfg.name, folder), request, check=check_family)
    if is_posenet(backend):
        return PoseNetEstimator(backend, max_people=cfg.max_people)
    return PoseEstimator(backend, crop_alpha, tta=cfg.tta)


def close_estimator(estimator: Estimator) -> None:
    """Release every backend the estimator opened: BlazePose has two; the EdgeTPU worker's ends its child."""
    estimator.backend.close()
    if isinstance(estimator, BlazePoseEstimator):
        estimator.detector.close()


def applied_tta(estimator: Estimator) -> str:
    """Return the test-time augmentation the estimator's still path runs: only MoveNet's has one (``flip``)."""
    return estimator.tta if isinstance(estimator, PoseEstimator) else "none"
