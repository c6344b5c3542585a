"""Local-global contextual adaptation and the top-2 decoding.

Each keypoint's KAM (S x S) becomes a dynamic kernel that is convolved, one
keypoint and one proposal at a time (a grouped convolution), with that
keypoint's Gaussian-reweighed global KEM (a x a). The kernel cells are
one-pixel steps, and the operation is a true convolution (the kernel is
flipped), so KAM mass at offset (dx, dy) moves the response by (+dx, +dy).
Shapes: M proposals, K keypoints.
"""
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .kem import window_steps


def contextual_adaptation(global_kems: Tensor, kams: Tensor) -> Tensor:
    """Convolve each global KEM with its KAM (divided by S*S).

    Args:
        global_kems (Tensor): (M, K, a, a), already reweighed.
        kams (Tensor): (M, K, S, S).

    Returns:
        Tensor: (M, K, a, a) refined heatmap windows.
    """
    M, K, a, _ = global_kems.shape
    S = kams.shape[-1]
    if M == 0:
        return global_kems
    kernel = torch.flip(kams / (S * S), dims=(2, 3)).reshape(M * K, 1, S, S)
    out = F.conv2d(
        global_kems.reshape(1, M * K, a, a), kernel, padding=S // 2,
        groups=M * K)
    return out.reshape(M, K, a, a)


def top2_decode(maps: Tensor, lam: float = 0.75) -> Tuple[Tensor, Tensor]:
    """Convex average of the two largest cells of each map.

    Args:
        maps (Tensor): (M, K, a, a).
        lam (float): weight of the largest cell.

    Returns:
        tuple: ``offsets`` (M, K, 2) as (x, y) from the window centre and
        ``scores`` (M, K).
    """
    M, K, a, _ = maps.shape
    values, index = maps.reshape(M, K, a * a).topk(2, dim=-1)
    steps = window_steps(a, maps.dtype, maps.device)
    xy = torch.stack((steps[index % a], steps[index // a]), -1)  # (M,K,2,2)
    weights = maps.new_tensor([lam, 1 - lam])
    offsets = (xy * weights[:, None]).sum(2)
    scores = (values * weights).sum(-1)
    return offsets, scores
