"""Build tiny real TFLite models (one op) for tests of models that are not MoveNet.

Uses the flatbuffer schema that ai-edge-litert ships, so the result is a genuine model the
interpreter loads and runs; only its shapes are wrong for edgepose.
"""

from __future__ import annotations

from pathlib import Path

import flatbuffers
from ai_edge_litert import schema_py_generated as schema


def _tensor(name: str, shape: list[int], dtype: int, buffer: int) -> schema.TensorT:
    tensor = schema.TensorT()
    tensor.name = name
    tensor.shape = shape
    tensor.type = dtype
    tensor.buffer = buffer
    return tensor


def one_op_model(path: Path, in_shape: list[int], in_type: int, out_type: int, opcode: int) -> Path:
    """Write a model with a single builtin op from one input tensor to one output tensor.

    Args:
        path: Where to write the ``.tflite`` file.
        in_shape: Input (and output) shape.
        in_type: ``schema.TensorType`` of the input.
        out_type: ``schema.TensorType`` of the output.
        opcode: ``schema.BuiltinOperator`` (CAST or ABS work with these signatures).
    """
    code = schema.OperatorCodeT()
    code.builtinCode = opcode
    code.deprecatedBuiltinCode = opcode
    code.version = 1
    op = schema.OperatorT()
    op.opcodeIndex = 0
    op.inputs = [0]
    op.outputs = [1]
    graph = schema.SubGraphT()
    graph.tensors = [_tensor("input", in_shape, in_type, 1), _tensor("output", in_shape, out_type, 2)]
    graph.inputs = [0]
    graph.outputs = [1]
    graph.operators = [op]
    model = schema.ModelT()
    model.version = 3
    model.operatorCodes = [code]
    model.subgraphs = [graph]
    model.buffers = [schema.BufferT(), schema.BufferT(), schema.BufferT()]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    path.write_bytes(bytes(builder.Output()))
    return path


def wrong_input_model(path: Path) -> Path:
    """A valid model whose input is float32 ``[1, 4]`` (not a 1×N×N×3 uint8 image)."""
    return one_op_model(path, [1, 4], schema.TensorType.FLOAT32, schema.TensorType.FLOAT32,
                        schema.BuiltinOperator.ABS)  # fmt: skip


def wrong_output_model(path: Path) -> Path:
    """A valid model with MoveNet's uint8 input but a ``[1, 192, 192, 3]`` float32 output."""
    return one_op_model(path, [1, 192, 192, 3], schema.TensorType.UINT8, schema.TensorType.FLOAT32,
                        schema.BuiltinOperator.CAST)  # fmt: skip


def _code(opcode: int) -> schema.OperatorCodeT:
    code = schema.OperatorCodeT()
    code.builtinCode = opcode
    code.deprecatedBuiltinCode = opcode
    code.version = 1
    return code


def _op(opcode_index: int, inputs: list[int], outputs: list[int]) -> schema.OperatorT:
    op = schema.OperatorT()
    op.opcodeIndex = opcode_index
    op.inputs = inputs
    op.outputs = outputs
    return op


def _buffer(data: bytes = b"") -> schema.BufferT:
    buffer = schema.BufferT()
    if data:
        buffer.data = list(data)
    return buffer


def probe_pose_model(path: Path, size: int) -> Path:
    """A MoveNet-shaped model (uint8 ``[1,size,size,3]`` → float32 ``[1,1,17,3]``) that reports pixels.

    It outputs the first 17 pixels of the input's top row divided by 255, so keypoint ``(y, x, score)``
    equals the ``(R, G, B)`` of what the pipeline fed it: a probe of the input size, channel order and
    decoding for model sizes whose real weights are not available here (Thunder's 256 px).
    """
    import numpy as np

    begin = np.zeros(4, dtype=np.int32).tobytes()
    extent = np.array([1, 1, 17, 3], dtype=np.int32).tobytes()
    scale = np.array([1.0 / 255.0], dtype=np.float32).tobytes()
    graph = schema.SubGraphT()
    graph.tensors = [
        _tensor("input", [1, size, size, 3], schema.TensorType.UINT8, 1),
        _tensor("as_float", [1, size, size, 3], schema.TensorType.FLOAT32, 0),
        _tensor("begin", [4], schema.TensorType.INT32, 2),
        _tensor("size", [4], schema.TensorType.INT32, 3),
        _tensor("row", [1, 1, 17, 3], schema.TensorType.FLOAT32, 0),
        _tensor("scale", [1], schema.TensorType.FLOAT32, 4),
        _tensor("keypoints", [1, 1, 17, 3], schema.TensorType.FLOAT32, 5),
    ]
    graph.inputs = [0]
    graph.outputs = [6]
    graph.operators = [_op(0, [0], [1]), _op(1, [1, 2, 3], [4]), _op(2, [4, 5], [6])]
    model = schema.ModelT()
    model.version = 3
    model.operatorCodes = [
        _code(schema.BuiltinOperator.CAST),
        _code(schema.BuiltinOperator.SLICE),
        _code(schema.BuiltinOperator.MUL),
    ]
    model.subgraphs = [graph]
    model.buffers = [_buffer(), _buffer(), _buffer(begin), _buffer(extent), _buffer(scale), _buffer()]
    builder = flatbuffers.Builder(4096)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    path.write_bytes(bytes(builder.Output()))
    return path
