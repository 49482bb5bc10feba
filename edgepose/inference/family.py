"""What a model family declares: its stages, whether it runs on the EdgeTPU, how it is recognised, its estimator.

One :class:`Family` per folder of :mod:`edgepose.inference.families`, named by the explicit registry
(:mod:`edgepose.inference.registry`); :mod:`edgepose.inference.factory` opens the estimator a
``[model]`` config asks for from it. docs/families.md says what a new family needs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from edgepose.config.schema import ModelConfig
from edgepose.inference.estimator import Estimator
from edgepose.inference.runtime.backend import Backend, ModelCheck


@dataclass(frozen=True)
class EstimatorSettings:
    """What the configuration asks of an estimator; each family reads the settings it names in ``options``.

    Attributes:
        model: The ``[model]`` section (``tta``, ``max_people``, …).
        crop_alpha: The low-pass weight of a video crop region (``[smoothing] crop_alpha`` while smoothing is on).
    """

    model: ModelConfig
    crop_alpha: float = 1.0


@dataclass(frozen=True)
class Stage:
    """One model a family opens, by the manifest variants of its files.

    Attributes:
        check: Checks an opened model's tensors; raises :class:`~edgepose.errors.ModelError` saying what to use.
        cpu: The manifest variant of its CPU file.
        edgetpu: The manifest variant of its EdgeTPU-compiled twin, ``""`` when it has none.
    """

    check: ModelCheck
    cpu: str = "cpu"
    edgetpu: str = "edgetpu"


#: Builds a family's estimator from its opened backends (one per stage, in stage order) and the settings.
EstimatorBuilder = Callable[[tuple[Backend, ...], EstimatorSettings], Estimator]


@dataclass(frozen=True)
class Family:
    """A model family: the models it opens and how its estimator is made from them.

    Attributes:
        label: How messages name it (``MoveNet``).
        stages: The models it opens, in the order :attr:`build` takes their backends (MoveNet one, BlazePose two).
        build: Makes the estimator from the opened backends; it may raise ``ModelError`` or ``ValueError``
            (the backends are closed then).
        recognises: Whether an opened bare ``.tflite`` file (not a manifest name) is this family's, from its
            tensors; ``None`` for a family a bare file cannot be (several stages). A recognised file is then
            held to the stage's ``check``, which says what is wrong with it.
        options: The settings of :class:`EstimatorSettings` it reads (``tta``, ``crop_alpha``, ``max_people``).
        edgetpu_refusal: What ``--delegate edgetpu`` is told when the family does not run on the EdgeTPU.
    """

    label: str
    stages: tuple[Stage, ...]
    build: EstimatorBuilder
    recognises: Callable[[Backend], bool] | None = None
    options: tuple[str, ...] = ()
    edgetpu_refusal: str = ""

    @property
    def edgetpu(self) -> bool:
        """Whether it runs on the Coral EdgeTPU: every stage has an EdgeTPU-compiled twin."""
        return all(stage.edgetpu for stage in self.stages)
