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
every map size (the runner crops the maps of a padded image to its own
cells, as the head does). Inside the graph, for ``test_cfg.mode='full'``:
local KEM sampling (GridSample, hence opset >= 16), convolutional message
passing with Attentive Norm, global KEM sampling and reweighing, the
contextual adaptation and the top-2 decoding; the other modes
(``baseline``, ``kems_only``, ``kams_only``) export their own subsets.

Two stages are written here in a form the TorchScript-based exporter keeps
dynamic, with the arithmetic of the head's functions:

- sampling: ``kem._normalise`` builds the map size with ``new_tensor`` from
  Python ints, which tracing freezes; :func:`sample_points` reads it with
  ``torch._shape_as_tensor`` (an ONNX ``Shape``) instead.
- adaptation: the head's two implementations do not export with a free
  proposal count. ``impl='fft'`` needs ``rfft2`` / ``irfft2``, which the
  exporter does not convert (``UnsupportedOperatorError`` for
  ``aten::fft_rfft2``), and ``impl='conv'`` is a grouped convolution with
  one group per (proposal, keypoint): with a free proposal count the
  exporter refuses it ("convolution for kernel of unknown shape"), and with
  a fixed one the ONNX ``Conv``'s ``group`` attribute fixes M.
  :func:`adaptation_by_matmul` computes the same true convolution (the conv
  path's flipped kernel, divided by S*S) with slices and one batched matrix
  product: the kernel rows are contracted first (``S`` shifted row
  windows), then the ``S`` column shifts are summed. Same multiply-adds as
  the grouped convolution; it holds S row-shifted copies of the windows
  (S times the memory of the global KEMs). It equals both implementations
  up to float rounding (``tests/test_deploy/test_refinement_network.py``).

Only ``kem_cfg.sampling='centred'`` (this package's convention) exports;
the authors' sampler (``'authors'``, the ``*_official_*`` configs) bakes
the map size into its border rules and is refused.
"""
import json
import warnings
from typing import Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from ..models.adaptation import top2_decode
from ..models.kem import gaussian_window, kam_cell_size, window_steps
from ..models.refinement import kams_only_lambda
from ._imports import import_optional

REFINE_INPUTS = ('heatmaps', 'embedding', 'initial')
REFINE_OUTPUTS = ('keypoints', 'scores')
META_REFINEMENT = 'logocap_refinement'
REFINE_MODES = ('full', 'baseline', 'kems_only', 'kams_only')
MIN_OPSET = 16  # GridSample


# ---------------------------------------------------------------------------
# stages in an exportable form (same arithmetic as models/kem.py and
# models/adaptation.py)


def normalise_points(points: Tensor, feature: Tensor, stride: float) -> Tensor:
    """Input pixels -> ``grid_sample`` coordinates of a stride-``stride``
    map (``align_corners=False``), as ``kem._normalise`` computes them, with
    the map size read as a tensor so that tracing keeps it dynamic.

    Args:
        points (Tensor): (..., 2) positions (x, y), input pixels.
        feature (Tensor): (B, C, h, w) the map to be sampled.
        stride (float): input pixels per map cell.

    Returns:
        Tensor: (..., 2) in [-1, 1] inside the map.
    """
    shape = torch._shape_as_tensor(feature)
    size = torch.stack((shape[3], shape[2])).to(points.dtype)  # (w, h)
    return (points + 0.5) / (size * stride) * 2 - 1


def sample_points(feature: Tensor, points: Tensor, stride: float) -> Tensor:
    """``kem.sample_points``: bilinear sampling with border replication.

    Args:
        feature (Tensor): (B, C, h, w).
        points (Tensor): (B, P, 2) input pixels.
        stride (float): input pixels per feature cell.

    Returns:
        Tensor: (B, C, P).
    """
    grid = normalise_points(points, feature, stride)[:, None]  # (B, 1, P, 2)
    out = F.grid_sample(feature, grid, mode='bilinear',
                        padding_mode='border', align_corners=False)
    return out[:, :, 0]


def sample_local_kems(embedding: Tensor, poses: Tensor,
                      stride: float) -> Tensor:
    """``kem.sample_local_kems``: the embedding on the local KEMs.

    Args:
        embedding (Tensor): (B, C, h, w).
        poses (Tensor): (B, N, K, S, S, 2) local KEM positions.
        stride (float): stride of ``embedding``.

    Returns:
        Tensor: (B*N, K*C, S, S), channel ``k*C + c`` (keypoint-major).
    """
    K, S = poses.shape[2], poses.shape[3]
    C = embedding.shape[1]
    feats = sample_points(embedding, poses.flatten(1, -2), stride)
    feats = feats.reshape(feats.shape[0], C, -1, K, S, S)  # (B, C, N, ...)
    return feats.permute(0, 2, 3, 1, 4, 5).reshape(-1, K * C, S, S)


def sample_global_kems(heatmaps: Tensor, centers: Tensor, size: int,
                       stride: float) -> Tensor:
    """``kem.sample_global_kems``: a x a windows (one input pixel a step) of
    each keypoint's heatmap around the initial keypoints.

    Args:
        heatmaps (Tensor): (B, K, h, w) keypoint heatmaps.
        centers (Tensor): (B, N, K, 2) window centres, input pixels.
        size (int): a.
        stride (float): stride of ``heatmaps``.

    Returns:
        Tensor: (B, N, K, a, a); cell (i, j) at centre + (j, i) - (a-1)/2.
    """
    K = heatmaps.shape[1]
    steps = window_steps(size, centers.dtype, centers.device)
    gy, gx = torch.meshgrid(steps, steps, indexing='ij')
    offsets = torch.stack((gx, gy), -1)  # (a, a, 2)
    pts = centers.permute(0, 2, 1, 3)[:, :, :, None, None] + offsets
    grid = normalise_points(pts, heatmaps, stride)  # (B, K, N, a, a, 2)
    out = F.grid_sample(heatmaps.flatten(0, 1)[:, None],
                        grid.flatten(0, 1).flatten(1, 2), mode='bilinear',
                        padding_mode='zeros', align_corners=False)
    out = out.reshape(heatmaps.shape[0], K, -1, size, size)
    return out.permute(0, 2, 1, 3, 4)


def adaptation_by_matmul(global_kems: Tensor, kams: Tensor) -> Tensor:
    """``contextual_adaptation``: each global KEM convolved with its KAM
    (a true convolution, the KAM divided by S*S), with no grouped
    convolution and no FFT.

    With the cross-correlation kernel ``k = flip(kam) / S**2`` and the
    window zero-padded by ``c = S // 2``, ``out[y, x] = sum_i sum_j k[i, j]
    pad[y + i, x + j]``: a batched matrix product contracts the kernel rows
    over the S row-shifted windows (``W[j] = sum_i k[i, j] pad[i:i+a, :]``),
    then the S column shifts ``W[j][:, j:j+a]`` are summed.

    Args:
        global_kems (Tensor): (M, K, a, a), reweighed.
        kams (Tensor): (M, K, S, S), S odd.

    Returns:
        Tensor: (M, K, a, a), equal to ``contextual_adaptation`` up to float
        rounding.
    """
    a, S = global_kems.shape[-1], kams.shape[-1]
    c = S // 2
    kernel = torch.flip(kams / (S * S), dims=(2, 3))
    padded = F.pad(global_kems, (c, c, c, c))  # (M, K, a + 2c, a + 2c)
    rows = torch.stack([padded[:, :, i:i + a] for i in range(S)], 2)
    # (M, K, S_j, S_i) @ (M, K, S_i, a * (a + 2c)) -> (M, K, S_j, a, a + 2c)
    mixed = torch.matmul(kernel.transpose(2, 3), rows.flatten(3))
    mixed = mixed.reshape(-1, kams.shape[1], S, a, a + 2 * c)
    out = mixed[:, :, 0, :, 0:a]
    for j in range(1, S):  # the S column shifts (S fixed, not per person)
        out = out + mixed[:, :, j, :, j:j + a]
    return out


# ---------------------------------------------------------------------------
# the graph


class RefinementNetwork(nn.Module):
    """``head.refine(mode, heatmaps[:, :K], embedding, initial)`` as one
    exportable module (the head's learned CMP, its KEM geometry, global KEM
    size, reweighing Gaussian and top-2 weight).

    Args:
        head (LOGOCAPHead): the head (with ``kem_cfg.sampling='centred'``).
        mode (str): one of :data:`REFINE_MODES` (``test_cfg.mode``).

    Raises:
        ValueError: an unknown mode.
        NotImplementedError: the authors' sampling convention.
    """

    def __init__(self, head: nn.Module, mode: str = 'full'):
        super().__init__()
        if mode not in REFINE_MODES:
            raise ValueError(f'mode must be one of {REFINE_MODES}, got '
                             f'{mode!r}')
        if head.sampling != 'centred':
            raise NotImplementedError(
                "only kem_cfg.sampling='centred' exports; the authors' "
                'sampler (the *_official_* configs) fixes the map size in '
                'its border rules: keep their refinement in PyTorch')
        self.mode = mode
        self.cmp = head.cmp
        self.num_keypoints = head.num_keypoints
        self.stride = float(head.stride)
        self.global_kem_size = int(head.global_kem_size)
        self.top2_lambda = float(head.top2_lambda)
        self.kams_only_lambda = float(kams_only_lambda(head))
        self.register_buffer('kem_offsets', head.kem_offsets.clone(),
                             persistent=False)
        self.register_buffer('cell_size', kam_cell_size(head.kem_offsets),
                             persistent=False)
        self.register_buffer(
            'reweigh',
            gaussian_window(self.global_kem_size, head.reweigh_sigma,
                            head.kem_offsets.dtype, head.kem_offsets.device),
            persistent=False)
        self.register_buffer('eye', torch.eye(self.num_keypoints),
                             persistent=False)

    def kams(self, embedding: Tensor, initial: Tensor) -> Tensor:
        """Clamped KAMs: (B, N, K, 2) -> (B*N, K, S, S)."""
        poses = initial[..., None, None, :] + self.kem_offsets
        local = sample_local_kems(embedding, poses, self.stride)
        return self.cmp(local).clamp(0, 1)

    def global_kems(self, keypoint_heatmaps: Tensor,
                    initial: Tensor) -> Tensor:
        """Reweighed global KEMs: (B, N, K, 2) -> (B*N, K, a, a)."""
        windows = sample_global_kems(keypoint_heatmaps, initial,
                                     self.global_kem_size, self.stride)
        return (windows * self.reweigh).flatten(0, 1)

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
        K = self.num_keypoints
        keypoint_heatmaps = heatmaps[:, :K]
        if self.mode == 'baseline':
            # (B, K, N*K): every heatmap at every keypoint; keep k == k'
            values = sample_points(keypoint_heatmaps, initial.flatten(1, 2),
                                   self.stride)
            values = values.reshape(values.shape[0], K, -1, K)
            scores = (values * self.eye[:, None]).sum(1)
            return initial, scores
        if self.mode == 'kams_only':
            kams = self.kams(embedding, initial)
            offsets, scores = top2_decode(kams, self.kams_only_lambda)
            offsets = offsets * self.cell_size[:, None]
        else:
            maps = self.global_kems(keypoint_heatmaps, initial)
            if self.mode == 'full':
                maps = adaptation_by_matmul(maps,
                                            self.kams(embedding, initial))
            offsets, scores = top2_decode(maps, self.top2_lambda)
        keypoints = initial + offsets.reshape(initial.shape)
        return keypoints, scores.reshape(initial.shape[:3])


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
    C = head.cmp.layers[0].in_channels // K  # embedding channels
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


def make_session(path: str, providers: Optional[Sequence[str]] = None,
                 threads: Optional[int] = None):
    """An onnxruntime ``InferenceSession`` (CPU provider by default;
    ``threads``: intra-op threads, default onnxruntime's choice).

    Raises:
        ImportError: ``onnxruntime`` is not installed (one line, with the
            fix).
    """
    ort = import_optional('onnxruntime',
                          'running an exported ONNX graph (make_session)')
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = int(threads)
    return ort.InferenceSession(
        path, sess_options=options,
        providers=list(providers or ['CPUExecutionProvider']))


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
        if META_REFINEMENT not in meta:
            raise ValueError(f'{path} is not a LOGO-CAP refinement graph '
                             f'(no {META_REFINEMENT!r} metadata)')
        info = json.loads(meta[META_REFINEMENT])
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


def predict_with_refinement(head: nn.Module, heatmaps: Tensor,
                            displacements: Tensor, embedding: Tensor,
                            data_samples: Optional[list], test_cfg: dict,
                            refinement: ONNXRefinement):
    """``head.predict_from_maps`` with the refinement run by ``refinement``.

    Per group of images with the same own map size (``valid_cells``):
    the codec's ``decode_batch`` (centre NMS, initial poses), the exported
    refinement on the maps cropped to those cells, the scores times the
    centre scores, and ``nms_and_pack`` (pose NMS, numpy packing), exactly
    the steps of ``head.predict_one_size``.

    Args:
        head (LOGOCAPHead): the head (its codec decodes the proposals).
        heatmaps (Tensor): (B, K+1, h, w), flip-fused.
        displacements (Tensor): (B, 2K, h, w), flip-fused.
        embedding (Tensor): (B, C, h, w).
        data_samples (list[PoseDataSample], optional): the batch
            (``pad_shape`` marks each image's own size).
        test_cfg (dict): ``model.test_cfg``; its ``mode`` must be the
            graph's.
        refinement (ONNXRefinement): the exported refinement (anything with
            ``mode`` and ``refine(heatmaps, embedding, initial)``).

    Returns:
        list[InstanceData] | tuple: as ``head.predict_from_maps``.
    """
    from mmengine.structures import PixelData

    from ..models.inference import group_by_size, valid_cells
    from ..models.pose_nms import NMS_ORDERS, nms_and_pack

    mode = test_cfg.get('mode', 'full')
    if mode != refinement.mode:
        raise ValueError(f'test_cfg.mode is {mode!r} but the refinement '
                         f'graph computes {refinement.mode!r}: export it '
                         f'with that mode')
    if test_cfg.get('kam_score') is not None:
        raise ValueError(
            f"test_cfg.kam_score={test_cfg['kam_score']!r} scores poses by "
            f'their KAMs, which the exported refinement graph does not '
            f'return: set kam_score=None, or refine in PyTorch (no ONNX '
            f'refinement)')
    if test_cfg.get('nms_order', 'score') not in NMS_ORDERS:
        raise ValueError(f'test_cfg.nms_order must be one of {NMS_ORDERS}, '
                         f'got {test_cfg["nms_order"]!r}')
    sizes = valid_cells(data_samples, heatmaps.shape, head.stride)
    preds = [None] * len(sizes)
    for (h, w), index in group_by_size(sizes):  # groups of images
        pick = slice(None) if len(index) == len(sizes) else index
        hm, disp, emb = (t[pick, :, :h, :w]
                         for t in (heatmaps, displacements, embedding))
        initial, center_scores, valid = head.decoder.decode_batch(
            hm, disp, test_cfg.get('max_proposals'))
        n = int(valid.sum(1).max())  # valid is a prefix of each row
        keypoints, scores = refinement.refine(hm, emb, initial[:, :n])
        scores = scores * center_scores[:, :n, None]
        for i, pred in zip(index, nms_and_pack(keypoints, scores,
                                               valid[:, :n], test_cfg)):
            preds[i] = pred
    if test_cfg.get('output_heatmaps', False):
        return preds, [
            PixelData(heatmaps=m[:, :h, :w], displacements=d[:, :h, :w])
            for m, d, (h, w) in zip(heatmaps.detach(),
                                    displacements.detach(), sizes)
        ]
    return preds
