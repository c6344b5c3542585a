"""LOGOCAPHead: wires the LOGO-CAP stages (see ``models/kem.py`` for the
KEM / KAM / CMP vocabulary).

feats -> heatmaps (K keypoints + centre), offsets, embedding
      -> initial poses (codec: centre NMS + offsets)
      -> local KEMs -> embedding features -> CMP -> KAMs
      -> global KEMs (heatmap windows, Gaussian reweighing)
      -> contextual adaptation (KAMs as dynamic kernels) -> top-2 decoding.
The head only orchestrates; each stage is a function or module of its own,
and its settings are grouped as ``head_config.py`` describes.
Shapes: B images, N proposals per image, M = B*N, K keypoints.
"""
from typing import Callable, List, Optional, Sequence, Tuple

import torch
from mmengine.structures import InstanceData, PixelData
from torch import Tensor
from torch.profiler import record_function

from mmpose.models.heads.base_head import BaseHead
from mmpose.registry import KEYPOINT_CODECS, MODELS
from mmpose.utils.typing import ConfigType, OptConfigType, OptSampleList
from ...datasets.metainfo import (resolve_keypoint_sigmas,
                                  resolve_metainfo_file)
from .. import profiling, refinement
from ..attentive_norm import AttentiveNorm2d
from ..branches import conv_branch
from ..inference import fused_dense_outputs, group_by_size, valid_cells
from ..kem import keypoint_scales, local_kem_offsets
from ..losses import dense_losses, quality_loss, refinement_losses
from ..message_passing import ConvMessagePassing
from ..quality import (PooledCMP, build_quality_head, predicted_quality,
                       scored_by)
from ..pose_nms import check_nms_order, nms_and_pack
from ..proposals import (gt_center_proposals, inference_proposals,
                         padded_instances)
from ..refinement import (MODES, RefinementGeometry, check_mode,
                          kam_pose_scores)
from .checkpoint_guard import HeadCheckpointMismatchError, check_head_state_dict
from .head_config import (group_head_settings, quality_settings,
                          training_settings)

#: an exported refinement: (heatmaps (B, K+1, h, w), embedding (B, C, h, w),
#: initial (B, N, K, 2)) -> keypoints (B, N, K, 2), scores (B, N, K)
RefinementFn = Callable[[Tensor, Tensor, Tensor], Tuple[Tensor, Tensor]]
__all__ = ['LOGOCAPHead', 'HeadCheckpointMismatchError', 'MODES',
           'resolve_metainfo_file']


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
        branch_cfg, kem_cfg, cmp_cfg, adaptation_cfg (dict, optional): the
            grouped architecture settings (the branches; the KEM geometry
            and sampling; the message passing; the contextual adaptation and
            decoding), each completed by the defaults of ``head_config.py``,
            which lists their keys.
        heatmap_loss / offset_loss / kam_loss / refine_loss (dict): losses.
        decoder (dict): the :class:`LOGOCAPLabel` codec config.
        quality_cfg (dict, optional): the learned pose-quality score
            (``models/quality.py``; ``head_config.QUALITY_CFG``); None: off.
        init_cfg (dict, optional): initialisation config.

    Training settings come from ``model.train_cfg`` (``num_proposals`` 30,
    ``oks_threshold`` 0.5, ``inject_gt_proposals`` False); test settings
    from ``model.test_cfg`` (see :meth:`predict`).
    """

    def __init__(self,
                 in_channels: int,
                 num_keypoints: int = 17,
                 keypoint_sigmas: Optional[Sequence[float]] = None,
                 metainfo: Optional[dict] = None,
                 branch_cfg: OptConfigType = None,
                 kem_cfg: OptConfigType = None,
                 cmp_cfg: OptConfigType = None,
                 adaptation_cfg: OptConfigType = None,
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
                 quality_cfg: OptConfigType = None,
                 init_cfg: OptConfigType = None):
        if init_cfg is None:
            init_cfg = [
                dict(type='Normal', layer=['Conv2d'], std=0.001, bias=0),
                dict(type='Constant', layer='BatchNorm2d', val=1)
            ]
        super().__init__(init_cfg)
        cfgs = group_head_settings(
            dict(branch_cfg=branch_cfg, kem_cfg=kem_cfg, cmp_cfg=cmp_cfg,
                 adaptation_cfg=adaptation_cfg))
        branch, kem, cmp, adapt = (cfgs['branch_cfg'], cfgs['kem_cfg'],
                                   cfgs['cmp_cfg'], cfgs['adaptation_cfg'])
        K = self.num_keypoints = num_keypoints
        self.in_channels = in_channels
        self.embedding_channels = branch['embedding_channels']
        sigmas = resolve_keypoint_sigmas(keypoint_sigmas, metainfo, K)
        self.register_buffer('sigmas', torch.as_tensor(sigmas).float(),
                             persistent=False)
        self.register_buffer(
            'kem_offsets',
            local_kem_offsets(keypoint_scales(sigmas), kem['local_size'],
                              kem['local_extent']),
            persistent=False)
        self.global_kem_size = kem['global_size']
        self.reweigh_sigma = kem['reweigh_sigma'] or (self.global_kem_size -
                                                      1) / 6
        self.sampling = kem['sampling']
        self.adaptation_impl = adapt['impl']
        self.top2_lambda = adapt['top2_lambda']
        self.kams_only_decode = adapt['kams_only_decode']

        norm, act = branch['norm_cfg'], branch['act_cfg']
        self.heatmap_layers = conv_branch(in_channels,
                                          branch['heatmap_channels'], K + 1,
                                          norm, act)
        self.offset_layers = conv_branch(in_channels,
                                         branch['offset_channels'], 2 * K,
                                         norm, act)
        self.embedding_layers = conv_branch(in_channels,
                                            branch['embedding_channels'],
                                            None, norm, act)
        self.cmp = ConvMessagePassing(K * branch['embedding_channels'], K,
                                      cmp['channels'], cmp['norm_cfg'])
        self.heatmap_loss = MODELS.build(heatmap_loss)
        self.offset_loss = MODELS.build(offset_loss)
        self.kam_loss = MODELS.build(kam_loss)
        self.refine_loss = MODELS.build(refine_loss)
        self.decoder = KEYPOINT_CODECS.build(decoder) if decoder else None
        self.quality_cfg = quality_settings(quality_cfg)
        self.quality = None if self.quality_cfg is None else \
            build_quality_head(self.quality_cfg, K, self.cmp.hidden_channels)
        if self.quality is not None:
            self.quality_loss = MODELS.build(self.quality_cfg['loss'])

    def init_weights(self):
        super().init_weights()
        for m in self.modules():  # nested below the Normal conv init
            if isinstance(m, AttentiveNorm2d):
                m.init_weights()

    def _load_from_state_dict(self, state_dict, prefix, *args):
        check_head_state_dict(self, state_dict, prefix)
        super()._load_from_state_dict(state_dict, prefix, *args)

    @property
    def stride(self) -> float:
        if self.decoder is None:
            raise RuntimeError('LOGOCAPHead needs `decoder` (a LOGOCAPLabel '
                               'config) to decode and to compute losses')
        return self.decoder.stride

    # ----------------------------------------------------------------- stages
    def forward(self, feats: Tuple[Tensor]) -> Tuple[Tensor, Tensor, Tensor]:
        """Dense outputs from the last (stride-4) feature map.

        Returns:
            tuple: heatmaps (B, K+1, h, w) (centre last), displacements
            (B, 2K, h, w) and embedding (B, C, h, w).
        """
        x = self._head_input(feats)
        return (self.heatmap_layers(x), self.offset_layers(x),
                self.embedding_layers(x))

    def forward_maps(self, feats: Tuple[Tensor]) -> Tuple[Tensor, Tensor]:
        """Heatmaps (B, K+1, h, w) and displacements (B, 2K, h, w) only: what
        the flipped image of a flip test needs (no embedding)."""
        x = self._head_input(feats)
        return self.heatmap_layers(x), self.offset_layers(x)

    def _head_input(self, feats: Tuple[Tensor]) -> Tensor:
        x = feats[-1]
        if x.shape[1] != self.in_channels:
            raise ValueError(f'LOGOCAPHead expects {self.in_channels} input '
                             f'channels, got {x.shape[1]}')
        return x

    @property
    def geometry(self) -> RefinementGeometry:
        """The refinement geometry of the current settings."""
        return RefinementGeometry.of_head(self)

    # ------------------------------------------------------------------- loss
    def loss(self, feats: Tuple[Tensor], batch_data_samples: OptSampleList,
             train_cfg: ConfigType = {}) -> dict:
        """Heatmap, offset, OKS kernel (KAM) and refined-heatmap losses;
        ``train_cfg`` is ``model.train_cfg`` (see ``head_config.py``)."""
        cfg = training_settings(train_cfg)
        heatmaps, displacements, embedding = self.forward(feats)
        losses = dense_losses(heatmaps, displacements, batch_data_samples,
                              self.heatmap_loss, self.offset_loss)
        gt = padded_instances(batch_data_samples, heatmaps)
        with torch.no_grad():
            decoded, center_scores, _ = self.decoder.decode_batch(
                heatmaps.detach(), displacements.detach(),
                cfg['num_proposals'], thr=float('-inf'))
            initial = torch.cat((decoded, gt_center_proposals(
                self.decoder, displacements.detach(), *gt[:2])), dim=1) \
                if cfg['inject_gt_proposals'] else decoded
        losses.update(
            refinement_losses(self, heatmaps, embedding, initial, *gt,
                              oks_threshold=cfg['oks_threshold']))
        if self.quality is not None:
            losses.update(quality_loss(self, heatmaps, embedding, decoded,
                                       center_scores, *gt))
        return losses

    # ---------------------------------------------------------------- predict
    def predict(self, feats, batch_data_samples: OptSampleList,
                test_cfg: ConfigType = {}):
        """Poses in input space (numpy), one ``InstanceData`` per image.

        ``test_cfg`` is ``model.test_cfg``; ``head_config.TEST_CFG`` lists
        its keys and defaults. With ``flip_test`` feats are [orig, flipped];
        with ``scales`` one entry per scale (``models/inference.py``).
        Images padded to the batch size (``pad_shape`` smaller than the
        batch) are decoded on their own cells only; their features still
        differ from the image's alone near the padding, so
        ``LOGOCAPPoseEstimator`` runs each image size on its own.
        """
        maps = self.dense_maps(feats, batch_data_samples, test_cfg)
        return self.predict_from_maps(*maps, batch_data_samples, test_cfg)

    def dense_maps(self, feats, batch_data_samples: OptSampleList,
                   test_cfg: ConfigType = {}) -> Tuple[Tensor, Tensor, Tensor]:
        """Heatmaps (B, K+1, h, w), displacements (B, 2K, h, w) and the
        scale-1 image pass's embedding (B, C, h, w), fused over flip and
        scales as :meth:`predict` decodes them (``test_cfg.flip_test`` and
        ``scales``; the batch gives ``flip_indices``)."""
        flip = test_cfg.get('flip_test', False)
        flip_indices = batch_data_samples[0].metainfo['flip_indices'] \
            if flip else None
        with record_function(profiling.DENSE):
            return fused_dense_outputs(self.forward, self.forward_maps, feats,
                                       flip, flip_indices,
                                       test_cfg.get('scales'))

    def predict_from_maps(self, heatmaps: Tensor, displacements: Tensor,
                          embedding: Tensor,
                          batch_data_samples: OptSampleList,
                          test_cfg: ConfigType = {},
                          refine_fn: Optional[RefinementFn] = None):
        """:meth:`predict` after the dense network: poses from heatmaps (B,
        K+1, h, w), displacements (B, 2K, h, w) and embedding (B, C, h, w),
        already fused over flips and scales.

        ``refine_fn`` (an exported refinement graph,
        ``deploy.ONNXRefinement.refine``) replaces the refinement of
        ``test_cfg.mode``; it computes no KAMs, so ``kam_score`` fails.
        """
        mode = check_mode(test_cfg.get('mode', 'full'))
        check_nms_order(test_cfg.get('nms_order', 'score'))
        sizes = valid_cells(batch_data_samples, heatmaps.shape, self.stride)
        preds = [None] * len(sizes)
        for (h, w), index in group_by_size(sizes):
            pick = slice(None) if len(index) == len(sizes) else index
            maps = [t[pick, :, :h, :w]
                    for t in (heatmaps, displacements, embedding)]
            for i, pred in zip(index, self.predict_one_size(
                    *maps, mode, test_cfg, refine_fn)):
                preds[i] = pred
        if test_cfg.get('output_heatmaps', False):
            return preds, [
                PixelData(heatmaps=hm[:, :h, :w], displacements=d[:, :h, :w])
                for hm, d, (h, w) in zip(heatmaps.detach(),
                                         displacements.detach(), sizes)
            ]
        return preds

    def proposals(self, heatmaps: Tensor, displacements: Tensor,
                  test_cfg: ConfigType = {}
                  ) -> Tuple[Tensor, Tensor, Tensor]:
        """The proposals that :meth:`predict` refines
        (``proposals.inference_proposals``)."""
        with record_function(profiling.DECODE):
            return inference_proposals(self.decoder, heatmaps,
                                       displacements, test_cfg)

    def predict_one_size(self, heatmaps: Tensor, displacements: Tensor,
                         embedding: Tensor, mode: str, test_cfg: ConfigType,
                         refine_fn: Optional[RefinementFn] = None
                         ) -> List[InstanceData]:
        """Decode, refine and pack the poses of images of one map size
        (``refine_fn``: see :meth:`predict_from_maps`)."""
        initial, center_scores, valid = self.proposals(heatmaps,
                                                       displacements,
                                                       test_cfg)
        pose_score = test_cfg.get('pose_score', 'heatmap')
        cmp = self.cmp if pose_score == 'heatmap' else PooledCMP(self.cmp)
        if refine_fn is None:
            keypoints, scores, kams = refinement.refine(
                mode, self.geometry, cmp, heatmaps[:, :self.num_keypoints],
                embedding, initial)
        else:
            (keypoints, scores), kams = refine_fn(heatmaps, embedding,
                                                  initial), None
        quality = None if pose_score == 'heatmap' else predicted_quality(
            self.quality, scores, center_scores, kams, cmp)
        scores = kam_pose_scores(scores, kams, test_cfg.get('kam_score'))
        scores = scored_by(pose_score, scores * center_scores[..., None],
                           quality)
        with record_function(profiling.POSE_NMS):
            return nms_and_pack(keypoints, scores, valid, test_cfg)

    def refine(self, mode: str, keypoint_heatmaps: Tensor, embedding: Tensor,
               initial: Tensor) -> Tuple[Tensor, Tensor]:
        """Final keypoints (B, N, K, 2) and scores (B, N, K) of one mode of
        the paper's ablation (:data:`MODES`): ``refinement.refine`` with
        this head's geometry and CMP."""
        keypoints, scores, _ = refinement.refine(
            mode, self.geometry, self.cmp, keypoint_heatmaps, embedding,
            initial)
        return keypoints, scores
