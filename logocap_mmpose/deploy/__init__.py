"""Deployment: ONNX export of the dense network and of the refinement, and
inference with either or both in onnxruntime; the whole model as one graph
(``one_graph.py``). ``onnx`` / ``onnxruntime``
are an optional extra, imported only when used, through ``_imports``: a
missing one is a one-line ``ImportError`` that names the fix."""
from ._imports import import_optional, missing_reason
from .onnx_export import (DenseNetwork, ONNXDenseNetwork, choose_network,
                          export_onnx, onnx_inference, predict_from_maps,
                          preprocess_from_config)
from ..models.adaptation import adaptation_by_matmul
from .refinement_export import (ONNXRefinement, RefinementNetwork,
                                export_refinement_onnx)
from .settings import (EXPORT_DECISIONS, ONE_GRAPH_DECISIONS,
                       check_one_graph_cfg, check_test_cfg)
from .one_graph import (ONNXOneGraph, OneGraphNetwork, PosesFromMaps,
                        export_one_graph, one_graph_inference, pipeline_resize)
from logocap_runtime import to_image_pixels, unpack_poses
from .runtime import (ONNXRuntimePipeline, batch_canvas_shapes,
                      export_dense_for_batches, export_full_model)

__all__ = [
    'DenseNetwork', 'ONNXDenseNetwork', 'choose_network', 'export_onnx',
    'onnx_inference', 'predict_from_maps', 'preprocess_from_config',
    'ONNXRefinement', 'RefinementNetwork', 'adaptation_by_matmul',
    'export_refinement_onnx', 'EXPORT_DECISIONS', 'check_test_cfg',
    'ONE_GRAPH_DECISIONS', 'check_one_graph_cfg', 'ONNXOneGraph',
    'OneGraphNetwork', 'PosesFromMaps', 'export_one_graph',
    'one_graph_inference', 'pipeline_resize', 'to_image_pixels',
    'unpack_poses',
    'ONNXRuntimePipeline', 'batch_canvas_shapes', 'export_dense_for_batches',
    'export_full_model', 'import_optional',
    'missing_reason'
]
