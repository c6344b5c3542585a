"""Test-time helpers of the head: flip fusion, multi-scale fusion and the
padding of batches.

Multi-scale test (``test_cfg.scales``, e.g. ``[0.5, 1, 2]``): the estimator
runs the network on the input resized by each scale (sides rounded to a
multiple of ``multiscale_size_divisor``), the head fuses each scale's flip
pair as in single-scale testing, resizes the heatmaps and offsets to the
scale-1 map (bilinear, ``align_corners=False``, which is exact for this
package's cell-centre convention; offsets rescaled to scale-1 cells) and
averages them. Proposals, global KEMs and scores come from the averaged
maps; the local KEMs read the scale-1 embedding.

Shapes: B images, K keypoints, h x w maps of stride s.
"""
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np
import torch.nn.functional as F
from torch import Tensor

from mmpose.models.utils.tta import flip_heatmaps


def flip_fuse(heatmaps: Tensor, displacements: Tensor, heatmaps_flipped: Tensor,
              displacements_flipped: Tensor,
              flip_indices: Sequence[int]) -> Tuple[Tensor, Tensor]:
    """Average the maps of an image and of its horizontal flip.

    The heatmaps' centre channel (last) maps to itself; offsets are flipped
    as MMPose's ``flip_mode='offset'`` does. With cell ``i`` centred at input
    ``s*i + (s-1)/2`` the flip is an exact array flip (no heatmap shift).

    Args:
        heatmaps (Tensor): (B, K+1, h, w); ``heatmaps_flipped`` likewise.
        displacements (Tensor): (B, 2K, h, w); ``displacements_flipped``
            likewise.
        flip_indices (Sequence[int]): K entries.

    Returns:
        tuple: fused heatmaps and displacements.
    """
    K = displacements.shape[1] // 2
    if len(flip_indices) != K:
        raise ValueError(f'flip_indices has {len(flip_indices)} entries, '
                         f'the head has {K} keypoints')
    heatmaps = (heatmaps + flip_heatmaps(
        heatmaps_flipped.contiguous(), flip_mode='heatmap',
        flip_indices=list(flip_indices) + [K], shift_heatmap=False)) / 2
    displacements = (displacements + flip_heatmaps(
        displacements_flipped.contiguous(), flip_mode='offset', flip_indices=flip_indices,
        shift_heatmap=False)) / 2
    return heatmaps, displacements


def valid_cells(batch_data_samples, map_shape: Sequence[int],
                stride: float) -> List[Tuple[int, int]]:
    """(h, w) of the map cells that each image covers.

    The data preprocessor pads the images of a batch at the bottom and
    right to the largest one and records each image's own size as
    ``pad_shape``; cells past it are padding. Without ``pad_shape`` (or
    without data samples), the whole map.

    Args:
        batch_data_samples (Sequence[PoseDataSample], optional): the batch.
        map_shape (Sequence[int]): (B, C, H, W) of the head's maps.
        stride (float): input pixels per map cell.
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
        sizes.append((min(H, int(np.ceil(shape[0] / stride))),
                      min(W, int(np.ceil(shape[1] / stride)))))
    return sizes


def group_by_size(sizes: Sequence[Tuple[int, int]]):
    """[((h, w), [indices])], in order of first appearance."""
    groups = {}
    for i, size in enumerate(sizes):
        groups.setdefault(size, []).append(i)
    return list(groups.items())


def check_scales(scales: Optional[Sequence[float]]) -> List[float]:
    """``test_cfg.scales`` as a list of floats ([1.0] when None).

    Raises:
        ValueError: an empty list, a scale <= 0, or no scale 1 (the
            resolution the maps are fused at).
    """
    if scales is None:
        return [1.0]
    scales = [float(s) for s in scales]
    if not scales or min(scales) <= 0 or 1.0 not in scales:
        raise ValueError('test_cfg.scales must be positive and hold 1 (the '
                         f'resolution the maps are fused at), got {scales}')
    return scales


def scaled_input_size(height: int, width: int, scale: float,
                      divisor: int = 32) -> Tuple[int, int]:
    """(h, w) of the input at ``scale``: sides rounded to a multiple of
    ``divisor`` (at least one)."""
    return (max(divisor, int(round(height * scale / divisor)) * divisor),
            max(divisor, int(round(width * scale / divisor)) * divisor))


def dense_outputs(forward: Callable, feats, flip_test: bool,
                  flip_indices: Optional[Sequence[int]],
                  forward_flipped: Optional[Callable] = None):
    """The head's heatmaps, offsets and embedding of one scale, flip-fused
    when ``flip_test`` (``feats`` is then [orig, flipped]).

    Args:
        forward (Callable): feats -> (heatmaps, displacements, embedding).
        feats: the head's input, or [orig, flipped] with ``flip_test``.
        flip_test (bool): fuse the flipped image's maps.
        flip_indices (Sequence[int], optional): K entries, with flip_test.
        forward_flipped (Callable, optional): feats -> (heatmaps,
            displacements) only, for the flipped image (its embedding is
            never used); ``forward`` when None.
    """
    if not flip_test:
        return forward(feats)
    if not (isinstance(feats, list) and len(feats) == 2):
        raise ValueError('flip_test expects feats as [orig, flipped]')
    heatmaps, displacements, embedding = forward(feats[0])
    flipped = (forward_flipped or forward)(feats[1])
    heatmaps, displacements = flip_fuse(heatmaps, displacements,
                                        *flipped[:2], flip_indices)
    return heatmaps, displacements, embedding


def fuse_scales(outputs: Sequence[Tuple[Tensor, Tensor, Tensor]],
                base: int) -> Tuple[Tensor, Tensor, Tensor]:
    """Average the heatmaps and offsets of several scales at one resolution.

    Args:
        outputs (Sequence[tuple]): per scale, heatmaps (B, K+1, h_i, w_i),
            displacements (B, 2K, h_i, w_i) in cells of that map, and the
            embedding (B, C, h_i, w_i).
        base (int): index of the scale whose map size is kept (scale 1).

    Returns:
        tuple: heatmaps (B, K+1, h, w) and displacements (B, 2K, h, w)
        averaged over the scales, and the base scale's embedding.
    """
    h, w = outputs[base][0].shape[-2:]
    heatmaps, displacements = 0, 0
    for hm, disp, _ in outputs:
        hs, ws = hm.shape[-2:]
        if (hs, ws) != (h, w):
            hm = F.interpolate(hm, size=(h, w), mode='bilinear',
                               align_corners=False)
            disp = F.interpolate(disp, size=(h, w), mode='bilinear',
                                 align_corners=False)
            factor = disp.new_tensor([w / ws, h / hs]).repeat(
                disp.shape[1] // 2)  # x, y of every keypoint
            disp = disp * factor[None, :, None, None]
        heatmaps = heatmaps + hm
        displacements = displacements + disp
    n = len(outputs)
    return heatmaps / n, displacements / n, outputs[base][2]


def fused_dense_outputs(forward: Callable, forward_flipped: Callable, feats,
                        flip_test: bool,
                        flip_indices: Optional[Sequence[int]],
                        scales: Optional[Sequence[float]]
                        ) -> Tuple[Tensor, Tensor, Tensor]:
    """:func:`dense_outputs` of every scale of ``test_cfg.scales`` (feats
    then hold one entry per scale), fused at scale 1 by
    :func:`fuse_scales`; one scale's outputs as they are."""
    scales = check_scales(scales)
    if len(scales) == 1:
        return dense_outputs(forward, feats, flip_test, flip_indices,
                             forward_flipped)
    return fuse_scales([
        dense_outputs(forward, f, flip_test, flip_indices, forward_flipped)
        for f in feats
    ], scales.index(1.0))
