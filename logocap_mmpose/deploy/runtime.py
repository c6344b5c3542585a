"""The whole LOGO-CAP model in onnxruntime: both exported graphs, the
Python steps between them.

- :func:`export_full_model`: the dense network (``onnx_export.py``) and the
  refinement (``refinement_export.py``) of a model, two ``.onnx`` files;
- :func:`export_dense_for_batches`: one dense graph per canvas size of a
  list of test batches (the dense graph's height and width are fixed);
- :class:`ONNXRuntimePipeline`: ``model.test_step`` with both graphs in
  onnxruntime. What stays in Python: the data preprocessing, the flip of
  the input, the flip fusion of the maps, the proposal decoding (centre NMS,
  ``decoder.decode_batch``), the scores times the centre scores, the pose
  NMS and packing, and the mapping back to image pixels (timed by
  ``analysis.timing.time_onnxruntime``).
"""
import os.path as osp
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn

from .onnx_export import ONNXDenseNetwork, export_onnx, onnx_inference
from .refinement_export import ONNXRefinement, export_refinement_onnx

DenseLike = Union[str, ONNXDenseNetwork]


def export_full_model(model: nn.Module,
                      dense_path: str,
                      refinement_path: str,
                      input_shape: Tuple[int, int],
                      preprocess: Optional[dict] = None,
                      dynamic_batch: bool = True,
                      mode: Optional[str] = None,
                      opset_version: int = 17) -> Tuple[str, str]:
    """Export both graphs of a LOGO-CAP model.

    Args:
        model (BottomupPoseEstimator): the model.
        dense_path (str): ``.onnx`` file of the dense network.
        refinement_path (str): ``.onnx`` file of the refinement.
        input_shape (tuple): (H, W) of the dense graph.
        preprocess (dict, optional): normalisation in the dense graph.
        dynamic_batch (bool): free batch size of the dense graph.
        mode (str, optional): refinement mode (default: ``test_cfg``'s).
        opset_version (int): ONNX opset (>= 16).

    Returns:
        tuple: the two paths.
    """
    export_onnx(model, dense_path, input_shape, preprocess, dynamic_batch,
                opset_version)
    stride = float(model.head.stride)
    map_shape = tuple(max(1, int(v // stride)) for v in input_shape)
    export_refinement_onnx(model, refinement_path, mode, map_shape,
                           opset_version)
    return dense_path, refinement_path


def batch_canvas_shapes(batches: Sequence[dict]) -> List[Tuple[int, int]]:
    """The distinct (H, W) of the images of test batches (as the test
    pipeline resized them), in order of first appearance."""
    shapes = []
    for batch in batches:
        for img in batch['inputs']:
            shape = tuple(int(v) for v in img.shape[-2:])
            if shape not in shapes:
                shapes.append(shape)
    return shapes


def export_dense_for_batches(model: nn.Module,
                             batches: Sequence[dict],
                             out_dir: str,
                             preprocess: Optional[dict] = None,
                             opset_version: int = 17) -> List[str]:
    """One dense graph per canvas size of ``batches`` (free batch size), so
    that no image is padded: ``<out_dir>/dense_<H>x<W>.onnx``.

    Returns:
        list[str]: the paths, in the order of :func:`batch_canvas_shapes`.
    """
    paths = []
    for h, w in batch_canvas_shapes(batches):
        path = osp.join(out_dir, f'dense_{h}x{w}.onnx')
        paths.append(export_onnx(model, path, (h, w), preprocess,
                                 opset_version=opset_version))
    return paths


class ONNXRuntimePipeline:
    """``model.test_step`` with the dense network and the refinement in
    onnxruntime.

    Args:
        model (BottomupPoseEstimator): the LOGO-CAP model the graphs were
            exported from (its data preprocessor, codec, ``test_cfg`` and
            pose NMS are used; its network is not run).
        dense (str | ONNXDenseNetwork | Sequence): the dense graph(s); with
            several (one per canvas size), each image group takes the graph
            of its size, else the smallest that holds it (padded).
        refinement (str | ONNXRefinement): the refinement graph.
        providers (Sequence[str], optional): execution providers for graphs
            given as paths (default: CPU).
        threads (int, optional): onnxruntime intra-op threads for graphs
            given as paths (default: onnxruntime's choice).
    """

    def __init__(self,
                 model: nn.Module,
                 dense: Union[DenseLike, Sequence[DenseLike]],
                 refinement: Union[str, ONNXRefinement],
                 providers: Optional[Sequence[str]] = None,
                 threads: Optional[int] = None):
        self.model = model
        items = [dense] if isinstance(dense, (str, ONNXDenseNetwork)) else \
            list(dense)
        self.dense = [
            ONNXDenseNetwork(d, providers, threads) if isinstance(d, str)
            else d for d in items
        ]
        self.refinement = ONNXRefinement(refinement, providers, threads) \
            if isinstance(refinement, str) else refinement

    @torch.no_grad()
    def __call__(self, data: dict) -> list:
        """A test batch (as ``model.test_step`` takes it; it is changed in
        place, as there) -> list[PoseDataSample] with ``pred_instances`` in
        image pixels."""
        return onnx_inference(self.model, self.dense, data, self.refinement)
