"""The family factory: open the estimator a ``[model]`` config asks for, as the registry and the manifest say.

A manifest name's family is its entries' ``family``; a bare ``.tflite`` file's is the first family of the
registry that recognises its tensors (a file that none recognises is held to the default model's family's
check, which says what it expected). The family's stages are opened on the delegate asked for (those of a
family without EdgeTPU twins on XNNPACK or the CPU kernels only) and handed to the family's ``build``.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from edgepose.config.schema import ModelConfig
from edgepose.errors import ModelError
from edgepose.inference.estimator import Estimator
from edgepose.inference.family import EstimatorSettings, Family
from edgepose.inference.registry import FAMILIES
from edgepose.inference.runtime.backend import Backend, BackendRequest, default_threads
from edgepose.inference.runtime.delegates import open_backend, open_cpu_backend
from edgepose.manifest import (
    ModelFiles,
    ModelSpec,
    load_manifest,
    model_family,
    models_dir,
    resolve_model,
    resolve_variants,
    verify_installed,
)

#: The manifest variants each ``--delegate`` may load of a stage with an EdgeTPU twin: ``auto`` tries the
#: twin, then the CPU file (also the EdgeTPU worker's fallback). A stage without a twin loads its CPU file.
LOADED_VARIANTS: dict[str, tuple[str, ...]] = {
    "auto": ("edgetpu", "cpu"),
    "edgetpu": ("edgetpu",),
    "xnnpack": ("cpu",),
    "cpu": ("cpu",),
}

Families = Mapping[str, Family]


def family_of(choice: str, families: Families = FAMILIES, specs: list[ModelSpec] | None = None) -> Family | None:
    """Return the family of a manifest model name, or ``None`` for anything else (a file path).

    Raises:
        ModelError: The manifest gives the model a family the registry does not have.
    """
    name = model_family(choice, specs)
    if not name:
        return None
    if name not in families:
        raise ModelError(f"model {choice!r} is of the family {name!r}, which is not one of {', '.join(families)}")
    return families[name]


def stage_files(
    family: Family, choice: str, folder: Path, specs: list[ModelSpec] | None = None
) -> tuple[ModelFiles, ...]:
    """Return the files of each stage of a manifest model, in the family's stage order."""
    files = tuple(resolve_variants(choice, folder, stage.cpu, stage.edgetpu, specs) for stage in family.stages)
    if len(files) == 1:
        return files
    return tuple(replace(f, name=f"{choice} {stage.cpu}") for f, stage in zip(files, family.stages, strict=True))


def model_files(
    choice: str, folder: Path, families: Families = FAMILIES, specs: list[ModelSpec] | None = None
) -> tuple[ModelFiles, ...]:
    """Return the files ``--model`` means, one per stage: a manifest name's by its family, a path's own.

    Raises:
        ModelError: Neither a known name nor a path to a ``.tflite`` file.
    """
    specs = load_manifest() if specs is None else specs
    family = family_of(choice, families, specs)
    return (resolve_model(choice, folder, specs),) if family is None else stage_files(family, choice, folder, specs)


def loaded_variants(family: Family, delegate: str) -> tuple[str, ...]:
    """Return the manifest variants of a family's files that ``delegate`` may load (checked before loading)."""
    variants: list[str] = []
    for stage in family.stages:
        if not stage.edgetpu:
            variants.append(stage.cpu)
            continue
        variants += [stage.edgetpu if v == "edgetpu" else stage.cpu for v in LOADED_VARIANTS.get(delegate, ())]
    return tuple(variants)


def open_stages(
    family: Family, files: tuple[ModelFiles, ...], request: BackendRequest, choice: str
) -> tuple[Backend, ...]:
    """Open a family's stages with the same request, each held to its stage's check.

    A family without EdgeTPU twins refuses ``--delegate edgetpu`` and runs ``auto`` on XNNPACK, else the
    CPU kernels. If a stage fails, those already open are closed.

    Args:
        family: The family.
        files: Each stage's files (:func:`stage_files`).
        request: Runtime, delegate and threads asked for.
        choice: The model's name, for the fetch hint of a missing file.

    Raises:
        ModelError: The EdgeTPU asked of a family that has no EdgeTPU model, or a model missing, corrupt or
            not the stage's.
        BackendUnavailableError: No runtime, or the requested delegate is unavailable.
    """
    if not family.edgetpu:
        if request.delegate == "edgetpu":
            raise ModelError(family.edgetpu_refusal or f"{family.label} has no EdgeTPU model; use --delegate auto")
        for stage_file in files:
            if stage_file.cpu_path is None or not stage_file.cpu_path.is_file():
                raise ModelError(f"model file not found: {stage_file.cpu_path} (run: edgepose models fetch {choice})")
    opener = open_backend if family.edgetpu else open_cpu_backend
    opened: list[Backend] = []
    try:
        for stage, stage_file in zip(family.stages, files, strict=True):
            opened.append(opener(stage_file, request, check=stage.check))
    except BaseException:
        for backend in opened:
            backend.close()
        raise
    return tuple(opened)


def _recognised(backend: Backend, families: Families, default: Family | None) -> Family:
    """Return the family whose ``recognises`` takes a bare file's opened model, held to its stage's check.

    Raises:
        ModelError: No family recognises it (the default model's family's check says what it expected), or
            the one that does finds it wrong.
    """
    for family in families.values():
        if family.recognises is not None and len(family.stages) == 1 and family.recognises(backend):
            family.stages[0].check(backend)
            return family
    if default is not None and len(default.stages) == 1:
        default.stages[0].check(backend)
    labels = ", ".join(family.label for family in families.values())
    raise ModelError(f"{backend.info.model} is a model of none of the families edgepose knows ({labels})")


def _open_bare(
    files: ModelFiles, request: BackendRequest, families: Families, default: Family | None
) -> tuple[Family, tuple[Backend, ...]]:
    """Open a bare ``.tflite`` file (not a manifest name) and tell its family from its tensors."""
    found: list[Family] = []

    def check(backend: Backend) -> None:
        found[:] = [_recognised(backend, families, default)]

    backend = open_backend(files, request, check=check)
    return found[0], (backend,)


def open_model(
    cfg: ModelConfig,
    crop_alpha: float = 1.0,
    stop: threading.Event | None = None,
    families: Families = FAMILIES,
    specs: list[ModelSpec] | None = None,
) -> tuple[Family, Estimator]:
    """Verify the model's files, open the backend(s) the config asks for and build the family's estimator.

    Args:
        cfg: The ``[model]`` section.
        crop_alpha: < 1 low-passes a video crop region (``[smoothing] crop_alpha``; MoveNet's).
        stop: The run's stop event: the EdgeTPU worker's recovery ends when it is set.
        families: The registry (default: :data:`~edgepose.inference.registry.FAMILIES`).
        specs: The manifest (default: the packaged one).

    Returns:
        The family and its estimator; release the estimator with its ``close()``.

    Raises:
        ModelError: Bad model name, file or shape, or a manifest model's file that fails its checksum.
        BackendUnavailableError: Runtime or requested delegate unavailable.
    """
    specs = load_manifest() if specs is None else specs
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
    family = family_of(cfg.name, families, specs)
    if family is None:
        default = families.get(model_family(ModelConfig.name, specs))
        family, backends = _open_bare(resolve_model(cfg.name, folder, specs), request, families, default)
    else:
        files = stage_files(family, cfg.name, folder, specs)
        verify_installed(cfg.name, folder, loaded_variants(family, cfg.delegate), specs)
        backends = open_stages(family, files, request, cfg.name)
    try:
        return family, family.build(backends, EstimatorSettings(cfg, crop_alpha))
    except BaseException:
        for backend in backends:
            backend.close()
        raise


def open_estimator(
    cfg: ModelConfig,
    crop_alpha: float = 1.0,
    stop: threading.Event | None = None,
    families: Families = FAMILIES,
    specs: list[ModelSpec] | None = None,
) -> Estimator:
    """Open the estimator the config asks for (see :func:`open_model`); release it with its ``close()``."""
    return open_model(cfg, crop_alpha, stop, families, specs)[1]
