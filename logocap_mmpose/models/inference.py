"""Test-time helpers of the head: flip fusion and the padding of batches.

Shapes: B images, K keypoints, h x w maps of stride s.
"""
from typing import List, Sequence, Tuple

import numpy as np
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
        heatmaps_flipped, flip_mode='heatmap',
        flip_indices=list(flip_indices) + [K], shift_heatmap=False)) / 2
    displacements = (displacements + flip_heatmaps(
        displacements_flipped, flip_mode='offset', flip_indices=flip_indices,
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
