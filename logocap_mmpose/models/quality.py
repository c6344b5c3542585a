"""A learned pose-quality score: each refined pose's OKS with its
best-matching person, regressed from what the refinement already computes.

The pose score decides the order of the poses, and COCO AP depends on that
order. The head's score is the refined heatmap value times the centre score;
the quality head of ``quality_cfg`` (off by default) predicts instead how
well the pose fits a person, as OKS-Net does for top-down models. Its input
(``quality_cfg.inputs``, from :data:`QUALITY_INPUTS`) is features of the
refinement, per pose:

- ``'scores'``: the K keypoint scores of the refinement and the centre score;
- ``'kam_stats'``: per keypoint, the maximum and the mean of its clamped KAM
  (the KAMs are trained towards the OKS of each local KEM cell);
- ``'cmp_pool'``: the CMP's last hidden features (before its 1x1 output
  conv), averaged over the S x S cells.

Its target is the refined pose's OKS (:func:`~.losses.pose_oks`, the OKS of
the training targets and of the upper-bound tool). By default the features
are computed without gradient, with the CMP in eval mode, so that the quality
loss trains the quality head only and the rest of training is unchanged.
``test_cfg.pose_score`` ('heatmap', 'quality' or 'product') picks the score.

Shapes: B images, N proposals, K keypoints, S x S KAMs, D features.
"""
from typing import Optional, Sequence

import torch
import torch.nn as nn
from torch import Tensor

QUALITY_INPUTS = ('scores', 'kam_stats', 'cmp_pool')
POSE_SCORES = ('heatmap', 'quality', 'product')


class PooledCMP:
    """The head's CMP, also keeping its last hidden features averaged over
    the cells (``pooled``, (M, C)) of the latest call: a drop-in ``cmp`` for
    ``refinement.refine``."""

    def __init__(self, cmp: nn.Module):
        self.cmp = cmp
        self.pooled: Optional[Tensor] = None

    def __call__(self, local_kems: Tensor) -> Tensor:
        hidden = self.cmp.layers[:-1](local_kems)
        self.pooled = hidden.mean((-2, -1))
        return self.cmp.layers[-1](hidden)


def quality_features(inputs: Sequence[str], scores: Tensor,
                     center_scores: Tensor, kams: Optional[Tensor],
                     pooled: Optional[Tensor]) -> Tensor:
    """The quality head's input per pose.

    Args:
        inputs (Sequence[str]): the groups of :data:`QUALITY_INPUTS`, in
            that order whatever the order given.
        scores (Tensor): (B, N, K) keypoint scores of the refinement.
        center_scores (Tensor): (B, N).
        kams (Tensor, optional): (B, N, K, S, S) clamped KAMs.
        pooled (Tensor, optional): (B * N, C) pooled CMP features.

    Returns:
        Tensor: (B, N, D).
    """
    B, N, K = scores.shape
    parts = []
    if 'scores' in inputs:
        parts += [scores, center_scores[..., None]]
    if 'kam_stats' in inputs:
        cells = kams.flatten(-2)
        parts += [cells.amax(-1), cells.mean(-1)]
    if 'cmp_pool' in inputs:
        parts.append(pooled.reshape(B, N, -1))
    return torch.cat(parts, -1)


def feature_size(inputs: Sequence[str], num_keypoints: int,
                 cmp_channels: int) -> int:
    """D of :func:`quality_features`."""
    sizes = dict(scores=num_keypoints + 1, kam_stats=2 * num_keypoints,
                 cmp_pool=cmp_channels)
    return sum(sizes[name] for name in QUALITY_INPUTS if name in inputs)


class PoseQualityHead(nn.Module):
    """A small MLP from :func:`quality_features` to the predicted OKS in
    (0, 1).

    Args:
        in_features (int): D.
        hidden (int): width of its two hidden layers.
        inputs (Sequence[str]): the feature groups it reads
            (:data:`QUALITY_INPUTS`).
    """

    def __init__(self, in_features: int, hidden: int = 64,
                 inputs: Sequence[str] = QUALITY_INPUTS):
        super().__init__()
        self.inputs = tuple(inputs)
        self.mlp = nn.Sequential(
            nn.Linear(in_features, hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, 1))

    def forward(self, features: Tensor) -> Tensor:
        """(B, N, D) -> (B, N) predicted OKS."""
        return torch.sigmoid(self.mlp(features)).squeeze(-1)


def build_quality_head(quality_cfg: dict, num_keypoints: int,
                       cmp_channels: int) -> PoseQualityHead:
    """The quality head of a complete ``quality_cfg``, built without
    drawing from the global random generator (so that turning it on leaves
    every other weight's initialisation, and training, as it was)."""
    inputs = quality_cfg['inputs']
    unknown = sorted(set(inputs) - set(QUALITY_INPUTS))
    if unknown or not inputs:
        raise ValueError(f'quality_cfg.inputs must be a non-empty subset of '
                         f'{QUALITY_INPUTS}, got {tuple(inputs)}')
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(quality_cfg['seed'])
        return PoseQualityHead(
            feature_size(inputs, num_keypoints, cmp_channels),
            quality_cfg['hidden'], inputs)


def predicted_quality(quality: Optional[PoseQualityHead], scores: Tensor,
                      center_scores: Tensor, kams: Optional[Tensor],
                      cmp) -> Optional[Tensor]:
    """The predicted OKS (B, N) of refined poses.

    Args:
        quality (PoseQualityHead, optional): a head's ``quality``.
        scores (Tensor): (B, N, K) the refinement's keypoint scores.
        center_scores (Tensor): (B, N).
        kams (Tensor, optional): (B, N, K, S, S) clamped KAMs.
        cmp: the :class:`PooledCMP` (or CMP) the refinement called.

    Returns:
        Tensor | None: None without a quality head or without the
        features it reads (a mode without KAMs or CMP).
    """
    inputs = () if quality is None else quality.inputs
    pooled = getattr(cmp, 'pooled', None)
    if not inputs or ('kam_stats' in inputs and kams is None) or (
            'cmp_pool' in inputs and pooled is None):
        return None
    return quality(
        quality_features(inputs, scores, center_scores, kams, pooled))


def scored_by(how: str, scores: Tensor,
              quality: Optional[Tensor]) -> Tensor:
    """Keypoint scores for ``test_cfg.pose_score``.

    Args:
        how (str): 'heatmap' (``scores`` unchanged), 'quality' (every
            keypoint scored by the pose's predicted OKS) or 'product' (each
            score times it).
        scores (Tensor): (B, N, K) final keypoint scores.
        quality (Tensor, optional): (B, N) predicted OKS.

    Returns:
        Tensor: (B, N, K); the keypoints are never changed.

    Raises:
        ValueError: an unknown ``how``, or no quality head for it.
    """
    if how not in POSE_SCORES:
        raise ValueError(f'test_cfg.pose_score must be one of {POSE_SCORES}, '
                         f'got {how!r}')
    if how == 'heatmap':
        return scores
    if quality is None:
        raise ValueError(f"test_cfg.pose_score={how!r} needs the head's "
                         'quality head (model.head.quality_cfg) and a mode '
                         "that refines ('full')")
    if how == 'quality':
        return quality[..., None].expand_as(scores)
    return scores * quality[..., None]
