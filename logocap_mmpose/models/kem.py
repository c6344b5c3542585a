"""KEM geometry and sampling (pure tensor code, no learned parameters).

LOGO-CAP vocabulary, used across this package:
    - KEM (keypoint expansion map): a square grid of candidate positions
      around one keypoint of an initial pose. *Local* KEMs are S x S (11 x 11)
      grids scaled per keypoint by ``sigma_k / min(sigma)``; features of the
      embedding are sampled on them. *Global* KEMs are a x a (97 x 97) windows
      of the keypoint heatmaps, one input pixel a step, centred on the
      initial keypoints.
    - KAM (keypoint attraction map): the S x S map predicted for every
      keypoint from the local KEM features by message passing (CMP).
    - CMP (convolutional message passing): the conv stack that turns the
      stacked local KEM features of all keypoints into KAMs.

Shapes: B images, N proposals per image, K keypoints, C channels, h x w
feature map of stride ``stride``; positions are input pixels (x, y).
"""
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor


def keypoint_scales(sigmas: Sequence[float]) -> Tensor:
    """Per-keypoint KEM scale ``sigma_k / min(sigma)``: (K,)."""
    sigmas = torch.as_tensor(sigmas, dtype=torch.float32)
    if sigmas.ndim != 1 or sigmas.numel() == 0 or (sigmas <= 0).any():
        raise ValueError('keypoint sigmas must be a non-empty list of '
                         f'positive numbers, got {sigmas.tolist()}')
    return sigmas / sigmas.min()


def local_kem_offsets(scales: Tensor, size: int = 11,
                      extent: float = 5.0) -> Tensor:
    """Offsets of the local KEM cells from the initial keypoint.

    The base grid is ``linspace(-extent, extent, size)`` on both axes (input
    pixels), multiplied by each keypoint's scale.

    Args:
        scales (Tensor): (K,) per-keypoint scales.
        size (int): S, cells per side (odd, the centre cell is the initial
            keypoint).
        extent (float): half range of the unscaled grid.

    Returns:
        Tensor: (K, S, S, 2); cell (i, j) holds (x, y) = scale_k *
        (grid[j], grid[i]).
    """
    if size % 2 != 1:
        raise ValueError(f'local KEM size must be odd, got {size}')
    grid = torch.linspace(-extent, extent, size, dtype=scales.dtype,
                          device=scales.device)
    gy, gx = torch.meshgrid(grid, grid, indexing='ij')
    base = torch.stack((gx, gy), -1)  # (S, S, 2)
    return base[None] * scales[:, None, None, None]


def local_kem_poses(initial: Tensor, offsets: Tensor) -> Tensor:
    """Candidate poses of the local KEMs.

    Args:
        initial (Tensor): (..., K, 2) initial keypoints.
        offsets (Tensor): (K, S, S, 2) from :func:`local_kem_offsets`.

    Returns:
        Tensor: (..., K, S, S, 2).
    """
    return initial[..., None, None, :] + offsets


def kam_cell_size(offsets: Tensor) -> Tensor:
    """Input pixels between neighbouring local KEM (and KAM) cells: (K,).

    Args:
        offsets (Tensor): (K, S, S, 2) from :func:`local_kem_offsets`.
    """
    return offsets[:, 0, 1, 0] - offsets[:, 0, 0, 0]


def _normalise(points: Tensor, feature: Tensor, stride: float) -> Tensor:
    """Input pixels -> ``grid_sample`` coordinates of a stride-``stride``
    map (``align_corners=False``; cell centres at ``stride*i +
    (stride-1)/2``).

    The map size is read with ``torch._shape_as_tensor`` (an ONNX ``Shape``
    when traced, so an exported graph takes any map size) as two 0-d CPU
    tensors, which enter the arithmetic as scalars: no host-to-device copy.

    Args:
        points (Tensor): (..., 2) positions (x, y), input pixels.
        feature (Tensor): (B, C, h, w), the map to be sampled.
        stride (float): input pixels per map cell.

    Returns:
        Tensor: (..., 2), in [-1, 1] inside the map.
    """
    shape = torch._shape_as_tensor(feature)
    x, y = (points + 0.5).unbind(-1)
    return torch.stack((x / (shape[3] * stride), y / (shape[2] * stride)),
                       -1) * 2 - 1


def sample_points(feature: Tensor, points: Tensor, stride: float) -> Tensor:
    """Bilinear sampling with border replication.

    Args:
        feature (Tensor): (B, C, h, w).
        points (Tensor): (B, P, 2) input pixels.
        stride (float): input pixels per feature cell.

    Returns:
        Tensor: (B, C, P).
    """
    grid = _normalise(points, feature, stride)[:, None]  # (B, 1, P, 2)
    out = F.grid_sample(
        feature, grid, mode='bilinear', padding_mode='border',
        align_corners=False)
    return out[:, :, 0]


def sample_own_maps(maps: Tensor, points: Tensor, stride: float) -> Tensor:
    """Each keypoint's map read at that keypoint only (bilinear, border
    replication), e.g. the heatmap score of every initial keypoint.

    Args:
        maps (Tensor): (B, K, h, w), one map per keypoint.
        points (Tensor): (B, N, K, 2) input pixels.
        stride (float): stride of ``maps``.

    Returns:
        Tensor: (B, N, K); entry ``(b, n, k)`` is map ``k`` at point
        ``(b, n, k)``.
    """
    B, K = maps.shape[:2]
    flat = points.transpose(1, 2).flatten(0, 1)  # (B*K, N, 2)
    values = sample_points(maps.flatten(0, 1)[:, None], flat, stride)
    return values.reshape(B, K, -1).transpose(1, 2)


def sample_local_kems(embedding: Tensor, poses: Tensor,
                      stride: float) -> Tensor:
    """Embedding features on the local KEMs, stacked keypoint-major.

    Args:
        embedding (Tensor): (B, C, h, w).
        poses (Tensor): (B, N, K, S, S, 2) from :func:`local_kem_poses`.
        stride (float): stride of ``embedding``.

    Returns:
        Tensor: (B, N, K*C, S, S); channel ``k*C + c``.
    """
    B = poses.shape[0]
    feats = sample_points(embedding, poses.reshape(B, -1, 2), stride)
    return _keypoint_major(feats, poses.shape[:4])


def _keypoint_major(feats: Tensor, shape) -> Tensor:
    """(B, C, N*K*S*S) samples -> (B, N, K*C, S, S), channel ``k*C + c``."""
    B, N, K, S = shape
    C = feats.shape[1]
    feats = feats.reshape(B, C, N, K, S, S).permute(0, 2, 3, 1, 4, 5)
    return feats.reshape(B, N, K * C, S, S)


def window_steps(size: int, dtype=torch.float32, device=None) -> Tensor:
    """Offsets ``-(a-1)/2 .. (a-1)/2`` of a global KEM window: (a,)."""
    if size % 2 != 1:
        raise ValueError(f'global KEM size must be odd, got {size}')
    return torch.arange(size, dtype=dtype, device=device) - (size - 1) / 2


def _window_points(centers: Tensor, size: int) -> Tensor:
    """Input positions of the a x a windows: (B, N, K, 2) -> (B, K, N, a, a,
    2); cell (i, j) is at centre + (j, i) - (a-1)/2."""
    steps = window_steps(size, centers.dtype, centers.device)
    gy, gx = torch.meshgrid(steps, steps, indexing='ij')
    offsets = torch.stack((gx, gy), -1)  # (a, a, 2)
    return centers.permute(0, 2, 1, 3)[:, :, :, None, None] + offsets


def sample_global_kems(heatmaps: Tensor, centers: Tensor, size: int,
                       stride: float) -> Tensor:
    """Windows of each keypoint's heatmap around the initial keypoints.

    Sampling the stride-``stride`` map at input pixels equals sampling its
    bilinear (``align_corners=False``) upsampling at integer positions, without
    building the full-resolution map.

    Args:
        heatmaps (Tensor): (B, K, h, w) keypoint heatmaps.
        centers (Tensor): (B, N, K, 2) window centres, input pixels.
        size (int): a, window side (one input pixel a step).
        stride (float): stride of ``heatmaps``.

    Returns:
        Tensor: (B, N, K, a, a); cell (i, j) is at centre + (j, i) - (a-1)/2.
    """
    B, K, h, w = heatmaps.shape
    pts = _window_points(centers, size)  # (B, K, N, a, a, 2)
    grid = _normalise(pts, heatmaps, stride).flatten(0, 1).flatten(1, 2)
    out = F.grid_sample(
        heatmaps.reshape(B * K, 1, h, w), grid, mode='bilinear',
        padding_mode='zeros', align_corners=False)
    return out.reshape(B, K, -1, size, size).permute(0, 2, 1, 3, 4)


def gaussian_window(size: int, sigma: float, dtype=torch.float32,
                    device=None) -> Tensor:
    """The reweighing Gaussian centred in an a x a window: (a, a); values
    below 1e-4 are set to 0, as the authors do."""
    steps = window_steps(size, dtype, device)
    g = torch.exp(-steps**2 / (2 * sigma**2))
    g = g[:, None] * g[None, :]
    return g.masked_fill(g < 1e-4, 0)


# ---------------------------------------------------------------------------
# The authors' sampling conventions (used to run the authors' weights and to
# reproduce their numbers; see docs/design-notes.md).


def _authors_axis(coord: Tensor, size: int):
    """Corner indices and weights of the authors' bilinear sampler, one axis.

    Inside ``[0, size - 1)`` it is ordinary linear interpolation. Below 0 it
    reads index 0; at or beyond ``size`` it reads index ``size - 1``; in the
    open interval ``(size - 1, size)`` it reads index ``size - 1`` times
    ``coord - (size - 1)``; at exactly ``size - 1`` it gives 0.

    Returns:
        tuple: ``i0``, ``w0``, ``i1``, ``w1`` with the shape of ``coord``.
    """
    last = size - 1  # an int, or a traced 0-dim tensor in an ONNX trace
    floor = coord.floor()
    frac = coord - floor
    inside = (coord >= 0) & (coord < last)
    below = coord < 0
    past = coord >= size
    edge = (coord > last) & (coord < size)
    i0 = torch.where(inside, floor, torch.zeros_like(floor))
    i0 = torch.where(edge | past | (coord == last),
                     torch.zeros_like(floor) + last, i0).long()
    i1 = i0 + (i0 < last).long()  # the next index, at most ``last``
    w1 = torch.where(inside, frac, torch.zeros_like(frac))
    w0 = torch.where(inside, 1 - frac, torch.zeros_like(frac))
    w0 = torch.where(below | past, torch.ones_like(w0), w0)
    w0 = torch.where(edge, coord - last, w0)
    return i0, w0, i1, w1


def sample_points_authors(feature: Tensor, points: Tensor) -> Tensor:
    """The authors' bilinear sampler at map coordinates (see
    :func:`_authors_axis` for its border rules).

    Args:
        feature (Tensor): (B, C, h, w).
        points (Tensor): (B, P, 2) positions (x, y) in map cells (cell
            ``(u, v)`` is the point ``(u, v)``).

    Returns:
        Tensor: (B, C, P).
    """
    B, C, h, w = feature.shape
    x0, wx0, x1, wx1 = _authors_axis(points[..., 0], w)
    y0, wy0, y1, wy1 = _authors_axis(points[..., 1], h)
    flat = feature.reshape(B, C, h * w)
    out = 0
    for yi, wy in ((y0, wy0), (y1, wy1)):
        for xi, wx in ((x0, wx0), (x1, wx1)):
            index = (yi * w + xi)[:, None].expand(B, C, -1)
            out = out + flat.gather(2, index) * (wy * wx)[:, None]
    return out


def sample_local_kems_authors(embedding: Tensor, poses: Tensor,
                              stride: float) -> Tensor:
    """:func:`sample_local_kems` with the authors' convention: the embedding
    cell ``u`` is the input point ``stride * u`` (samples at ``p / stride``)
    and the authors' border rules."""
    B = poses.shape[0]
    feats = sample_points_authors(embedding, poses.reshape(B, -1, 2) / stride)
    return _keypoint_major(feats, poses.shape[:4])


def sample_global_kems_authors(heatmaps: Tensor, centers: Tensor, size: int,
                               stride: float) -> Tensor:
    """:func:`sample_global_kems` as the authors compute it: windows of the
    heatmaps upsampled ``stride`` times (bilinear, ``align_corners=False``),
    read with the authors' sampler at input pixels.

    Args:
        heatmaps (Tensor): (B, K, h, w) stride-``stride`` keypoint heatmaps.
        centers (Tensor): (B, N, K, 2) window centres, input pixels.
        size (int): a, window side.
        stride (float): upsampling factor (an integer value).

    Returns:
        Tensor: (B, N, K, a, a).
    """
    B, K, h, w = heatmaps.shape
    N = centers.shape[1]
    up = F.interpolate(heatmaps, scale_factor=stride, mode='bilinear',
                       align_corners=False)
    pts = _window_points(centers, size)
    H, W = up.shape[-2:]
    out = sample_points_authors(up.reshape(B * K, 1, H, W),
                                pts.reshape(B * K, -1, 2))
    return out.reshape(B, K, N, size, size).permute(0, 2, 1, 3, 4)
