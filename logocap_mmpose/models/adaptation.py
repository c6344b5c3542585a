"""Local-global contextual adaptation and the top-2 decoding.

Each keypoint's KAM (S x S) becomes a dynamic kernel that is convolved, one
keypoint and one proposal at a time (a grouped convolution), with that
keypoint's Gaussian-reweighed global KEM (a x a). The kernel cells are
one-pixel steps, and the operation is a true convolution (the kernel is
flipped), so KAM mass at offset (dx, dy) moves the response by (+dx, +dy).

:func:`contextual_adaptation` computes it in one of three ways
(:data:`ADAPTATION_IMPLS`, ``adaptation_cfg.impl``), equal up to float
rounding (``tests/test_deploy/test_refinement_network.py``):

- ``'fft'``: 2-D FFTs (the default: 3-6x cheaper on CPU for 97 x 97
  windows);
- ``'conv'``: a grouped ``conv2d``, one group per (proposal, keypoint), as
  the authors compute it;
- ``'matmul'``: slices and one batched matrix product
  (:func:`adaptation_by_matmul`), the form an ONNX export traces with a
  free proposal count: the exporter converts neither ``rfft2`` nor a
  grouped convolution whose group count is the proposal count (the ONNX
  ``Conv``'s ``group`` attribute would fix it). The exported refinement
  uses it whatever ``impl`` the head has (``deploy/refinement_export.py``).

Shapes: M proposals, K keypoints.
"""
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .kem import window_steps

ADAPTATION_IMPLS = ('fft', 'conv', 'matmul')


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
        impl (str): one of :data:`ADAPTATION_IMPLS`: ``'conv'``, a grouped
            ``conv2d`` with one group per (proposal, keypoint), as the
            authors do; ``'fft'``, the same true convolution through 2-D
            FFTs (cheaper on CPU for large windows); ``'matmul'``,
            :func:`adaptation_by_matmul` (exportable to ONNX with a free
            proposal count). Equal up to float rounding.

    Returns:
        Tensor: (M, K, a, a) refined heatmap windows.
    """
    if impl not in ADAPTATION_IMPLS:
        raise ValueError(f'impl must be one of {ADAPTATION_IMPLS}, got '
                         f'{impl!r}')
    if impl == 'matmul':  # no branch on M: traced with any proposal count
        return adaptation_by_matmul(global_kems, kams)
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
    kernel = torch.flip(kams / (S * S), dims=(2, 3)).reshape(M * K, 1, S, S)
    out = F.conv2d(
        global_kems.reshape(1, M * K, a, a), kernel, padding=S // 2,
        groups=M * K)
    return out.reshape(M, K, a, a)


def adaptation_by_matmul(global_kems: Tensor, kams: Tensor) -> Tensor:
    """:func:`contextual_adaptation` with slices and one batched matrix
    product: no grouped convolution, no FFT.

    With the cross-correlation kernel ``k = flip(kam) / S**2`` and the
    window zero-padded by ``c = S // 2``, ``out[y, x] = sum_i sum_j k[i, j]
    pad[y + i, x + j]``: a batched matrix product contracts the kernel rows
    over the S row-shifted windows (``W[j] = sum_i k[i, j] pad[i:i+a, :]``),
    then the S column shifts ``W[j][:, j:j+a]`` are summed. The multiply-
    adds of the grouped convolution; it holds S row-shifted copies of the
    windows (S times the memory of the global KEMs). The loops run over
    the S kernel rows and columns, never over proposals or keypoints.

    Args:
        global_kems (Tensor): (M, K, a, a), reweighed.
        kams (Tensor): (M, K, S, S), S odd.

    Returns:
        Tensor: (M, K, a, a), equal to the other implementations up to
        float rounding.
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
    for j in range(1, S):  # the S column shifts
        out = out + mixed[:, :, j, :, j:j + a]
    return out


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
