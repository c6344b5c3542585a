"""The whole LOGO-CAP model as one ONNX graph: image batch in, poses out.

The graph (:class:`OneGraphNetwork`, written by :func:`export_one_graph`)
holds everything between the resized, padded image batch and the poses in
input pixels:

- (optionally, ``preprocess``) the data preprocessor's channel conversion
  and normalisation (``onnx_export.DenseNetwork``);
- with ``test_cfg.flip_test``, the image and its horizontal flip through
  the dense network as one batch, and the flip fusion of
  ``models/inference.py`` (:func:`flip_fuse`);
- the proposal decoding of the codec (``decode_batch``: centre peaks by
  max-pool NMS, top-k, offsets, the centre score threshold), with
  ``test_cfg.nms_before_refine`` the duplicates of stronger proposals
  dropped (``pose_nms.duplicate_proposals``);
- the refinement of ``test_cfg.mode`` (``models/refinement.refine``, the
  one implementation, with the adaptation by ``'matmul'`` as in
  ``refinement_export.py``), ``test_cfg.kam_score``, the centre scores;
- the pose score filter and the pose NMS of ``test_cfg`` on tensors
  (``pose_nms.pose_nms_tensor``: N unrolled greedy steps), and the kept
  poses sorted by pose score (``pose_nms.sort_kept``).

Inputs and outputs (B free, H x W fixed at export):

- ``inputs`` (B, 3, H, W) float32: preprocessed images, or raw BGR 0..255
  with the normalisation inside (``preprocess``);
- ``keypoints`` (B, M, K, 2) input pixels, ``keypoint_scores`` (B, M, K),
  ``pose_scores`` (B, M) (the mean keypoint score) and ``num_people`` (B,)
  int64: the first ``num_people[b]`` rows of image ``b`` are its poses,
  best first; the rows after them are padding (score 0, keypoints of
  discarded proposals). M is the most poses the NMS keeps: ``max_proposals``
  (the codec's ``decode_max_instances`` when None), at most
  ``max_num_people`` with a pose NMS.

What stays outside, in numpy: the resize and pad before (the test
pipeline), and :func:`to_image_pixels` after. Which ``test_cfg`` keys the
graph honours and which it refuses: ``settings.ONE_GRAPH_DECISIONS``; the
settings are fixed in the graph, written to its metadata and checked
against the model's ``test_cfg`` by :func:`one_graph_inference`.

The graph's poses equal ``model.test_step``'s (within the ONNX tolerances of
``tests/test_deploy``) for images of the graph's input size; an image of
another size needs a graph of its size (PyTorch decodes only an image's own
cells; a padded image would be decoded on the padding too).
"""
import json
import warnings
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
from torch import Tensor

from ..models.heads.head_config import TEST_CFG
from ..models.inference import flip_fuse
from ..models.pose_nms import (duplicate_proposals, pose_nms_tensor,
                               sort_kept)
from ..models.refinement import kam_pose_scores, refine
from ._imports import import_optional
from .onnx_export import INPUT_NAME, DenseNetwork
from .refinement_export import MIN_OPSET, RefinementNetwork, make_session
from .settings import check_one_graph_cfg

ONE_GRAPH_OUTPUTS = ('keypoints', 'keypoint_scores', 'pose_scores',
                     'num_people')
META_ONE_GRAPH = 'logocap_one_graph'
#: the test settings fixed in the graph (its metadata)
GRAPH_SETTINGS = ('flip_test', 'mode', 'max_proposals', 'nms_before_refine',
                  'kam_score', 'nms_dist_thr', 'nms_joints_thr',
                  'max_num_people', 'nms_order')


def graph_settings(test_cfg: dict) -> dict:
    """The :data:`GRAPH_SETTINGS` of ``test_cfg`` (defaults filled in from
    ``head_config.TEST_CFG``)."""
    return {key: test_cfg.get(key, TEST_CFG[key]) for key in GRAPH_SETTINGS}


class OneGraphNetwork(nn.Module):
    """The whole model as one module: images -> poses (see the module
    docstring).

    Args:
        model (BottomupPoseEstimator): a LOGO-CAP model with
            ``kem_cfg.sampling='centred'``.
        test_cfg (dict, optional): the test settings (default:
            ``model.test_cfg``); refused ones raise (``settings.py``).
        preprocess (dict, optional): the normalisation inside the graph
            (``onnx_export.preprocess_from_config``).

    Raises:
        ValueError: a test setting the graph cannot honour.
        NotImplementedError: the authors' sampling convention.
    """

    def __init__(self, model: nn.Module, test_cfg: Optional[dict] = None,
                 preprocess: Optional[dict] = None):
        super().__init__()
        cfg = dict(model.test_cfg if test_cfg is None else test_cfg)
        check_one_graph_cfg(cfg)
        self.settings = graph_settings(cfg)
        head = model.head
        self.dense = DenseNetwork(model, preprocess)
        self.refinement = RefinementNetwork(head, self.settings['mode'])
        self.decoder = head.decoder
        self.num_keypoints = head.num_keypoints
        self.flip_indices = list(model.dataset_meta['flip_indices']) \
            if self.settings['flip_test'] else None

    def max_people(self, map_shape: Tuple[int, int]) -> int:
        """M, the poses per image the graph returns, for (h, w) maps."""
        cfg = self.settings
        n = min(cfg['max_proposals'] or self.decoder.decode_max_instances,
                int(map_shape[0]) * int(map_shape[1]))
        if cfg['nms_dist_thr'] > 0 and cfg['max_num_people'] > 0:
            n = min(n, int(cfg['max_num_people']))
        return n

    def forward(self, inputs: Tensor) -> Tuple[Tensor, Tensor, Tensor,
                                               Tensor]:
        """Poses of a batch.

        Args:
            inputs (Tensor): (B, 3, H, W) images (preprocessed, or raw BGR
                with ``preprocess``).

        Returns:
            tuple: ``keypoints`` (B, M, K, 2) input pixels,
            ``keypoint_scores`` (B, M, K), ``pose_scores`` (B, M) and
            ``num_people`` (B,) int64, the poses best first.
        """
        cfg, K = self.settings, self.num_keypoints
        if cfg['flip_test']:  # image and flip: one batch of 2B
            B = inputs.shape[0]
            heatmaps, displacements, embedding = self.dense(
                torch.cat((inputs, inputs.flip(-1))))
            heatmaps, displacements = flip_fuse(
                heatmaps[:B], displacements[:B], heatmaps[B:],
                displacements[B:], self.flip_indices)
            embedding = embedding[:B]
        else:
            heatmaps, displacements, embedding = self.dense(inputs)
        initial, center_scores, valid = self.decoder.decode_batch(
            heatmaps, displacements, cfg['max_proposals'])
        if cfg['nms_before_refine']:  # dropped in place, not moved
            valid = valid & ~duplicate_proposals(initial, valid, cfg)
        refinement = self.refinement
        keypoints, scores, kams = refine(
            refinement.mode, refinement.geometry, refinement.cmp,
            heatmaps[:, :K], embedding, initial)
        scores = kam_pose_scores(scores, kams, cfg['kam_score'])
        scores = scores * center_scores[..., None]
        pose_scores = scores.mean(-1)
        valid = valid & (pose_scores > 0)
        if cfg['nms_dist_thr'] > 0:
            kept = pose_nms_tensor(keypoints, pose_scores, valid,
                                   cfg['nms_dist_thr'],
                                   cfg['nms_joints_thr'],
                                   cfg['max_num_people'], cfg['nms_order'])
        else:
            kept = valid
        kept, pose_scores, keypoints, scores, count = sort_kept(
            kept, pose_scores, keypoints, scores)
        M = self.max_people(heatmaps.shape[-2:])
        # the padding rows score 0
        pose_scores = pose_scores * kept.to(pose_scores.dtype)
        scores = scores * kept[..., None].to(scores.dtype)
        return (keypoints[:, :M], scores[:, :M], pose_scores[:, :M],
                count.clamp(max=M))


def export_one_graph(model: nn.Module,
                     path: str,
                     input_shape: Tuple[int, int],
                     preprocess: Optional[dict] = None,
                     test_cfg: Optional[dict] = None,
                     dynamic_batch: bool = True,
                     opset_version: int = 17) -> str:
    """Export the whole model as one ONNX graph (:class:`OneGraphNetwork`).

    TorchScript-based exporter (``dynamo=False``). The settings, the
    normalisation, the input shape, K and M go to the metadata
    (``logocap_one_graph``), which :class:`ONNXOneGraph` reads.

    Args:
        model (BottomupPoseEstimator): the model (put in eval mode).
        path (str): output ``.onnx`` file.
        input_shape (tuple): (H, W) of the graph's input.
        preprocess (dict, optional): the normalisation inside the graph (it
            then takes raw BGR images, 0..255).
        test_cfg (dict, optional): the test settings (default:
            ``model.test_cfg``).
        dynamic_batch (bool): leave the batch size free (else 1).
        opset_version (int): ONNX opset, at least 16 (GridSample).

    Returns:
        str: ``path``.

    Raises:
        ImportError: ``onnx`` is not installed (one line, with the fix).
        ValueError: a test setting the graph cannot honour.
    """
    onnx = import_optional('onnx', 'the one-graph ONNX export '
                           '(export_one_graph)')
    if opset_version < MIN_OPSET:
        raise ValueError(f'the refinement samples with GridSample: opset >= '
                         f'{MIN_OPSET} needed, got {opset_version}')
    model.eval()
    net = OneGraphNetwork(model, test_cfg, preprocess).eval()
    device = next(model.parameters()).device
    H, W = (int(v) for v in input_shape)
    dummy = torch.rand(1, 3, H, W, device=device,
                       generator=None) * (255 if preprocess else 1)
    names = [INPUT_NAME, *ONE_GRAPH_OUTPUTS]
    axes = {name: {0: 'batch'} for name in names}
    with torch.no_grad(), warnings.catch_warnings():
        # shapes, the proposal count and the unrolled NMS steps are meant
        # to be constants of the graph
        warnings.simplefilter('ignore', torch.jit.TracerWarning)
        torch.onnx.export(
            net, (dummy, ), path,
            input_names=[INPUT_NAME],
            output_names=list(ONE_GRAPH_OUTPUTS),
            dynamic_axes=axes if dynamic_batch else None,
            opset_version=opset_version,
            do_constant_folding=True,
            dynamo=False)
    stride = float(model.head.stride)
    map_shape = (int(np.ceil(H / stride)), int(np.ceil(W / stride)))
    graph = onnx.load(path)
    entry = graph.metadata_props.add()
    entry.key = META_ONE_GRAPH
    entry.value = json.dumps(dict(
        settings=net.settings, preprocess=net.dense.preprocess,
        input_shape=[H, W], num_keypoints=net.num_keypoints,
        max_people=net.max_people(map_shape)))
    onnx.save(graph, path)
    return path


class ONNXOneGraph:
    """An exported one graph run by onnxruntime.

    Args:
        path (str): ``.onnx`` file written by :func:`export_one_graph`.
        providers (Sequence[str], optional): execution providers (CPU).
        threads (int, optional): onnxruntime intra-op threads.

    Attributes:
        settings (dict): the test settings fixed in the graph.
        preprocess (dict | None): the normalisation inside the graph.
        input_shape (tuple): (H, W) the graph takes.
        max_people (int): M.
    """

    def __init__(self, path: str, providers: Optional[Sequence[str]] = None,
                 threads: Optional[int] = None):
        self.session = make_session(path, providers, threads)
        meta = self.session.get_modelmeta().custom_metadata_map
        if META_ONE_GRAPH not in meta:
            raise ValueError(f'{path} is not a LOGO-CAP one graph (no '
                             f'{META_ONE_GRAPH!r} metadata)')
        info = json.loads(meta[META_ONE_GRAPH])
        self.settings = info['settings']
        self.preprocess = info['preprocess']
        self.input_shape = tuple(info['input_shape'])
        self.num_keypoints = int(info['num_keypoints'])
        self.max_people = int(info['max_people'])
        spec = self.session.get_inputs()[0]
        self.input_name = spec.name
        self.batch_size = spec.shape[0] if isinstance(spec.shape[0],
                                                      int) else None

    def __call__(self, inputs: np.ndarray) -> Dict[str, np.ndarray]:
        """(B, 3, H, W) float32 -> dict of the :data:`ONE_GRAPH_OUTPUTS`."""
        inputs = np.ascontiguousarray(inputs, np.float32)
        if tuple(inputs.shape[2:]) != self.input_shape:
            raise ValueError(
                f'the one graph takes {self.input_shape} inputs, got '
                f'{tuple(inputs.shape[2:])}: export a graph of that size '
                '(tools/export_onnx.py --one-graph --input-shape H W)')
        b = self.batch_size
        chunks = [inputs] if b is None else [
            inputs[i:i + b] for i in range(0, len(inputs), b)]
        outs = [self.session.run(list(ONE_GRAPH_OUTPUTS),
                                 {self.input_name: c}) for c in chunks]
        return {name: np.concatenate([o[i] for o in outs])
                for i, name in enumerate(ONE_GRAPH_OUTPUTS)}


def to_image_pixels(points: np.ndarray, input_size: Sequence[float],
                    input_center: Sequence[float],
                    input_scale: Sequence[float]) -> np.ndarray:
    """Input pixels -> image pixels, as MMPose's
    ``BottomupPoseEstimator.add_pred_to_datasample`` maps them (numpy).

    Args:
        points (np.ndarray): (..., 2) positions (x, y) in input pixels.
        input_size, input_center, input_scale: (2,) each, the image's meta
            from the test pipeline's resize.

    Returns:
        np.ndarray: (..., 2).
    """
    size, center, scale = (np.asarray(v, np.float32)
                           for v in (input_size, input_center, input_scale))
    return points / size * scale + center - 0.5 * scale


def unpack_poses(outputs: Dict[str, np.ndarray]) -> List[dict]:
    """The graph's outputs as one dict per image: ``keypoints`` (P, K, 2),
    ``keypoint_scores`` (P, K), ``pose_scores`` (P,), the P valid rows."""
    return [dict(keypoints=k[:n], keypoint_scores=s[:n], pose_scores=p[:n])
            for k, s, p, n in zip(outputs['keypoints'],
                                  outputs['keypoint_scores'],
                                  outputs['pose_scores'],
                                  outputs['num_people'])]


def one_graph_inference(model: nn.Module, graph: ONNXOneGraph,
                        data: dict) -> list:
    """``model.test_step(data)`` with the whole model replaced by the one
    graph.

    The batch goes through ``model.data_preprocessor`` (or, for a graph
    with the normalisation inside, its raw images are stacked); the graph
    returns the poses in input pixels; :func:`to_image_pixels` maps them to
    the image. The poses come best first (``model.test_step``'s order with
    ``nms_order='score'``; with ``'proposal'`` or no NMS, the same poses in
    another order).

    Args:
        model (BottomupPoseEstimator): the model the graph was exported
            from (its data preprocessor and ``test_cfg`` are used; its
            network is not run).
        graph (ONNXOneGraph): the graph.
        data (dict): a test batch (``inputs``: list of (3, h, w) uint8 BGR
            tensors, ``data_samples``), all of the graph's input size.

    Returns:
        list[PoseDataSample]: with ``pred_instances`` (``keypoints`` and
        ``bboxes`` in image pixels, ``keypoint_scores``, ``bbox_scores``,
        ``keypoints_visible``).

    Raises:
        ValueError: a test setting the graph cannot honour or that differs
            from the graph's; an image of another size.
    """
    from mmengine.structures import InstanceData
    check_one_graph_cfg(model.test_cfg, graph.settings)
    processed = model.data_preprocessor(data, False)
    samples = processed['data_samples']
    for sample in samples:
        shape = tuple(int(v) for v in sample.metainfo.get(
            'pad_shape', processed['inputs'].shape[-2:])[:2])
        if shape != graph.input_shape:
            raise ValueError(
                f'an image is {shape[0]}x{shape[1]} but the one graph takes '
                f'{graph.input_shape[0]}x{graph.input_shape[1]}: export a '
                'graph of that size (--one-graph --input-shape H W)')
    if graph.preprocess:
        inputs = torch.stack(list(data['inputs'])).float().numpy()
    else:
        inputs = processed['inputs'].detach().cpu().numpy()
    for sample, pose in zip(samples, unpack_poses(graph(inputs))):
        meta = sample.metainfo
        keypoints = to_image_pixels(pose['keypoints'], meta['input_size'],
                                    meta['input_center'],
                                    meta['input_scale'])
        bboxes = np.concatenate((keypoints.min(1), keypoints.max(1)), 1) \
            if len(keypoints) else np.zeros((0, 4), np.float32)
        sample.pred_instances = InstanceData(
            keypoints=keypoints, keypoint_scores=pose['keypoint_scores'],
            keypoints_visible=pose['keypoint_scores'], bboxes=bboxes,
            bbox_scores=pose['pose_scores'])
    return list(samples)
