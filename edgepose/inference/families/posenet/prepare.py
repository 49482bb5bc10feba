"""Preparing Coral's PoseNet files: cut off the ``PosenetDecoderOp`` so a stock TFLite runtime runs them.

Coral's PoseNet models end in a custom operator that only Coral's C++ library implements. Its three
inputs (``float_heatmaps``, ``float_short_offsets``, ``float_mid_offsets``) are what edgepose decodes in
numpy (:mod:`.decoder`), so the operator is removed and those tensors become the
subgraph's outputs. The model is rewritten through the TFLite schema's object API (the schema module
ai-edge-litert ships) and the ``flatbuffers`` builder, never by patching bytes; every other operator,
the ``_edgetpu`` variant's ``edgetpu-custom-op`` included, is kept as it is. The same input and library
versions give the same bytes, so the result is verified by checksum like any other model file.
"""

from __future__ import annotations

import importlib
from typing import Any

from edgepose.errors import BackendUnavailableError, ModelError

#: The custom operator removed from Coral's PoseNet files.
DECODER_OP = "PosenetDecoderOp"
#: The decoder's inputs, in its order: they become the prepared model's outputs.
DECODER_INPUTS: tuple[str, ...] = ("float_heatmaps", "float_short_offsets", "float_mid_offsets")
_FILE_IDENTIFIER = b"TFL3"


def _libraries() -> tuple[Any, Any]:
    """Import the TFLite schema (object API) and flatbuffers, or say what to install."""
    try:
        schema = importlib.import_module("ai_edge_litert.schema_py_generated")
        flatbuffers = importlib.import_module("flatbuffers")
    except ImportError as exc:
        raise BackendUnavailableError(
            f"preparing PoseNet needs the TFLite schema from ai-edge-litert ({exc}); install it: "
            "pip install ai-edge-litert"
        ) from exc
    return schema, flatbuffers


def _text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else value


def strip_posenet_decoder(data: bytes) -> bytes:
    """Remove ``PosenetDecoderOp`` from a Coral PoseNet model and output the decoder's three inputs.

    Tensors, buffers and operator codes that only the decoder used are dropped and the remaining
    indices renumbered; nothing else changes.

    Args:
        data: The ``.tflite`` file as Coral ships it (CPU or ``_edgetpu`` variant).

    Returns:
        The prepared ``.tflite`` file.

    Raises:
        ModelError: Not a TFLite model, or not a PoseNet model ending in exactly one decoder operator.
        BackendUnavailableError: ai-edge-litert (which ships the schema) is not installed.
    """
    if len(data) < 8 or data[4:8] != _FILE_IDENTIFIER:
        raise ModelError("not a TFLite model (no TFL3 identifier); re-fetch it: edgepose models fetch")
    schema, flatbuffers = _libraries()
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(data, 0))
    if len(model.subgraphs or []) != 1:
        raise ModelError(f"a PoseNet model has one subgraph, this one has {len(model.subgraphs or [])}")
    graph = model.subgraphs[0]
    decoder_codes = {i for i, code in enumerate(model.operatorCodes) if _text(code.customCode) == DECODER_OP}
    decoders = [op for op in graph.operators if op.opcodeIndex in decoder_codes]
    if len(decoders) != 1:
        raise ModelError(f"expected one {DECODER_OP} operator, found {len(decoders)}: not a Coral PoseNet file")
    if model.signatureDefs:
        raise ModelError("this PoseNet model has signature definitions; edgepose only prepares Coral's files")
    decoder = decoders[0]
    names = tuple(_text(graph.tensors[int(t)].name) for t in decoder.inputs)
    if names != DECODER_INPUTS:
        raise ModelError(f"{DECODER_OP} takes {names}, expected {DECODER_INPUTS}")
    graph.operators = [op for op in graph.operators if op is not decoder]
    graph.outputs = [int(t) for t in decoder.inputs]
    _drop_unused_tensors(graph)
    _drop_unused_buffers(model)
    _drop_unused_operator_codes(model)
    builder = flatbuffers.Builder(len(data) + 4096)
    builder.Finish(model.Pack(builder), file_identifier=_FILE_IDENTIFIER)
    return bytes(builder.Output())


def _index_list(values: Any) -> list[int]:
    return [] if values is None else [int(v) for v in values]


def _drop_unused_tensors(graph: Any) -> None:
    """Remove tensors no operator and no subgraph input/output refers to; renumber the rest."""
    used = set(_index_list(graph.inputs)) | set(_index_list(graph.outputs))
    for op in graph.operators:
        for field in ("inputs", "outputs", "intermediates"):
            used.update(i for i in _index_list(getattr(op, field, None)) if i >= 0)
    keep = [i for i in range(len(graph.tensors)) if i in used]
    new_index = {old: new for new, old in enumerate(keep)}

    def remap(values: Any) -> list[int] | None:
        if values is None:
            return None
        return [new_index[i] if i >= 0 else i for i in _index_list(values)]

    graph.tensors = [graph.tensors[i] for i in keep]
    graph.inputs = remap(graph.inputs)
    graph.outputs = remap(graph.outputs)
    for op in graph.operators:
        for field in ("inputs", "outputs", "intermediates"):
            if getattr(op, field, None) is not None:
                setattr(op, field, remap(getattr(op, field)))


def _drop_unused_buffers(model: Any) -> None:
    """Remove buffers no tensor or metadata entry refers to (buffer 0, the empty sentinel, stays)."""
    used = {0}
    for graph in model.subgraphs:
        used.update(int(t.buffer) for t in graph.tensors)
    used.update(int(m.buffer) for m in model.metadata or [])
    used.update(_index_list(model.metadataBuffer))
    keep = [i for i in range(len(model.buffers)) if i in used]
    new_index = {old: new for new, old in enumerate(keep)}
    model.buffers = [model.buffers[i] for i in keep]
    for graph in model.subgraphs:
        for tensor in graph.tensors:
            tensor.buffer = new_index[int(tensor.buffer)]
    for entry in model.metadata or []:
        entry.buffer = new_index[int(entry.buffer)]
    if model.metadataBuffer is not None:
        model.metadataBuffer = [new_index[i] for i in _index_list(model.metadataBuffer)]


def _drop_unused_operator_codes(model: Any) -> None:
    """Remove operator codes no operator uses; renumber the operators' ``opcodeIndex``."""
    used = {int(op.opcodeIndex) for graph in model.subgraphs for op in graph.operators}
    keep = [i for i in range(len(model.operatorCodes)) if i in used]
    new_index = {old: new for new, old in enumerate(keep)}
    model.operatorCodes = [model.operatorCodes[i] for i in keep]
    for graph in model.subgraphs:
        for op in graph.operators:
            op.opcodeIndex = new_index[int(op.opcodeIndex)]
