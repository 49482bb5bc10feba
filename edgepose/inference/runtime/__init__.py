"""What runs a model: TFLite runtimes, interpreters, the model-agnostic backend and delegate selection.

The only modules that import ai_edge_litert / tflite_runtime or load libedgetpu.
"""
