"""Building the estimator from config, shared by the subcommands."""

from __future__ import annotations

from edgepose.config import ModelConfig
from edgepose.inference.backends import BackendRequest, default_threads, open_backend
from edgepose.inference.estimator import PoseEstimator
from edgepose.inference.movenet import check_model
from edgepose.models import models_dir, resolve_model


def open_estimator(cfg: ModelConfig) -> PoseEstimator:
    """Resolve the model, open the backend the config asks for and wrap it in an estimator.

    Raises:
        ModelError: Bad model name, file or shape.
        BackendUnavailableError: Runtime or requested delegate unavailable.
    """
    files = resolve_model(cfg.name, models_dir(cfg.models_dir))
    request = BackendRequest(
        runtime=cfg.runtime,
        delegate=cfg.delegate,
        threads=cfg.threads or default_threads(),
        edgetpu_library=cfg.edgetpu_library,
        edgetpu_probe=cfg.edgetpu_probe,
    )
    return PoseEstimator(open_backend(files, request, check=check_model), tta=cfg.tta)
