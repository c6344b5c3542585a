"""Deployment: ONNX export of the dense network and the rest of inference
on its outputs (``onnx`` / ``onnxruntime`` are an optional extra, imported
only when used)."""
from .onnx_export import (DenseNetwork, ONNXDenseNetwork, export_onnx,
                          onnx_inference, predict_from_maps,
                          preprocess_from_config)

__all__ = [
    'DenseNetwork', 'ONNXDenseNetwork', 'export_onnx', 'onnx_inference',
    'predict_from_maps', 'preprocess_from_config'
]
