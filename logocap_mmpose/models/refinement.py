"""The four test modes of the paper's ablation (Table 5), one function each.

Each takes the head (for its stages: KAMs, global KEMs, adaptation, the KEM
grid and the top-2 weight), the keypoint heatmaps (B, K, h, w), the
embedding (B, C, h, w) and the initial poses (B, N, K, 2) in input pixels,
and returns the final keypoints (B, N, K, 2), scores (B, N, K) and the
clamped KAMs (B, N, K, S, S) it computed (None for the modes without):

- ``baseline``: the initial (centre-offset) poses, scored by their heatmaps;
- ``kems_only``: top-2 decoding of the reweighed global KEMs;
- ``kams_only``: the KAMs alone, cells scaled to pixels. As the authors'
  partial refinement, the largest cell scored by its value
  (``adaptation_cfg.kams_only_decode='argmax'``, the default), or the top-2
  average of the other modes (``'top2'``);
- ``full``: the paper's method, global KEMs adapted by the KAMs.

:func:`kam_pose_scores` turns the KAMs into keypoint scores
(``test_cfg.kam_score``, issue 20): the KAMs are trained towards the OKS of
each cell of the local window (the OKS kernel loss), so the largest cell of
a keypoint's KAM estimates how well that keypoint can be placed.
"""
from typing import Optional, Tuple

from torch import Tensor
from torch.profiler import record_function

from . import profiling
from .adaptation import top2_decode
from .kem import kam_cell_size, sample_points

Refined = Tuple[Tensor, Tensor, Optional[Tensor]]
KAM_SCORES = (None, 'product', 'replace')


def refine_baseline(head, keypoint_heatmaps: Tensor, embedding: Tensor,
                    initial: Tensor) -> Refined:
    """The initial poses, scored by their heatmaps (no refinement)."""
    B, N, K, _ = initial.shape
    scores = sample_points(keypoint_heatmaps, initial.reshape(B, -1, 2),
                           head.stride)  # (B, K, N*K)
    return (initial, scores.reshape(B, K, N, K).diagonal(dim1=1, dim2=3),
            None)


def refine_kams_only(head, keypoint_heatmaps: Tensor, embedding: Tensor,
                     initial: Tensor) -> Refined:
    """The KAMs alone, cells scaled to pixels: the arg-max cell and its
    value, or the top-2 average (``head.kams_only_decode``)."""
    kams = head.kams(embedding, head.local_poses(initial)).clamp(0, 1)
    with record_function(profiling.DECODE):
        offsets, scores = top2_decode(kams.flatten(0, 1),
                                      kams_only_lambda(head))
        offsets = offsets * kam_cell_size(head.kem_offsets)[:, None]
    return (initial + offsets.reshape(initial.shape),
            scores.reshape(initial.shape[:3]), kams)


def kams_only_lambda(head) -> float:
    """Weight of the largest cell in the ``kams_only`` decoding: 1 (the
    arg-max cell alone, the authors' partial refinement) or the head's
    ``top2_lambda``."""
    return 1.0 if head.kams_only_decode == 'argmax' else head.top2_lambda


def refine_kems_only(head, keypoint_heatmaps: Tensor, embedding: Tensor,
                     initial: Tensor) -> Refined:
    """Top-2 decoding of the reweighed global KEMs, no adaptation."""
    with record_function(profiling.GLOBAL_KEM_ADAPTATION):
        maps = head.global_kems(keypoint_heatmaps, initial)
    return decode_windows(head, initial, maps) + (None, )


def refine_full(head, keypoint_heatmaps: Tensor, embedding: Tensor,
                initial: Tensor) -> Refined:
    """The paper's method: global KEMs adapted by the KAMs."""
    kams = head.kams(embedding, head.local_poses(initial)).clamp(0, 1)
    with record_function(profiling.GLOBAL_KEM_ADAPTATION):
        maps = head.adapt(head.global_kems(keypoint_heatmaps, initial), kams)
    return decode_windows(head, initial, maps) + (kams, )


def decode_windows(head, initial: Tensor,
                   maps: Tensor) -> Tuple[Tensor, Tensor]:
    """Top-2 decoding of (B, N, K, a, a) windows centred on ``initial``."""
    with record_function(profiling.DECODE):
        offsets, scores = top2_decode(maps.flatten(0, 1), head.top2_lambda)
    return (initial + offsets.reshape(initial.shape),
            scores.reshape(initial.shape[:3]))


REFINERS = dict(
    baseline=refine_baseline,
    kems_only=refine_kems_only,
    kams_only=refine_kams_only,
    full=refine_full)


def kam_pose_scores(scores: Tensor, kams: Optional[Tensor],
                    how: Optional[str]) -> Tensor:
    """Keypoint scores with the pose quality the KAMs estimate.

    Args:
        scores (Tensor): (B, N, K) scores of the refinement mode.
        kams (Tensor, optional): (B, N, K, S, S) clamped KAMs.
        how (str, optional): ``None``: ``scores`` unchanged; ``'product'``:
            each score times the pose's mean over keypoints of the KAM
            maxima (ranks whole poses by their estimated OKS); ``'replace'``:
            each keypoint scored by its KAM maximum.

    Returns:
        Tensor: (B, N, K). Only scores change, never keypoints.

    Raises:
        ValueError: ``how`` unknown, or no KAMs (a mode without them).
    """
    if how not in KAM_SCORES:
        raise ValueError(f'test_cfg.kam_score must be one of {KAM_SCORES}, '
                         f'got {how!r}')
    if how is None:
        return scores
    if kams is None:
        raise ValueError(f'test_cfg.kam_score={how!r} needs the KAMs: use '
                         "test_cfg.mode 'full' or 'kams_only'")
    best = kams.flatten(-2).amax(-1)  # (B, N, K)
    if how == 'replace':
        return best
    return scores * best.mean(-1, keepdim=True)
