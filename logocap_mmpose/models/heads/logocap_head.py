"""LOGOCAPHead: wires the LOGO-CAP stages (see ``models/kem.py`` for the
KEM / KAM / CMP vocabulary).

feats -> heatmaps (K keypoints + centre), offsets, embedding
      -> initial poses (codec: centre NMS + offsets)
      -> local KEMs -> embedding features -> CMP -> KAMs
      -> global KEMs (heatmap windows, Gaussian reweighing)
      -> contextual adaptation (KAMs as dynamic kernels) -> top-2 decoding.
The head only orchestrates; each stage is a function or module of its own.
Shapes: B images, N proposals per image, M = B*N, K keypoints.
"""
import os.path as osp
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
from mmengine.structures import InstanceData, PixelData
from torch import Tensor
from torch.profiler import record_function

from mmpose.datasets.datasets.utils import parse_pose_metainfo
from mmpose.evaluation.functional.nms import nearby_joints_nms
from mmpose.models.heads.base_head import BaseHead
from mmpose.models.utils.tta import flip_heatmaps
from mmpose.registry import KEYPOINT_CODECS, MODELS
from mmpose.utils.typing import ConfigType, OptConfigType, OptSampleList
from ..adaptation import contextual_adaptation, top2_decode
from ..attentive_norm import AttentiveNorm2d
from ..kem import (gaussian_window, keypoint_scales, local_kem_offsets,
                   local_kem_poses, sample_global_kems,
                   sample_global_kems_authors, sample_local_kems,
                   sample_local_kems_authors, sample_points)
from ..losses import oks_kernel_targets
from ..message_passing import ConvMessagePassing
from ..pose_nms import pose_nms_in_order

MODES = ('full', 'baseline', 'kems_only', 'kams_only')
NMS_ORDERS = ('score', 'proposal')


class HeadCheckpointMismatchError(RuntimeError):
    """Weights whose head tensors have other shapes than the config's head
    (another keypoint count or other layer widths)."""


def resolve_metainfo_file(path: str) -> str:
    """Find a dataset-meta config file without MMPose's fallback warning.

    MMPose's configs name their meta files relative to the MMPose repository
    (``'configs/_base_/datasets/coco.py'``), which only exists when the
    working directory is an MMPose checkout. ``parse_pose_metainfo`` then
    falls back to its packaged copy with a warning. This looks the path up in
    this order, and returns the first file that exists: the path as given
    (absolute, or relative to the working directory), ``mmpose::REL`` and
    ``configs/REL`` under MMPose's packaged ``.mim/configs``, and the file
    name under ``.mim/configs/_base_/datasets``. A path found nowhere is
    returned unchanged, so ``parse_pose_metainfo`` reports it.
    """
    path = str(path)
    if osp.isfile(path):
        return path
    import mmpose
    mim_configs = osp.join(osp.dirname(mmpose.__file__), '.mim', 'configs')
    rel = path
    if rel.startswith('mmpose::'):
        rel = rel[len('mmpose::'):]
    rel = rel.replace('\\', '/')
    if rel.startswith('configs/'):
        rel = rel[len('configs/'):]
    for candidate in (osp.join(mim_configs, rel),
                      osp.join(mim_configs, '_base_', 'datasets',
                               osp.basename(rel))):
        if not osp.isabs(rel) and osp.isfile(candidate):
            return candidate
    return path


def _conv_bn_relu(in_channels: int, out_channels: int) -> List[nn.Module]:
    return [
        nn.Conv2d(in_channels, out_channels, 1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True)
    ]


def gated_proposals(initial: Tensor, gate: Tensor) -> Tuple[Tensor, Tensor]:
    """The gated proposals of each image, moved to the front of its row.

    Args:
        initial (Tensor): (B, N, K, 2) proposals.
        gate (Tensor): (B, N) bool.

    Returns:
        tuple: ``selected`` (B, n, K, 2) with n the largest gated count of an
        image (rows padded with ungated proposals) and ``valid`` (B, n) bool.
        ``selected[valid]`` equals ``initial[gate]`` (image-major order).
    """
    B, N = gate.shape
    counts = gate.sum(1)
    n = int(counts.max())
    order = torch.argsort((~gate).to(torch.uint8), dim=1, stable=True)[:, :n]
    selected = initial.gather(
        1, order[..., None, None].expand(B, n, *initial.shape[2:]))
    valid = torch.arange(n, device=gate.device)[None] < counts[:, None]
    return selected, valid


@MODELS.register_module()
class LOGOCAPHead(BaseHead):
    """The LOGO-CAP head.

    Args:
        in_channels (int): channels of the stride-4 feature map.
        num_keypoints (int): K.
        keypoint_sigmas (Sequence[float], optional): per-keypoint OKS sigmas.
        metainfo (dict, optional): dataset meta (e.g. ``dict(from_file=
            'configs/_base_/datasets/coco.py')``) to read ``sigmas`` from when
            ``keypoint_sigmas`` is not given.
        heatmap_channels / offset_channels / embedding_channels (int): widths
            of the three 1x1 conv branches (heatmap, offset, embedding).
        cmp_channels (Sequence[int]): widths of the CMP blocks.
        num_mixtures (int): Attentive Norm mixtures.
        attentive_norm (bool): use Attentive Norm in CMP (else BatchNorm).
        local_kem_size (int): S, local KEM side.
        local_kem_extent (float): half range of the unscaled local grid, px.
        global_kem_size (int): a, global KEM side.
        reweigh_sigma (float, optional): sigma of the reweighing Gaussian;
            ``(a - 1) / 6`` when None (the 3-sigma rule).
        top2_lambda (float): weight of the best cell in the top-2 decoding.
        sampling (str): where the KEMs read the stride-s maps. 'centred'
            (default): cell ``u`` is centred at input ``s*u + (s-1)/2``, the
            convention of this package's codec (exact flips, exact
            upsampling). 'authors': the authors' code, needed to run their
            weights: the embedding cell ``u`` is input ``s*u`` and the global
            KEMs are read from the s-times upsampled heatmaps, both with the
            authors' bilinear border rules (see ``models/kem.py``).
        adaptation_impl (str): 'fft' (default: the true convolution through
            FFTs, 3-6x cheaper on CPU) or 'conv' (grouped conv2d, as the
            authors); equal up to float rounding.
        num_proposals (int): proposals per image during training.
        oks_threshold (float): OKS gate of the refinement losses.
        inject_gt_proposals (bool): during training, also add proposals
            decoded at the ground-truth centre cells.
        heatmap_loss / offset_loss / kam_loss / refine_loss (dict): losses.
        decoder (dict): the :class:`LOGOCAPLabel` codec config.
        init_cfg (dict, optional): initialisation config.
    """

    def __init__(self,
                 in_channels: int,
                 num_keypoints: int = 17,
                 keypoint_sigmas: Optional[Sequence[float]] = None,
                 metainfo: Optional[dict] = None,
                 heatmap_channels: int = 32,
                 offset_channels: int = 256,
                 embedding_channels: int = 64,
                 cmp_channels: Sequence[int] = (512, 256, 128),
                 num_mixtures: int = 20,
                 attentive_norm: bool = True,
                 local_kem_size: int = 11,
                 local_kem_extent: float = 5.0,
                 global_kem_size: int = 97,
                 reweigh_sigma: Optional[float] = None,
                 top2_lambda: float = 0.75,
                 sampling: str = 'centred',
                 adaptation_impl: str = 'fft',
                 num_proposals: int = 30,
                 oks_threshold: float = 0.5,
                 inject_gt_proposals: bool = False,
                 heatmap_loss: ConfigType = dict(type='KeypointMSELoss'),
                 offset_loss: ConfigType = dict(
                     type='SoftWeightSmoothL1Loss',
                     use_target_weight=True,
                     supervise_empty=False,
                     beta=1 / 9,
                     loss_weight=0.01),
                 kam_loss: ConfigType = dict(
                     type='OKSKernelLoss', loss_weight=0.01),
                 refine_loss: ConfigType = dict(
                     type='KeypointMSELoss', use_target_weight=True),
                 decoder: OptConfigType = None,
                 init_cfg: OptConfigType = None):
        if init_cfg is None:
            init_cfg = [
                dict(type='Normal', layer=['Conv2d'], std=0.001, bias=0),
                dict(type='Constant', layer='BatchNorm2d', val=1)
            ]
        super().__init__(init_cfg)
        K = num_keypoints
        self.num_keypoints = K
        self.in_channels = in_channels
        sigmas = self._resolve_sigmas(keypoint_sigmas, metainfo, K)
        self.register_buffer('sigmas', torch.as_tensor(sigmas).float(),
                             persistent=False)
        self.register_buffer(
            'kem_offsets',
            local_kem_offsets(keypoint_scales(sigmas), local_kem_size,
                              local_kem_extent),
            persistent=False)
        self.local_kem_size = local_kem_size
        self.global_kem_size = global_kem_size
        self.reweigh_sigma = reweigh_sigma or (global_kem_size - 1) / 6
        self.top2_lambda = top2_lambda
        if adaptation_impl not in ('conv', 'fft'):
            raise ValueError("adaptation_impl must be 'conv' or 'fft', got "
                             f'{adaptation_impl!r}')
        self.adaptation_impl = adaptation_impl
        if sampling not in ('centred', 'authors'):
            raise ValueError("sampling must be 'centred' or 'authors', got "
                             f'{sampling!r}')
        self.sampling = sampling
        self.num_proposals = num_proposals
        self.oks_threshold = oks_threshold
        self.inject_gt_proposals = inject_gt_proposals

        self.heatmap_layers = nn.Sequential(
            *_conv_bn_relu(in_channels, heatmap_channels),
            nn.Conv2d(heatmap_channels, K + 1, 1))
        self.offset_layers = nn.Sequential(
            *_conv_bn_relu(in_channels, offset_channels),
            nn.Conv2d(offset_channels, 2 * K, 1))
        self.embedding_layers = nn.Sequential(
            *_conv_bn_relu(in_channels, embedding_channels))
        self.cmp = ConvMessagePassing(K * embedding_channels, K, cmp_channels,
                                      num_mixtures, attentive_norm)

        self.heatmap_loss = MODELS.build(heatmap_loss)
        self.offset_loss = MODELS.build(offset_loss)
        self.kam_loss = MODELS.build(kam_loss)
        self.refine_loss = MODELS.build(refine_loss)
        self.decoder = KEYPOINT_CODECS.build(decoder) if decoder else None

    @staticmethod
    def _resolve_sigmas(keypoint_sigmas, metainfo, num_keypoints):
        if keypoint_sigmas is None:
            if metainfo is None:
                raise ValueError('LOGOCAPHead needs keypoint sigmas: set '
                                 '`keypoint_sigmas` or `metainfo` (e.g. '
                                 "dict(from_file='configs/_base_/datasets/"
                                 "coco.py'))")
            metainfo = dict(metainfo)
            if 'from_file' in metainfo:
                metainfo['from_file'] = resolve_metainfo_file(
                    metainfo['from_file'])
            keypoint_sigmas = parse_pose_metainfo(metainfo)['sigmas']
        sigmas = np.asarray(keypoint_sigmas, np.float32).reshape(-1)
        if len(sigmas) != num_keypoints:
            raise ValueError(f'LOGOCAPHead has num_keypoints={num_keypoints} '
                             f'but {len(sigmas)} keypoint sigmas were given; '
                             'the dataset meta and the head disagree')
        return sigmas

    def init_weights(self):
        super().init_weights()
        for m in self.modules():  # nested below the Normal conv init
            if isinstance(m, AttentiveNorm2d):
                m.init_weights()

    def _load_from_state_dict(self, state_dict, prefix, local_metadata,
                              strict, missing_keys, unexpected_keys,
                              error_msgs):
        """Refuse head weights of another shape before loading anything.

        MMEngine's ``load_checkpoint`` (``init_model``, ``tools/test.py``,
        ``MMPoseInferencer``, ``load_from``, ``--resume``) loads with
        ``strict=False`` and only warns about a size mismatch, which would
        leave this head randomly initialised and predicting garbage.

        Raises:
            HeadCheckpointMismatchError: naming the checkpoint's keypoint
                count, the config's and the tensors that differ.
        """
        expected = self.state_dict()
        mismatched = [(name, tuple(state_dict[prefix + name].shape),
                       tuple(value.shape))
                      for name, value in expected.items()
                      if prefix + name in state_dict and torch.is_tensor(
                          state_dict[prefix + name]) and
                      state_dict[prefix + name].shape != value.shape]
        if mismatched:
            raise HeadCheckpointMismatchError(
                self._mismatch_message(state_dict, prefix, mismatched))
        super()._load_from_state_dict(state_dict, prefix, local_metadata,
                                      strict, missing_keys, unexpected_keys,
                                      error_msgs)

    def _mismatch_message(self, state_dict, prefix: str,
                          mismatched: list) -> str:
        K = self.num_keypoints
        found = None  # keypoint count of the checkpoint's head
        heatmap_out = f'{prefix}heatmap_layers.{len(self.heatmap_layers) - 1}'
        offset_out = f'{prefix}offset_layers.{len(self.offset_layers) - 1}'
        if torch.is_tensor(state_dict.get(heatmap_out + '.weight')):
            found = state_dict[heatmap_out + '.weight'].shape[0] - 1
        elif torch.is_tensor(state_dict.get(offset_out + '.weight')):
            found = state_dict[offset_out + '.weight'].shape[0] // 2
        shapes = '; '.join(f'{prefix}{name}: checkpoint {ckpt}, model {mine}'
                           for name, ckpt, mine in mismatched[:4])
        more = f' (and {len(mismatched) - 4} more)' if len(
            mismatched) > 4 else ''
        if found is not None and found != K:
            what = (f'the checkpoint holds a head for {found} keypoints but '
                    f'the config builds LOGOCAPHead with num_keypoints={K} '
                    '(the dataset meta / keypoint_sigmas of the config)')
        else:
            keypoints = f'{found}' if found is not None else 'an unknown'
            what = (f'the checkpoint holds a head for {keypoints} keypoints '
                    f'and the config a head for {K}, but layer widths differ '
                    '(in_channels, heatmap_channels, offset_channels, '
                    'embedding_channels, cmp_channels or num_mixtures)')
        return (f'these weights do not fit LOGOCAPHead: {what}. Tensors of '
                f'other shapes: {shapes}{more}. Use the config the '
                'checkpoint was trained with; to fine-tune on another '
                'keypoint set, load the weights without their head.* '
                'entries (e.g. init_cfg=dict(type=\'Pretrained\', '
                "prefix='backbone.', checkpoint=...) on the backbone).")

    @property
    def stride(self) -> float:
        if self.decoder is None:
            raise RuntimeError('LOGOCAPHead needs `decoder` (a LOGOCAPLabel '
                               'config) to decode and to compute losses')
        return self.decoder.stride

    # ---------------------------------------------------------------- forward
    def forward(self, feats: Tuple[Tensor]) -> Tuple[Tensor, Tensor, Tensor]:
        """Dense outputs from the last (stride-4) feature map.

        Returns:
            tuple: heatmaps (B, K+1, h, w) (centre last), displacements
            (B, 2K, h, w) and embedding (B, C, h, w).
        """
        x = feats[-1]
        if x.shape[1] != self.in_channels:
            raise ValueError(f'LOGOCAPHead expects {self.in_channels} input '
                             f'channels, got {x.shape[1]}')
        return (self.heatmap_layers(x), self.offset_layers(x),
                self.embedding_layers(x))

    def local_poses(self, initial: Tensor) -> Tensor:
        """Local KEM candidates: (B, N, K, 2) -> (B, N, K, S, S, 2)."""
        return local_kem_poses(initial, self.kem_offsets)

    def local_kem_features(self, embedding: Tensor, poses: Tensor) -> Tensor:
        """Embedding on the local KEMs: (B, N, K, S, S, 2) -> (B, N, K*C, S,
        S), keypoint-major channels."""
        with record_function('logocap/local_kem'):
            if self.sampling == 'authors':
                return sample_local_kems_authors(embedding, poses,
                                                 self.stride)
            return sample_local_kems(embedding, poses, self.stride)

    def kams(self, embedding: Tensor, poses: Tensor) -> Tensor:
        """Local KEM features -> CMP: (B, N, K, S, S, 2) -> (B, N, K, S, S)."""
        B, N, K, S = poses.shape[:4]
        local = self.local_kem_features(embedding, poses)
        with record_function('logocap/kam'):
            kams = self.cmp(local.reshape(B * N, -1, S, S))
        return kams.reshape(B, N, K, S, S)

    def global_kems(self, keypoint_heatmaps: Tensor,
                    initial: Tensor) -> Tensor:
        """Reweighed heatmap windows: (B, N, K, 2) -> (B, N, K, a, a)."""
        a = self.global_kem_size
        sample = sample_global_kems_authors if self.sampling == 'authors' \
            else sample_global_kems
        windows = sample(keypoint_heatmaps, initial, a, self.stride)
        return windows * gaussian_window(a, self.reweigh_sigma,
                                         windows.dtype, windows.device)

    def adapt(self, global_kems: Tensor, kams: Tensor) -> Tensor:
        """Contextual adaptation over flattened proposals (B, N, ...)."""
        out = contextual_adaptation(global_kems.flatten(0, 1),
                                    kams.flatten(0, 1), self.adaptation_impl)
        return out.reshape(global_kems.shape)

    # ------------------------------------------------------------------- loss
    def loss(self,
             feats: Tuple[Tensor],
             batch_data_samples: OptSampleList,
             train_cfg: ConfigType = {}) -> dict:
        """Heatmap, offset, OKS kernel (KAM) and refined-heatmap losses."""
        heatmaps, displacements, embedding = self.forward(feats)
        losses = self.dense_losses(heatmaps, displacements,
                                   batch_data_samples)
        gt_kpts, gt_vis, gt_areas = self._padded_instances(
            batch_data_samples, heatmaps)
        with torch.no_grad():
            initial, _, _ = self.decoder.decode_batch(
                heatmaps.detach(), displacements.detach(),
                self.num_proposals, thr=float('-inf'))
            if self.inject_gt_proposals:
                initial = torch.cat((initial, self._gt_center_proposals(
                    displacements.detach(), gt_kpts, gt_vis)), dim=1)
        losses.update(
            self.refinement_losses(heatmaps, embedding, initial, gt_kpts,
                                   gt_vis, gt_areas))
        return losses

    def dense_losses(self, heatmaps: Tensor, displacements: Tensor,
                     batch_data_samples: OptSampleList) -> dict:
        """Heatmap and offset losses against the codec's targets."""
        K = self.num_keypoints
        fields = [d.gt_fields for d in batch_data_samples]
        gt_heatmaps = torch.stack([f.heatmaps for f in fields])
        if gt_heatmaps.shape[1] != K + 1:
            raise ValueError(
                f'the targets hold {gt_heatmaps.shape[1] - 1} keypoints but '
                f'LOGOCAPHead has num_keypoints={K}: the dataset and the '
                'head config disagree')
        weights = torch.stack([f.heatmap_weights for f in fields])
        if 'heatmap_mask' in fields[0]:
            weights = weights * torch.stack([f.heatmap_mask for f in fields])
        gt_disp = torch.stack([f.displacements for f in fields])
        disp_weights = torch.stack([f.displacement_weights for f in fields])
        return dict(
            loss_heatmap=self.heatmap_loss(heatmaps, gt_heatmaps,
                                           mask=weights),
            loss_offset=self.offset_loss(displacements, gt_disp,
                                         disp_weights))

    def refinement_losses(self, heatmaps: Tensor, embedding: Tensor,
                          initial: Tensor, gt_keypoints: Tensor,
                          gt_visible: Tensor, gt_areas: Tensor) -> dict:
        """KAM and refine losses over the gated proposals, as the authors.

        Only the proposals that pass the OKS gate enter the CMP (so its
        BatchNorm statistics come from them), and both losses are means over
        those proposals. With no gated proposal both losses are zeros that
        still reach the CMP and the heatmaps (defined, zero gradients).

        Args:
            heatmaps (Tensor): (B, K+1, h, w) predicted heatmaps.
            embedding (Tensor): (B, C, h, w).
            initial (Tensor): (B, N, K, 2) proposals, input px (no grad).
            gt_keypoints (Tensor): (B, G, K, 2), input px.
            gt_visible (Tensor): (B, G, K).
            gt_areas (Tensor): (B, G), input px^2.

        Returns:
            dict: ``loss_kam``, ``loss_refine`` and the logged gate figures
            ``oks_gate_ratio`` (gated / all proposals) and ``oks_gated_mean``.
        """
        K = self.num_keypoints
        with torch.no_grad():
            targets = oks_kernel_targets(self.local_poses(initial),
                                         gt_keypoints, gt_visible, gt_areas,
                                         self.sigmas, self.oks_threshold)
        gate = targets['gate']  # (B, N)
        gated = gate.float()
        logs = dict(
            oks_gate_ratio=gated.mean(),
            oks_gated_mean=(targets['best_oks'] * gated).sum() /
            gated.sum().clamp(min=1))
        if not bool(gate.any()):
            zero = sum(p.sum() for p in self.cmp.parameters()) * 0 + \
                embedding.sum() * 0 + heatmaps.sum() * 0
            return dict(loss_kam=zero, loss_refine=zero.clone(), **logs)
        selected, valid = gated_proposals(initial, gate)
        local = self.local_kem_features(embedding,
                                        self.local_poses(selected))[valid]
        kams = self.cmp(local)  # (M, K, S, S), raw
        weights = targets['weights'][gate]  # (M, K)
        loss_kam = self.kam_loss(kams, targets['oks'][gate], weights)
        refined = contextual_adaptation(
            self.global_kems(heatmaps[:, :K], selected)[valid], kams,
            self.adaptation_impl)
        with torch.no_grad():
            refine_targets = self.decoder.window_targets(
                initial[gate], targets['matched_keypoints'][gate],
                self.global_kem_size)
        loss_refine = self.refine_loss(refined, refine_targets, weights)
        return dict(loss_kam=loss_kam, loss_refine=loss_refine, **logs)

    @staticmethod
    def _padded_instances(batch_data_samples, ref: Tensor):
        """GT of the batch padded to G persons: (B, G, K, 2), (B, G, K),
        (B, G); padding persons have no visible keypoint."""
        labels = [d.gt_instance_labels for d in batch_data_samples]
        G = max(len(lb.instance_areas) for lb in labels)
        B, K = len(labels), ref.shape[1] - 1
        kpts = ref.new_zeros(B, G, K, 2)
        vis = ref.new_zeros(B, G, K)
        areas = ref.new_ones(B, G)
        for b, lb in enumerate(labels):  # one copy per image, not per person
            n = len(lb.instance_areas)
            kpts[b, :n] = lb.instance_keypoints.to(ref)
            vis[b, :n] = lb.instance_keypoints_visible.to(ref)
            areas[b, :n] = lb.instance_areas.to(ref)
        return kpts, vis, areas

    def _gt_center_proposals(self, displacements: Tensor, gt_kpts: Tensor,
                             gt_vis: Tensor) -> Tensor:
        """Initial poses decoded at the GT centre cells: (B, G, K, 2)."""
        B, _, h, w = displacements.shape
        K = self.num_keypoints
        n_vis = gt_vis.sum(-1, keepdim=True).clamp(min=1)
        centers = (gt_kpts * gt_vis[..., None]).sum(2) / n_vis
        cells = self.decoder.to_heatmap(centers).round().long()
        cells[..., 0].clamp_(0, w - 1)
        cells[..., 1].clamp_(0, h - 1)
        index = cells[..., 1] * w + cells[..., 0]  # (B, G)
        G = index.shape[1]
        disp = displacements.reshape(B, 2 * K, h * w).gather(
            2, index[:, None].expand(B, 2 * K, G))
        disp = disp.reshape(B, K, 2, G).permute(0, 3, 1, 2)
        return self.decoder.to_input(cells[:, :, None].to(disp) + disp)

    # ---------------------------------------------------------------- predict
    def predict(self,
                feats,
                batch_data_samples: OptSampleList,
                test_cfg: ConfigType = {}):
        """Poses in input space (numpy), one ``InstanceData`` per image.

        ``test_cfg``: ``flip_test`` (feats are then [orig, flipped]), ``mode``
        (one of 'full', 'baseline', 'kems_only', 'kams_only'),
        ``max_proposals``, ``nms_dist_thr``, ``nms_joints_thr``,
        ``max_num_people``, ``nms_order`` ('score', default: MMPose's
        ``nearby_joints_nms``, best pose score first; 'proposal': the
        authors' pose NMS, visiting the poses in centre-score order, see
        ``models/pose_nms.py``), ``output_heatmaps``.

        Images padded to the batch size (``pad_shape`` in their meta smaller
        than the batch) are decoded on their own cells
        only (:meth:`valid_cells`). The features of a padded image still
        differ from the image's alone near (and, through deep receptive
        fields, beyond) the padding; ``LOGOCAPPoseEstimator`` runs each image
        size on its own for results independent of the batch.
        """
        mode = test_cfg.get('mode', 'full')
        if mode not in MODES:
            raise ValueError(f'test_cfg.mode must be one of {MODES}, got '
                             f'{mode!r}')
        if test_cfg.get('nms_order', 'score') not in NMS_ORDERS:
            raise ValueError(f'test_cfg.nms_order must be one of '
                             f'{NMS_ORDERS}, got {test_cfg["nms_order"]!r}')
        K = self.num_keypoints
        if test_cfg.get('flip_test', False):
            if not (isinstance(feats, list) and len(feats) == 2):
                raise ValueError('flip_test expects feats as [orig, flipped]')
            flip_indices = batch_data_samples[0].metainfo['flip_indices']
            if len(flip_indices) != K:
                raise ValueError(f'flip_indices has {len(flip_indices)} '
                                 f'entries, the head has {K} keypoints')
            heatmaps, displacements, embedding = self.forward(feats[0])
            hm_f, disp_f, _ = self.forward(feats[1])
            heatmaps = (heatmaps + flip_heatmaps(
                hm_f, flip_mode='heatmap', flip_indices=list(flip_indices) +
                [K], shift_heatmap=False)) / 2
            displacements = (displacements + flip_heatmaps(
                disp_f, flip_mode='offset', flip_indices=flip_indices,
                shift_heatmap=False)) / 2
        else:
            heatmaps, displacements, embedding = self.forward(feats)

        # images padded to the batch's size: decode and refine each on its
        # own cells only, so that no proposal comes from the padding and the
        # KEMs read what they read for the image alone
        sizes = self.valid_cells(batch_data_samples, heatmaps.shape)
        preds = [None] * len(sizes)
        for (h, w), index in self._group_by_size(sizes):
            if len(index) == len(sizes):
                maps = (heatmaps[..., :h, :w], displacements[..., :h, :w],
                        embedding[..., :h, :w])
            else:
                maps = (heatmaps[index, :, :h, :w],
                        displacements[index, :, :h, :w],
                        embedding[index, :, :h, :w])
            for i, pred in zip(index, self._predict_maps(*maps, mode,
                                                         test_cfg)):
                preds[i] = pred
        if test_cfg.get('output_heatmaps', False):
            fields = [
                PixelData(heatmaps=hm[:, :h, :w], displacements=d[:, :h, :w])
                for hm, d, (h, w) in zip(heatmaps.detach(),
                                         displacements.detach(), sizes)
            ]
            return preds, fields
        return preds

    def valid_cells(self, batch_data_samples: OptSampleList,
                    map_shape: Sequence[int]) -> List[Tuple[int, int]]:
        """(h, w) of the map cells that each image covers.

        The data preprocessor pads the images of a batch at the bottom and
        right to the largest one and records each image's own size as
        ``pad_shape``; cells past it are padding. Without ``pad_shape`` (or
        without data samples), the whole map.

        Args:
            map_shape (Sequence[int]): (B, C, H, W) of the head's maps.
        """
        B, H, W = map_shape[0], map_shape[-2], map_shape[-1]
        if batch_data_samples is None or len(batch_data_samples) != B:
            return [(H, W)] * B
        sizes = []
        for sample in batch_data_samples:
            shape = sample.metainfo.get('pad_shape')
            if shape is None:
                sizes.append((H, W))
                continue
            h = min(H, int(np.ceil(shape[0] / self.stride)))
            w = min(W, int(np.ceil(shape[1] / self.stride)))
            sizes.append((h, w))
        return sizes

    @staticmethod
    def _group_by_size(sizes):
        """[((h, w), [indices])], in order of first appearance."""
        groups = {}
        for i, size in enumerate(sizes):
            groups.setdefault(size, []).append(i)
        return list(groups.items())

    def _predict_maps(self, heatmaps: Tensor, displacements: Tensor,
                      embedding: Tensor, mode: str,
                      test_cfg: ConfigType) -> List[InstanceData]:
        """Decode, refine and pack the poses of images of one map size."""
        K = self.num_keypoints
        with record_function('logocap/decode'):
            initial, center_scores, valid = self.decoder.decode_batch(
                heatmaps, displacements, test_cfg.get('max_proposals'))
            n = int(valid.sum(1).max())  # valid is a prefix of each row
            initial, center_scores = initial[:, :n], center_scores[:, :n]
            valid = valid[:, :n]
        keypoints, scores = self._refine(mode, heatmaps[:, :K], embedding,
                                         initial)
        scores = scores * center_scores[..., None]
        return self._pack(keypoints, scores, valid, test_cfg)

    def _refine(self, mode: str, keypoint_heatmaps: Tensor, embedding: Tensor,
                initial: Tensor) -> Tuple[Tensor, Tensor]:
        """Final keypoints (B, N, K, 2) and scores (B, N, K) of one mode."""
        B, N, K, _ = initial.shape
        if mode == 'baseline':
            scores = sample_points(keypoint_heatmaps, initial.reshape(B, -1, 2),
                                   self.stride)  # (B, K, N*K)
            scores = scores.reshape(B, K, N, K).diagonal(dim1=1, dim2=3)
            return initial, scores
        if mode != 'kems_only':
            kams = self.kams(embedding,
                             self.local_poses(initial)).clamp(0, 1)
        if mode == 'kams_only':
            with record_function('logocap/decode'):
                offsets, scores = top2_decode(kams.flatten(0, 1),
                                              self.top2_lambda)
                # KAM cells -> pixels: each keypoint's local grid step
                step = self.kem_offsets[:, 0, 1, 0] - self.kem_offsets[:, 0,
                                                                       0, 0]
                offsets = offsets * step[:, None]
            return initial + offsets.reshape(B, N, K, 2), scores.reshape(
                B, N, K)
        with record_function('logocap/global_kem_adaptation'):
            maps = self.global_kems(keypoint_heatmaps, initial)
            if mode == 'full':
                maps = self.adapt(maps, kams)
        with record_function('logocap/decode'):
            offsets, scores = top2_decode(maps.flatten(0, 1), self.top2_lambda)
        return initial + offsets.reshape(B, N, K, 2), scores.reshape(B, N, K)

    def _pack(self, keypoints: Tensor, scores: Tensor, valid: Tensor,
              test_cfg: ConfigType) -> List[InstanceData]:
        """Pose score filter, pose NMS and numpy packing, per image."""
        keypoints = keypoints.detach().cpu().numpy()
        scores = scores.detach().cpu().numpy()
        valid = valid.cpu().numpy() & (scores.mean(-1) > 0)
        preds = []
        for kpts, kpt_scores, keep in zip(keypoints, scores, valid):
            kpts, kpt_scores = kpts[keep], kpt_scores[keep]
            nms_thr = test_cfg.get('nms_dist_thr', 0.05)
            if len(kpts) > 0 and nms_thr > 0:
                order = self._pose_nms(kpts, kpt_scores, nms_thr, test_cfg)
                kpts, kpt_scores = kpts[order], kpt_scores[order]
            bboxes = np.concatenate((kpts.min(1), kpts.max(1)), axis=1) \
                if len(kpts) else np.zeros((0, 4), np.float32)
            preds.append(
                InstanceData(
                    keypoints=kpts,
                    keypoint_scores=kpt_scores,
                    bboxes=bboxes,
                    bbox_scores=kpt_scores.mean(-1)))
        return preds

    @staticmethod
    def _pose_nms(kpts: np.ndarray, kpt_scores: np.ndarray, nms_thr: float,
                  test_cfg: ConfigType) -> List[int]:
        """Indices of the poses (P, K, 2) kept by the pose NMS that
        ``test_cfg.nms_order`` selects, scored by their mean keypoint score."""
        joints_thr = test_cfg.get('nms_joints_thr', None)
        max_dets = test_cfg.get('max_num_people', 30)
        if test_cfg.get('nms_order', 'score') == 'proposal':
            return pose_nms_in_order(kpts, kpt_scores.mean(-1), nms_thr,
                                     joints_thr, max_dets)
        return nearby_joints_nms(
            [dict(keypoints=k, score=s) for k, s in zip(kpts, kpt_scores)],
            nms_thr, joints_thr, score_per_joint=True, max_dets=max_dets)
