"""Inference: the model families and what runs their models.

:mod:`.runtime` (TFLite runtimes, interpreters, the model-agnostic backend, delegate selection, the EdgeTPU
probe), :mod:`.worker` (the supervised EdgeTPU child process), :mod:`.families` (one folder per model
family, named by the explicit :mod:`.registry`), the :mod:`.estimator` protocol the pipeline runs and the
:mod:`.factory` that opens the estimator a ``[model]`` config asks for.
"""
