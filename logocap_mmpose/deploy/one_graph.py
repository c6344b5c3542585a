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

Inputs and outputs (B, H and W free; H and W multiples of the test resize's
``size_factor``, which fixes the backbone's padding and the map sizes the
decoding reads):

- ``inputs`` (B, 3, H, W) float32: preprocessed images, or raw BGR 0..255
  with the normalisation inside (``preprocess``);
- ``keypoints`` (B, M, K, 2) input pixels, ``keypoint_scores`` (B, M, K),
  ``pose_scores`` (B, M) (the mean keypoint score), ``num_people`` (B,)
  int64 and ``pose_quality`` (B, M), the OKS the head's quality head
  predicts for each pose (``models/quality.py``; 0 without one, and what
  ``test_cfg.pose_score`` scores by): the first ``num_people[b]`` rows of
  image ``b`` are its poses,
  best first; the rows after them are padding (score 0, keypoints of
  discarded proposals). M is the most poses the NMS keeps: ``max_proposals``
  (the codec's ``decode_max_instances`` when None), at most
  ``max_num_people`` with a pose NMS.

What stays outside, in numpy: the resize and pad before (the test
pipeline), and ``to_image_pixels`` after; both are in ``logocap_runtime``,
which runs the graph without torch (``PoseRunner``). Which ``test_cfg`` keys
the graph honours and which it refuses: ``settings.ONE_GRAPH_DECISIONS``;
the settings are fixed in the graph, written to its metadata (with the test
resize and the normalisation) and checked against the model's ``test_cfg``
by :func:`one_graph_inference`.

The part after the dense network, :class:`PosesFromMaps`, exports on its
own too (``maps_only``): fused maps in, poses out, so that the authors'
maps of ``../shared/data/logocap-parity`` can be fed to it.
"""
import json
import warnings
from typing import List, Optional, Tuple

import numpy as np
import torch
import torch.nn as nn
from torch import Tensor

from logocap_runtime import META_KEY, OUTPUT_NAMES, PoseGraph
from logocap_runtime.resize import RESIZES, to_image_pixels

from ..models.heads.head_config import TEST_CFG
from ..models.inference import flip_fuse
from ..models.pose_nms import (duplicate_proposals, pose_nms_tensor,
                               sort_kept)
from ..models.quality import PooledCMP, predicted_quality, scored_by
from ..models.refinement import kam_pose_scores, refine
from ._imports import import_optional
from .onnx_export import INPUT_NAME, DenseNetwork
from .refinement_export import MIN_OPSET, RefinementNetwork
from .settings import check_one_graph_cfg

ONE_GRAPH_OUTPUTS = OUTPUT_NAMES
META_ONE_GRAPH = META_KEY
#: the map names of a :class:`PosesFromMaps` graph
MAP_NAMES = ('heatmaps', 'displacements', 'embedding')
#: the test settings fixed in the graph (its metadata)
GRAPH_SETTINGS = ('flip_test', 'mode', 'max_proposals', 'nms_before_refine',
                  'kam_score', 'pose_score', 'nms_dist_thr', 'nms_joints_thr',
                  'max_num_people', 'nms_order')


def graph_settings(test_cfg: dict) -> dict:
    """The :data:`GRAPH_SETTINGS` of ``test_cfg`` (defaults filled in from
    ``head_config.TEST_CFG``)."""
    return {key: test_cfg.get(key, TEST_CFG[key]) for key in GRAPH_SETTINGS}


class PosesFromMaps(nn.Module):
    """Fused maps -> poses: proposal decoding, refinement, scores and pose
    NMS, the part of :class:`OneGraphNetwork` after the dense network.

    Args:
        head (LOGOCAPHead): the model's head.
        settings (dict): :func:`graph_settings` of the test settings.
    """

    def __init__(self, head: nn.Module, settings: dict):
        super().__init__()
        self.settings = dict(settings)
        self.refinement = RefinementNetwork(head, settings['mode'])
        self.decoder = head.decoder
        self.quality = head.quality

    def max_people(self, map_shape: Tuple[int, int]) -> int:
        """M, the poses per image the graph returns, for (h, w) maps."""
        cfg = self.settings
        n = min(cfg['max_proposals'] or self.decoder.decode_max_instances,
                int(map_shape[0]) * int(map_shape[1]))
        if cfg['nms_dist_thr'] > 0 and cfg['max_num_people'] > 0:
            n = min(n, int(cfg['max_num_people']))
        return n

    def forward(self, heatmaps: Tensor, displacements: Tensor,
                embedding: Tensor) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
        """Poses from (B, K+1, h, w) heatmaps, (B, 2K, h, w) displacements
        and (B, C, h, w) embedding (flip-fused): the outputs of
        :class:`OneGraphNetwork`."""
        cfg = self.settings
        initial, center_scores, valid = self.decoder.decode_batch(
            heatmaps, displacements, cfg['max_proposals'])
        if cfg['nms_before_refine']:  # dropped in place, not moved
            valid = valid & ~duplicate_proposals(initial, valid, cfg)
        # refine the proposals up to the batch's last valid one (valid is
        # a prefix of each row), a count known only when the graph runs;
        # the rows after it keep their initial poses and score 0
        count = valid.sum(1).max()
        head_rows = torch.arange(count, device=count.device)
        tail_rows = torch.arange(count, initial.shape[1], device=count.device)
        refinement = self.refinement
        cmp = refinement.cmp if self.quality is None else \
            PooledCMP(refinement.cmp)
        keypoints, scores, kams = refine(
            refinement.mode, refinement.geometry, cmp,
            heatmaps[:, :refinement.num_keypoints], embedding,
            initial.index_select(1, head_rows))
        quality = predicted_quality(self.quality, scores,
                                    center_scores.index_select(1, head_rows),
                                    kams, cmp)
        scores = kam_pose_scores(scores, kams, cfg['kam_score'])
        tail = initial.index_select(1, tail_rows)
        keypoints = torch.cat((keypoints, tail), 1)
        zeros = torch.zeros_like(tail[..., 0, 0])
        scores = torch.cat((scores, torch.zeros_like(tail[..., 0])), 1)
        quality = zeros.new_zeros(keypoints.shape[:2]) if quality is None \
            else torch.cat((quality, zeros), 1)
        scores = scored_by(cfg['pose_score'],
                           scores * center_scores[..., None], quality)
        pose_scores = scores.mean(-1)
        valid = valid & (pose_scores > 0)
        if cfg['nms_dist_thr'] > 0:
            kept = pose_nms_tensor(keypoints, pose_scores, valid,
                                   cfg['nms_dist_thr'],
                                   cfg['nms_joints_thr'],
                                   cfg['max_num_people'], cfg['nms_order'])
        else:
            kept = valid
        kept, pose_scores, keypoints, scores, quality, count = sort_kept(
            kept, pose_scores, keypoints, scores, quality)
        M = self.max_people(heatmaps.shape[-2:])
        # the padding rows score 0
        pose_scores = pose_scores * kept.to(pose_scores.dtype)
        scores = scores * kept[..., None].to(scores.dtype)
        quality = quality * kept.to(quality.dtype)
        return (keypoints[:, :M], scores[:, :M], pose_scores[:, :M],
                count.clamp(max=M), quality[:, :M])


class OneGraphNetwork(nn.Module):
    """The whole model as one module: images -> poses (see the module
    docstring).

    Args:
        model (BottomupPoseEstimator): a LOGO-CAP model.
        test_cfg (dict, optional): the test settings (default:
            ``model.test_cfg``); refused ones raise (``settings.py``).
        preprocess (dict, optional): the normalisation inside the graph
            (``onnx_export.preprocess_from_config``).

    Raises:
        ValueError: a test setting the graph cannot honour.
    """

    def __init__(self, model: nn.Module, test_cfg: Optional[dict] = None,
                 preprocess: Optional[dict] = None):
        super().__init__()
        cfg = dict(model.test_cfg if test_cfg is None else test_cfg)
        check_one_graph_cfg(cfg)
        self.settings = graph_settings(cfg)
        self.dense = DenseNetwork(model, preprocess)
        self.poses = PosesFromMaps(model.head, self.settings)
        self.flip_indices = list(model.dataset_meta['flip_indices']) \
            if self.settings['flip_test'] else None

    def forward(self, inputs: Tensor) -> Tuple[Tensor, ...]:
        """Poses of a batch.

        Args:
            inputs (Tensor): (B, 3, H, W) images (preprocessed, or raw BGR
                with ``preprocess``).

        Returns:
            tuple: ``keypoints`` (B, M, K, 2) input pixels,
            ``keypoint_scores`` (B, M, K), ``pose_scores`` (B, M),
            ``num_people`` (B,) int64 and ``pose_quality`` (B, M), the
            poses best first.
        """
        if self.flip_indices is not None:  # image and flip: one batch
            B = inputs.shape[0]
            heatmaps, displacements, embedding = self.dense(
                torch.cat((inputs, inputs.flip(-1))))
            heatmaps, displacements = flip_fuse(
                heatmaps[:B], displacements[:B], heatmaps[B:],
                displacements[B:], self.flip_indices)
            embedding = embedding[:B]
        else:
            heatmaps, displacements, embedding = self.dense(inputs)
        return self.poses(heatmaps, displacements, embedding)


def pipeline_resize(cfg) -> Optional[dict]:
    """The resize transform of a config's test pipeline (one of
    ``logocap_runtime.RESIZES``), or None."""
    try:
        pipeline = cfg['test_dataloader']['dataset']['pipeline']
    except (KeyError, TypeError):
        return None
    for step in pipeline:
        if step.get('type') in RESIZES:
            return {k: (list(v) if isinstance(v, tuple) else v)
                    for k, v in dict(step).items()}
    return None


def export_one_graph(model: nn.Module,
                     path: str,
                     input_shape: Tuple[int, int],
                     preprocess: Optional[dict] = None,
                     test_cfg: Optional[dict] = None,
                     opset_version: int = 17) -> str:
    """Export the whole model as one ONNX graph (:class:`OneGraphNetwork`).

    TorchScript-based exporter (``dynamo=False``). The settings, the
    normalisation, the test resize, the size divisor, K and M go to the
    metadata (``logocap_one_graph``), which ``logocap_runtime.PoseGraph``
    reads.

    Args:
        model (BottomupPoseEstimator): the model (put in eval mode).
        path (str): output ``.onnx`` file.
        input_shape (tuple): (H, W) of the traced input, multiples of the
            size divisor (the test resize's ``size_factor``, else 32).
        preprocess (dict, optional): the normalisation inside the graph (it
            then takes raw BGR images, 0..255).
        test_cfg (dict, optional): the test settings (default:
            ``model.test_cfg``).
        opset_version (int): ONNX opset, at least 16 (GridSample).

    Returns:
        str: ``path``.

    Raises:
        ImportError: ``onnx`` is not installed (one line, with the fix).
        ValueError: a test setting the graph cannot honour, or an input
            shape that is not a multiple of the size divisor.
    """
    onnx = import_optional('onnx', 'the one-graph ONNX export '
                           '(export_one_graph)')
    model.eval()
    net = OneGraphNetwork(model, test_cfg, preprocess).eval()
    resize = pipeline_resize(getattr(model, 'cfg', None))
    divisor = int(resize.get('size_factor', 32)) if resize else 32
    H, W = (int(v) for v in input_shape)
    if H % divisor or W % divisor:
        raise ValueError(f'input_shape {H}x{W}: both sides must be multiples '
                         f'of {divisor} (the test resize\'s size_factor)')
    device = next(model.parameters()).device
    dummy = torch.rand(1, 3, H, W, device=device) * (255 if preprocess else 1)
    stride = float(model.head.stride)
    map_shape = (int(np.ceil(H / stride)), int(np.ceil(W / stride)))
    _trace(net, (dummy, ), path, [INPUT_NAME], opset_version)
    _write_metadata(onnx, path, dict(
        settings=net.settings, preprocess=net.dense.preprocess,
        resize=resize, size_divisor=divisor, traced_shape=[H, W],
        num_keypoints=net.poses.refinement.num_keypoints,
        max_people=net.poses.max_people(map_shape)))
    return path


def export_poses_from_maps(head: nn.Module, path: str, test_cfg: dict,
                           map_shape: Tuple[int, int] = (64, 64),
                           opset_version: int = 17) -> str:
    """Export :class:`PosesFromMaps` alone: inputs ``heatmaps`` (B, K+1, h,
    w), ``displacements`` (B, 2K, h, w) and ``embedding`` (B, C, h, w), the
    flip-fused maps (B, h and w free), and the outputs of the one graph.
    Its metadata holds ``settings``, K and M (no resize, no
    normalisation).

    Args:
        head (LOGOCAPHead): the head.
        path (str): output ``.onnx`` file.
        test_cfg (dict): the test settings (refused ones raise).
        map_shape (tuple): (h, w) of the traced maps.
        opset_version (int): ONNX opset, at least 16 (GridSample).
    """
    onnx = import_optional('onnx', 'the one-graph ONNX export '
                           '(export_poses_from_maps)')
    check_one_graph_cfg(test_cfg)
    net = PosesFromMaps(head, graph_settings(test_cfg)).eval()
    K, C = head.num_keypoints, head.embedding_channels
    h, w = map_shape
    gen = torch.Generator().manual_seed(0)
    maps = tuple(torch.rand(1, c, h, w, generator=gen)
                 for c in (K + 1, 2 * K, C))
    _trace(net, maps, path, list(MAP_NAMES), opset_version)
    _write_metadata(onnx, path, dict(
        settings=net.settings, preprocess=None, resize=None,
        size_divisor=1, traced_shape=[h, w], num_keypoints=K,
        max_people=net.max_people(map_shape), maps_only=True))
    return path


def _trace(module: nn.Module, args: tuple, path: str, names: List[str],
           opset_version: int) -> None:
    if opset_version < MIN_OPSET:
        raise ValueError(f'the refinement samples with GridSample: opset >= '
                         f'{MIN_OPSET} needed, got {opset_version}')
    axes = {name: {0: 'batch'} for name in ONE_GRAPH_OUTPUTS}
    for name in names:  # the batch size, height and width are free
        axes[name] = {0: 'batch', 2: 'height', 3: 'width'}
    with torch.no_grad(), warnings.catch_warnings():
        # the proposal count, M and the unrolled NMS steps are meant to be
        # constants of the graph
        warnings.simplefilter('ignore', torch.jit.TracerWarning)
        torch.onnx.export(
            module, args, path, input_names=names,
            output_names=list(ONE_GRAPH_OUTPUTS), dynamic_axes=axes,
            opset_version=opset_version, do_constant_folding=True,
            dynamo=False)


def _write_metadata(onnx, path: str, info: dict) -> None:
    graph = onnx.load(path)
    entry = graph.metadata_props.add()
    entry.key = META_ONE_GRAPH
    entry.value = json.dumps(info)
    onnx.save(graph, path)


#: the one graph in onnxruntime (``logocap_runtime.PoseGraph``)
ONNXOneGraph = PoseGraph


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

    from logocap_runtime import unpack_poses
    check_one_graph_cfg(model.test_cfg, graph.settings)
    processed = model.data_preprocessor(data, False)
    samples = processed['data_samples']
    shapes = {tuple(int(v) for v in s.metainfo.get(
        'pad_shape', processed['inputs'].shape[-2:])[:2]) for s in samples}
    if len(shapes) > 1:
        raise ValueError(f'the images of a batch for the one graph must have '
                         f'one size, got {sorted(shapes)}')
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
