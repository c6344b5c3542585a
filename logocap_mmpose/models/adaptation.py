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


def fft_size(n: int) -> int:
    """Smallest size >= n with no prime factor above 7 (fast FFT sizes; a
    prime size such as 107 = 97 + 11 - 1 is several times slower)."""
    size = n
    while True:
        rest = size
        for p in (2, 3, 5, 7):
            while rest % p == 0:
                rest //= p
        if rest == 1:
            return size
        size += 1


def contextual_adaptation(global_kems: Tensor, kams: Tensor,
                          impl: str = 'conv') -> Tensor:
    """Convolve each global KEM with its KAM (divided by S*S).

    Args:
        global_kems (Tensor): (M, K, a, a), already reweighed.
        kams (Tensor): (M, K, S, S).
        impl (str): ``'conv'``, a grouped ``conv2d`` with one group per
            (proposal, keypoint), as the authors do; or ``'fft'``, the same
            true convolution through 2-D FFTs (equal up to float rounding,
            and cheaper on CPU for large windows).

    Returns:
        Tensor: (M, K, a, a) refined heatmap windows.
    """
    M, K, a, _ = global_kems.shape
    S = kams.shape[-1]
    if M == 0:
        return global_kems
    if impl == 'fft':
        # any size >= a + S - 1 gives the linear (not circular) convolution
        size = fft_size(a + S - 1)
        spectrum = torch.fft.rfft2(global_kems, s=(size, size)) * \
            torch.fft.rfft2(kams / (S * S), s=(size, size))
        full = torch.fft.irfft2(spectrum, s=(size, size))
        return full[..., S // 2:S // 2 + a, S // 2:S // 2 + a]
    if impl != 'conv':
        raise ValueError(f"impl must be 'conv' or 'fft', got {impl!r}")
    kernel = torch.flip(kams / (S * S), dims=(2, 3)).reshape(M * K, 1, S, S)
    out = F.conv2d(
        global_kems.reshape(1, M * K, a, a), kernel, padding=S // 2,
        groups=M * K)
    return out.reshape(M, K, a, a)


def top2_decode(maps: Tensor, lam: float = 0.75) -> Tuple[Tensor, Tensor]:
    """Convex average of the two largest cells of each map.

    Args:
        maps (Tensor): (M, K, a, a).
        lam (float): weight of the largest cell (1: the arg-max cell and
            its value).

    Returns:
        tuple: ``offsets`` (M, K, 2) as (x, y) from the window centre and
        ``scores`` (M, K).
    """
    M, K, a, _ = maps.shape
    values, index = maps.reshape(M, K, a * a).topk(2, dim=-1)
    steps = window_steps(a, maps.dtype, maps.device)
    xy = torch.stack((steps[index % a], steps[index // a]), -1)  # (M,K,2,2)
    # convex weights as scalars: no host-to-device copy on the hot path
    offsets = xy[:, :, 0] * lam + xy[:, :, 1] * (1 - lam)
    scores = values[..., 0] * lam + values[..., 1] * (1 - lam)
    return offsets, scores
