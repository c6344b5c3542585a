"""ONNX export of LOGO-CAP's refinement: everything between the initial
poses and the final keypoints.

The refinement graph takes the dense maps of a batch (already flip-fused,
as :func:`~.onnx_export.predict_from_maps` fuses them) and the initial
poses the codec decodes from them, and returns the refined keypoints and
their scores, i.e. ``head.refine(mode, ...)``:

- inputs: ``heatmaps`` (B, K+1, h, w) (the centre channel last; the graph
  reads the K keypoint channels), ``embedding`` (B, C, h, w) and
  ``initial`` (B, N, K, 2), input pixels;
- outputs: ``keypoints`` (B, N, K, 2), input pixels, and ``scores``
  (B, N, K), before the multiplication by the centre scores.

B, N, h and w are dynamic axes: one graph serves every proposal count and
every map size (the head crops the maps of a padded image to its own cells
before it calls the graph).

The graph is a trace of ``models/refinement.py``'s :func:`refine`, the one
implementation PyTorch runs too, with the head's geometry and CMP
(:class:`RefinementNetwork`). That implementation is written to trace with
free sizes (map sizes read as tensors, no branch on the proposal count);
the one switch the export sets is the adaptation: ``impl='matmul'``
(``models/adaptation.py``), the same true convolution as the head's
``'fft'`` / ``'conv'`` up to float rounding, which the exporter converts
with a free proposal count (it converts no ``rfft2``, and a grouped
convolution's group count would fix the proposal count).

Both samplers export: this package's ``'centred'`` one (grid sampling) and
the authors' (``'authors'``, the ``*_official_*`` configs), whose border
rules read the map size as a traced value.

Which ``test_cfg`` keys the deployed model honours and which it refuses:
``deploy/settings.py``.
"""
import json
import warnings
from typing import Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
from torch import Tensor

# make_session is re-exported for the deploy package
from logocap_runtime import graph_metadata, make_session  # noqa: F401

from ..models.refinement import check_mode, refine
from ._imports import import_optional

REFINE_INPUTS = ('heatmaps', 'embedding', 'initial')
REFINE_OUTPUTS = ('keypoints', 'scores')
META_REFINEMENT = 'logocap_refinement'
MIN_OPSET = 16  # GridSample
#: the adaptation the exported graph computes (models/adaptation.py)
EXPORT_ADAPTATION = 'matmul'


class RefinementNetwork(nn.Module):
    """``head.refine(mode, heatmaps[:, :K], embedding, initial)`` as one
    exportable module: :func:`~logocap_mmpose.models.refinement.refine`
    with the head's CMP and geometry, the adaptation by
    :data:`EXPORT_ADAPTATION`.

    Args:
        head (LOGOCAPHead): the head.
        mode (str): one of ``models.refinement.MODES`` (``test_cfg.mode``).

    Raises:
        ValueError: an unknown mode.
    """

    def __init__(self, head: nn.Module, mode: str = 'full'):
        super().__init__()
        self.mode = check_mode(mode)
        self.cmp = head.cmp
        self.num_keypoints = head.num_keypoints
        self.geometry = head.geometry.replace(
            adaptation_impl=EXPORT_ADAPTATION)

    def forward(self, heatmaps: Tensor, embedding: Tensor,
                initial: Tensor) -> Tuple[Tensor, Tensor]:
        """Refine the initial poses.

        Args:
            heatmaps (Tensor): (B, K+1, h, w) fused heatmaps (or (B, K, h,
                w) keypoint heatmaps).
            embedding (Tensor): (B, C, h, w).
            initial (Tensor): (B, N, K, 2) initial poses, input pixels.

        Returns:
            tuple: ``keypoints`` (B, N, K, 2) and ``scores`` (B, N, K).
        """
        keypoints, scores, _ = refine(
            self.mode, self.geometry, self.cmp,
            heatmaps[:, :self.num_keypoints], embedding, initial)
        return keypoints, scores


def export_refinement_onnx(model: nn.Module,
                           path: str,
                           mode: Optional[str] = None,
                           map_shape: Tuple[int, int] = (64, 64),
                           opset_version: int = 17) -> str:
    """Export the refinement of a LOGO-CAP model to ONNX.

    TorchScript-based exporter (``dynamo=False``), as the dense network.
    Inputs ``heatmaps`` (B, K+1, h, w), ``embedding`` (B, C, h, w),
    ``initial`` (B, N, K, 2); outputs ``keypoints`` (B, N, K, 2) and
    ``scores`` (B, N, K); B, N, h and w dynamic. The mode, K and the stride
    go to the metadata (``logocap_refinement``), which
    :class:`ONNXRefinement` reads.

    Args:
        model (BottomupPoseEstimator): the LOGO-CAP model (put in eval mode).
        path (str): output ``.onnx`` file.
        mode (str, optional): the test mode (default: ``model.test_cfg``'s,
            'full' when unset).
        map_shape (tuple): (h, w) of the tracing example (any size works
            afterwards).
        opset_version (int): ONNX opset, at least 16 (GridSample).

    Returns:
        str: ``path``.

    Raises:
        ImportError: ``onnx`` is not installed (one line, with the fix).
    """
    onnx = import_optional('onnx',
                           'the ONNX export of the refinement '
                           '(export_refinement_onnx)')

    if opset_version < MIN_OPSET:
        raise ValueError(f'the refinement samples with GridSample: opset >= '
                         f'{MIN_OPSET} needed, got {opset_version}')
    model.eval()
    head = model.head
    mode = mode or model.test_cfg.get('mode', 'full')
    net = RefinementNetwork(head, mode).eval()
    param = next(model.parameters())
    K = head.num_keypoints
    C = head.embedding_channels
    h, w = (int(v) for v in map_shape)
    gen = torch.Generator().manual_seed(0)
    heatmaps = torch.rand(1, K + 1, h, w, generator=gen)
    embedding = torch.rand(1, C, h, w, generator=gen)
    size = torch.tensor([w, h]) * float(head.stride)
    initial = torch.rand(1, 2, K, 2, generator=gen) * size
    dummy = tuple(t.to(param) for t in (heatmaps, embedding, initial))
    axes = dict(heatmaps={0: 'batch', 2: 'height', 3: 'width'},
                embedding={0: 'batch', 2: 'height', 3: 'width'},
                initial={0: 'batch', 1: 'proposals'},
                keypoints={0: 'batch', 1: 'proposals'},
                scores={0: 'batch', 1: 'proposals'})
    with torch.no_grad(), warnings.catch_warnings():
        # top2_decode checks the window size read from the traced shape:
        # fixed by the head, constant in the graph as the tracer warns
        warnings.simplefilter('ignore', torch.jit.TracerWarning)
        torch.onnx.export(
            net, dummy, path,
            input_names=list(REFINE_INPUTS),
            output_names=list(REFINE_OUTPUTS),
            dynamic_axes=axes,
            opset_version=opset_version,
            do_constant_folding=True,
            dynamo=False)
    graph = onnx.load(path)
    entry = graph.metadata_props.add()
    entry.key = META_REFINEMENT
    entry.value = json.dumps(dict(mode=mode, num_keypoints=K,
                                  stride=float(head.stride)))
    onnx.save(graph, path)
    return path


class ONNXRefinement:
    """An exported refinement graph run by onnxruntime.

    Args:
        path (str): ``.onnx`` file written by :func:`export_refinement_onnx`.
        providers (Sequence[str], optional): execution providers (CPU).
        threads (int, optional): onnxruntime intra-op threads.

    Attributes:
        mode (str): the test mode the graph computes.
        num_keypoints (int): K.
    """

    def __init__(self, path: str, providers: Optional[Sequence[str]] = None,
                 threads: Optional[int] = None):
        self.session = make_session(path, providers, threads)
        meta = self.session.get_modelmeta().custom_metadata_map
        info = graph_metadata(meta, META_REFINEMENT, path,
                              'refinement graph')
        self.mode = info['mode']
        self.num_keypoints = int(info['num_keypoints'])
        self.stride = float(info['stride'])
        # the exporter drops an unused input (the embedding of 'baseline',
        # 'kems_only'): feed only what the graph takes
        self.input_names = [i.name for i in self.session.get_inputs()]

    def __call__(self, heatmaps: np.ndarray, embedding: np.ndarray,
                 initial: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """numpy (B, K+1, h, w), (B, C, h, w), (B, N, K, 2) float32 ->
        keypoints (B, N, K, 2), scores (B, N, K)."""
        feed = {
            name: np.ascontiguousarray(value, np.float32)
            for name, value in zip(REFINE_INPUTS,
                                   (heatmaps, embedding, initial))
            if name in self.input_names
        }
        keypoints, scores = self.session.run(list(REFINE_OUTPUTS), feed)
        return keypoints, scores

    def refine(self, heatmaps: Tensor, embedding: Tensor,
               initial: Tensor) -> Tuple[Tensor, Tensor]:
        """:meth:`__call__` on tensors (any device; results on the device of
        ``initial``): keypoints (B, N, K, 2) and scores (B, N, K)."""
        out = self(*(t.detach().cpu().numpy()
                     for t in (heatmaps, embedding, initial)))
        return tuple(torch.from_numpy(o).to(initial.device) for o in out)
