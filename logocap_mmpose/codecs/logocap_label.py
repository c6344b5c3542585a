"""The LOGO-CAP codec: center-offset targets and initial-pose decoding.

Coordinate convention (used everywhere in this package): heatmap cell ``i``
covers input pixels ``[s*i, s*(i+1))`` and its centre sits at input pixel
``s*i + (s-1)/2`` (``s`` = stride = input size / heatmap size). An input
coordinate ``x`` therefore maps to the heatmap coordinate
``(x + 0.5)/s - 0.5``.
Under this convention a horizontal flip of the image is an exact flip of the
heatmap array, and bilinear upsampling with ``align_corners=False`` is exact.
(The authors put heatmap pixel ``i`` at input ``4i`` but upsample with
``align_corners=False``, a 1.5 px inconsistency; see the reference notes.)

Displacements follow MMPose's convention (keypoint minus cell, in heatmap
units), the opposite sign of the authors' ``center - keypoint``.
"""
from typing import Dict, Optional, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from mmpose.codecs.base import BaseKeypointCodec
from mmpose.codecs.utils import batch_heatmap_nms
from mmpose.registry import KEYPOINT_CODECS


def _render_patches(out: np.ndarray, windows: np.ndarray,
                    centres: np.ndarray, channels: np.ndarray,
                    sigma: Union[float, np.ndarray]) -> None:
    """Max-combine truncated Gaussians into ``out`` in place.

    Each Gaussian lives on the cells ``floor(c - 3*sigma - 1)`` to
    ``ceil(c + 3*sigma + 2) - 1`` of each axis, ``c`` its continuous centre:
    the authors' window, one cell wider before the centre than a 3-sigma cut
    and two after. Only that patch is computed and scattered.

    Args:
        out (np.ndarray): (C, H, W) maps, updated with a max.
        windows (np.ndarray): (H, W) bool, set True under every patch.
        centres (np.ndarray): (P, 2) centres (x, y), heatmap cells.
        channels (np.ndarray): (P,) channel of each Gaussian.
        sigma (float | np.ndarray): Gaussian sigma, heatmap cells: one for
            all, or (P,), one per Gaussian (scale-aware targets).
    """
    if len(centres) == 0:
        return
    C, H, W = out.shape
    # (1, 1) for one sigma, (P, 1) per Gaussian: the same arithmetic either
    # way, so the fixed-sigma targets do not depend on this generalisation
    sigma = np.asarray(sigma, np.float64).reshape(-1, 1)
    first = np.floor(centres - 3 * sigma - 1)  # (P, 2), first cell
    end = np.ceil(centres + 3 * sigma + 2)  # (P, 2), one past the last
    reach = int(np.ceil(3 * sigma.max())) + 3
    steps = np.arange(-reach, reach + 1)
    base = np.round(centres).astype(np.int64)  # (P, 2)
    xs = base[:, 0, None] + steps  # (P, S)
    ys = base[:, 1, None] + steps
    dx = xs - centres[:, 0, None]
    dy = ys - centres[:, 1, None]
    gx = np.exp(-dx**2 / (2 * sigma**2))
    gy = np.exp(-dy**2 / (2 * sigma**2))
    ok_x = (xs >= first[:, :1]) & (xs < end[:, :1]) & (xs >= 0) & (xs < W)
    ok_y = (ys >= first[:, 1:]) & (ys < end[:, 1:]) & (ys >= 0) & (ys < H)
    keep = ok_y[:, :, None] & ok_x[:, None, :]  # (P, S, S)
    values = (gy[:, :, None] * gx[:, None, :]).astype(np.float32)[keep]
    flat = (ys[:, :, None] * W + xs[:, None, :])[keep]
    chan = np.broadcast_to(channels[:, None, None], keep.shape)[keep]
    np.maximum.at(out.reshape(-1), chan * H * W + flat, values)
    windows.reshape(-1)[flat] = True


@KEYPOINT_CODECS.register_module()
class LOGOCAPLabel(BaseKeypointCodec):
    """Center-offset targets of LOGO-CAP and their decoding.

    Encoding (N persons, K keypoints, heatmap size H x W):
        - ``heatmaps`` (K+1, H, W): Gaussians (``sigma``) at the keypoints and
          (``center_sigma``) at each person centre, which is the mean of the
          labelled keypoints (also those outside the input); channel K is the
          centre. Combined by max. Each Gaussian is cut to the authors'
          window, cells ``floor(c - 3 sigma - 1)`` to ``ceil(c + 3 sigma +
          2) - 1`` per axis.
        - ``heatmap_weights`` (1, H, W): 1 inside every Gaussian's window,
          ``background_weight`` elsewhere.
        - ``displacements`` (2K, H, W): keypoint minus cell over a
          ``2*offset_radius`` square window at each centre; channel 2k is x.
        - ``displacement_weights`` (2K, H, W): ``1/sqrt(area)`` for visible
          keypoints; where windows overlap, each keypoint channel goes to
          the smallest person labelling that keypoint.
        - ``instance_keypoints`` (N, K, 2), ``instance_keypoints_visible``
          (N, K), ``instance_areas`` (N,): ground truth in input space for the
          on-the-fly OKS matching of the head.
        Persons whose annotated area (the area before augmentation, in image
        pixels, as the authors) is below ``min_center_area``, or whose centre
        falls outside the input, get no centre and no offsets but keep their
        keypoint heatmaps and stay OKS ground truth. Keypoints outside the
        input are treated as invisible.

    Scale-aware keypoint targets (``scale_aware_sigma=True``, off by default):
        every person p gets its own keypoint Gaussian width

            sigma_p = clip(sigma * sqrt(area_p) / sigma_reference_size,
                           *sigma_range)

        with ``area_p`` the person's area in input pixels^2 (``area`` as
        ``BottomupRandomAffine`` leaves it, i.e. after the augmentation, or
        the keypoint box without one). A person whose side ``sqrt(area_p)``
        equals the reference size gets exactly the fixed ``sigma``; a person
        twice as large a Gaussian twice as wide. The windows of
        ``heatmap_weights`` follow each Gaussian. The centre Gaussian keeps
        ``center_sigma``: the centre NMS, the offset window and the head's
        decoding are sized for it.

        Why: a fixed sigma asks for the same pixel precision from a child in
        the background and from a person filling the image, while the COCO
        metric forgives a keypoint error in proportion to the person's scale
        (OKS divides the squared error by the area, times a per-keypoint
        constant). Bottom-up work on scale
        variation therefore ties the width of the heatmap target to the
        person's size: scale-adaptive heatmap regression (SWAHR, Luo et al.,
        CVPR 2021) learns a per-pixel factor that scales a base sigma, and
        object-centre heatmaps (CornerNet, CenterNet) derive the Gaussian
        radius from the object's box. This option is the fixed, unlearned
        form of that idea: the factor comes from the annotated area, so no
        extra head output is needed. The clipping keeps tiny persons from
        getting sub-cell peaks and huge ones from flooding the map.

    Args:
        input_size (tuple): network input (w, h).
        heatmap_size (tuple): output map (w, h).
        sigma (float): keypoint Gaussian sigma, in heatmap cells.
        center_sigma (float): centre Gaussian sigma, in heatmap cells.
        min_center_area (float): smallest annotated area (image pixels^2,
            before augmentation) with a centre.
        offset_radius (int): half side of the offset window, in cells.
        background_weight (float): heatmap weight outside the Gaussians.
        decode_max_instances (int): number of centre proposals (top N).
        decode_thr (float): minimum centre score (the top one is always kept).
        decode_nms_kernel (int): max-pool size of the centre NMS.
        refine_sigma (float): sigma (input pixels) of the on-the-fly Gaussian
            targets over the global KEM windows, see :meth:`window_targets`.
        decode_on_input (bool): decode the initial poses as the authors' code
            does (needed to reproduce their released weights): the centre
            NMS runs on the centre map upsampled ``stride`` times (bilinear,
            ``align_corners=False``), so centres are integer input pixels and
            peaks on the border of the upsampled map are kept; each keypoint
            is the centre plus ``stride`` times the displacement read at the
            cell ``floor(centre / stride)``. Default False: NMS on the
            stride-s map, keypoints at ``to_input(cell + displacement)``.
        scale_aware_sigma (bool): per-person keypoint sigma from the
            person's scale (see above). Default False: one ``sigma`` for all.
        sigma_reference_size (float, optional): the person side
            ``sqrt(area)``, in input pixels, whose Gaussian gets exactly
            ``sigma``. None: a quarter of the shorter input side (64 px at
            256 x 256, near the median person side, 55 px, of the 16
            coco-mini images of the fit benchmark).
        sigma_range (tuple, optional): (min, max) of the per-person sigma,
            heatmap cells. None: ``(sigma / 2, 2 * sigma)``.
    """

    auxiliary_encode_keys = {'area', 'warp_mat'}
    field_mapping_table = dict(
        heatmaps='heatmaps',
        heatmap_weights='heatmap_weights',
        heatmap_mask='heatmap_mask',
        displacements='displacements',
        displacement_weights='displacement_weights')
    label_mapping_table = dict(
        instance_keypoints='instance_keypoints',
        instance_keypoints_visible='instance_keypoints_visible',
        instance_areas='instance_areas')

    def __init__(self,
                 input_size: Tuple[int, int],
                 heatmap_size: Tuple[int, int],
                 sigma: float = 2.0,
                 center_sigma: float = 4.0,
                 min_center_area: float = 32**2,
                 offset_radius: int = 4,
                 background_weight: float = 0.1,
                 decode_max_instances: int = 30,
                 decode_thr: float = 0.01,
                 decode_nms_kernel: int = 3,
                 refine_sigma: float = 4.0,
                 decode_on_input: bool = False,
                 scale_aware_sigma: bool = False,
                 sigma_reference_size: Optional[float] = None,
                 sigma_range: Optional[Tuple[float, float]] = None):
        super().__init__()
        strides = np.asarray(input_size, np.float32) / np.asarray(
            heatmap_size, np.float32)
        if strides[0] != strides[1] or strides[0] < 1:
            raise ValueError('input_size / heatmap_size must be one stride '
                             f'>= 1 on both axes, got {input_size} and '
                             f'{heatmap_size}')
        if decode_nms_kernel % 2 != 1:
            raise ValueError('decode_nms_kernel must be odd, got '
                             f'{decode_nms_kernel}')
        self.input_size = tuple(input_size)
        self.heatmap_size = tuple(heatmap_size)
        self.stride = float(strides[0])
        self.sigma = sigma
        self.center_sigma = center_sigma
        self.min_center_area = min_center_area
        self.offset_radius = offset_radius
        self.background_weight = background_weight
        self.decode_max_instances = decode_max_instances
        self.decode_thr = decode_thr
        self.decode_nms_kernel = decode_nms_kernel
        self.refine_sigma = refine_sigma
        if decode_on_input and self.stride != int(self.stride):
            raise ValueError('decode_on_input needs an integer stride, got '
                             f'{self.stride}')
        self.decode_on_input = decode_on_input
        self.scale_aware_sigma = bool(scale_aware_sigma)
        if sigma_reference_size is None:
            sigma_reference_size = min(self.input_size) / 4
        if sigma_range is None:
            sigma_range = (sigma / 2, 2 * sigma)
        sigma_range = tuple(float(v) for v in sigma_range)
        if sigma_reference_size <= 0:
            raise ValueError('sigma_reference_size must be > 0, got '
                             f'{sigma_reference_size}')
        if len(sigma_range) != 2 or not 0 < sigma_range[0] <= sigma_range[1]:
            raise ValueError('sigma_range must be (min, max) with 0 < min <= '
                             f'max, got {sigma_range}')
        self.sigma_reference_size = float(sigma_reference_size)
        self.sigma_range = sigma_range

    # ------------------------------------------------------------------ encode
    def person_sigmas(self, area: np.ndarray) -> np.ndarray:
        """Keypoint Gaussian sigma of every person, heatmap cells.

        Args:
            area (np.ndarray): (N,) person areas, input pixels^2.

        Returns:
            np.ndarray: (N,) float64: ``sigma`` for every person, or with
            ``scale_aware_sigma`` ``clip(sigma * sqrt(area) /
            sigma_reference_size, *sigma_range)``.
        """
        area = np.asarray(area, np.float64).reshape(-1)
        if not self.scale_aware_sigma:
            return np.full(area.shape, float(self.sigma))
        scaled = self.sigma * np.sqrt(np.maximum(area, 0.0)) / (
            self.sigma_reference_size)
        return np.clip(scaled, *self.sigma_range)

    def to_heatmap(self, xy):
        """Input pixels -> heatmap coordinates (numpy or tensor)."""
        return (xy + 0.5) / self.stride - 0.5

    def to_input(self, uv):
        """Heatmap coordinates -> input pixels (numpy or tensor)."""
        return (uv + 0.5) * self.stride - 0.5

    def on_input(self, xy: np.ndarray) -> np.ndarray:
        """(..., 2) input pixels -> (...) bool: inside the input."""
        in_w, in_h = self.input_size
        return ((xy[..., 0] >= 0) & (xy[..., 0] < in_w) & (xy[..., 1] >= 0)
                & (xy[..., 1] < in_h))

    def encode(self,
               keypoints: np.ndarray,
               keypoints_visible: Optional[np.ndarray] = None,
               area: Optional[np.ndarray] = None,
               warp_mat: Optional[np.ndarray] = None
               ) -> Dict[str, np.ndarray]:
        """Encode input-space keypoints into the targets above.

        Args:
            keypoints (np.ndarray): (N, K, 2), input pixels.
            keypoints_visible (np.ndarray, optional): (N, K).
            area (np.ndarray, optional): (N,) areas in input pixels^2 (as
                ``BottomupRandomAffine`` leaves them); the keypoint box when
                None.
            warp_mat (np.ndarray, optional): (2, 3) image -> input affine of
                the augmentation; the annotated area is ``area / |det|``.
                Without it ``area`` is taken as the annotated area too.
        """
        keypoints = np.asarray(keypoints, np.float32)
        if keypoints.ndim != 3 or keypoints.shape[-1] != 2:
            raise ValueError('keypoints must have shape (N, K, 2), got '
                             f'{keypoints.shape}')
        N, K, _ = keypoints.shape
        if keypoints_visible is None:
            keypoints_visible = np.ones((N, K), np.float32)
        keypoints_visible = np.asarray(keypoints_visible, np.float32)
        if area is None:  # fall back to the keypoint box
            span = keypoints.max(1) - keypoints.min(1) if K else np.zeros(
                (N, 2))
            area = span[:, 0] * span[:, 1]
        area = np.asarray(area, np.float32).reshape(N)
        W, H = self.heatmap_size
        labelled = keypoints_visible > 0  # (N, K)
        visible = labelled & self.on_input(keypoints)

        uv = self.to_heatmap(keypoints)  # (N, K, 2)
        # the centre: the mean of all labelled keypoints, those the
        # augmentation moved off the input included (as the authors)
        n_labelled = labelled.sum(1)
        centers = (uv * labelled[..., None]).sum(1) / np.maximum(
            n_labelled, 1)[:, None]
        annotated = area
        if warp_mat is not None:
            det = abs(float(np.linalg.det(np.asarray(warp_mat)[:2, :2])))
            annotated = area / max(det, 1e-12)
        has_center = ((n_labelled > 0) & (annotated >= self.min_center_area)
                      & self.on_input(self.to_input(centers)))

        # truncated Gaussians at the keypoints (sigma) and centres,
        # max-combined
        heatmaps = np.zeros((K + 1, H, W), np.float32)
        windows = np.zeros((H, W), bool)
        n_idx, k_idx = np.nonzero(visible)
        sigma = (self.person_sigmas(area)[n_idx]
                 if self.scale_aware_sigma else self.sigma)
        _render_patches(heatmaps, windows, uv[n_idx, k_idx], k_idx, sigma)
        _render_patches(heatmaps, windows, centers[has_center],
                        np.full(int(has_center.sum()), K), self.center_sigma)
        heatmap_weights = np.where(windows, 1.0, self.background_weight)
        heatmap_weights = heatmap_weights[None].astype(np.float32)

        displacements, displacement_weights = self._encode_offsets(
            uv, visible, centers, has_center, area)
        return dict(
            heatmaps=heatmaps,
            heatmap_weights=heatmap_weights,
            displacements=displacements,
            displacement_weights=displacement_weights,
            instance_keypoints=keypoints,
            instance_keypoints_visible=visible.astype(np.float32),
            instance_areas=area)

    def _encode_offsets(self, uv, visible, centers, has_center, area):
        """Offset targets over the windows at the centres.

        Where windows overlap, each keypoint channel of a cell goes to the
        smallest person that labels that keypoint (the authors' rule,
        without its dependence on the order of the persons; see
        ``docs/training-data.md``).
        """
        N, K, _ = uv.shape
        W, H = self.heatmap_size
        r = self.offset_radius
        start = np.floor(centers).astype(np.int64) - r  # (N, 2)
        xs, ys = np.arange(W), np.arange(H)
        in_x = (xs >= start[:, :1]) & (xs < start[:, :1] + 2 * r)  # (N, W)
        in_y = (ys >= start[:, 1:]) & (ys < start[:, 1:] + 2 * r)  # (N, H)
        cover = in_y[:, :, None] & in_x[:, None, :] & has_center[:, None,
                                                                 None]
        displacements = np.zeros((K, 2, H * W), np.float32)
        weights = np.zeros((K, 2, H * W), np.float32)
        cells = np.flatnonzero(cover.any(0))  # (M,) covered cells
        if len(cells):
            # (N, K, M): person n covers cell m and labels keypoint k
            claims = cover.reshape(N, -1)[:, None, cells] & visible[:, :,
                                                                    None]
            sizes = np.where(claims, area[:, None, None], np.inf)
            owner = sizes.argmin(0)  # (K, M), the smallest claimant
            claimed = claims.any(0)
            grid = np.stack((cells % W, cells // W), -1)  # (M, 2)
            own_uv = uv[owner, np.arange(K)[:, None]]  # (K, M, 2)
            disp = (own_uv - grid).transpose(0, 2, 1)  # (K, 2, M)
            w = claimed / np.sqrt(np.maximum(area[owner], 1.0))  # (K, M)
            displacements[:, :, cells] = disp * claimed[:, None]
            weights[:, :, cells] = w[:, None]
        return (displacements.reshape(2 * K, H, W),
                weights.reshape(2 * K, H, W))

    def window_targets(self, window_centers: Tensor, gt_keypoints: Tensor,
                       window_size: int) -> Tensor:
        """On-the-fly Gaussian targets over the global KEM windows.

        Args:
            window_centers (Tensor): (M, K, 2) window centres, input pixels.
            gt_keypoints (Tensor): (M, K, 2) matched ground truth, input px.
            window_size (int): side a of the window (one input pixel a step).

        Returns:
            Tensor: (M, K, a, a) with exp(-|p - g|^2 / (2 refine_sigma^2)).
        """
        steps = torch.arange(window_size, dtype=window_centers.dtype,
                             device=window_centers.device)
        steps = steps - (window_size - 1) / 2
        delta = window_centers - gt_keypoints  # (M, K, 2)
        dx = delta[..., 0:1] + steps  # (M, K, a)
        dy = delta[..., 1:2] + steps
        s2 = 2 * self.refine_sigma**2
        return torch.exp(-dy[..., :, None]**2 / s2) * torch.exp(
            -dx[..., None, :]**2 / s2)

    # ------------------------------------------------------------------ decode
    def decode_batch(self,
                     heatmaps: Tensor,
                     displacements: Tensor,
                     max_instances: Optional[int] = None,
                     thr: Optional[float] = None
                     ) -> Tuple[Tensor, Tensor, Tensor]:
        """Initial poses from centre peaks and offsets, for a whole batch.

        Args:
            heatmaps (Tensor): (B, K+1, H, W), the centre in channel K.
            displacements (Tensor): (B, 2K, H, W) in heatmap units.
            max_instances (int, optional): N proposals per image.
            thr (float, optional): minimum centre score.

        Returns:
            tuple: ``keypoints`` (B, N, K, 2) in input pixels,
            ``center_scores`` (B, N) sorted descending, and ``valid`` (B, N),
            True for the centres above ``thr`` and always for the first one
            (a prefix of each row).
        """
        B, C, H, W = heatmaps.shape
        K = C - 1
        N = min(max_instances or self.decode_max_instances, H * W)
        thr = self.decode_thr if thr is None else thr
        if self.decode_on_input:  # centre map at the input resolution
            s = int(self.stride)
            center_map = F.interpolate(
                heatmaps[:, K:], size=(H * s, W * s), mode='bilinear',
                align_corners=False)
        else:
            s, center_map = 1, heatmaps[:, K:]
        width = center_map.shape[-1]
        centers = batch_heatmap_nms(center_map.clamp(min=0),
                                    self.decode_nms_kernel)
        scores, index = centers.flatten(1).topk(N, dim=1)  # (B, N)
        peaks = torch.stack((index % width, index // width), -1)  # (B, N, 2)
        cells = torch.div(peaks, s, rounding_mode='floor')
        if self.decode_on_input:  # centre pixel + s * its cell's displacement
            disp = self.displacements_at(displacements, cells)
            keypoints = peaks[:, :, None].to(disp) + s * disp
        else:
            keypoints = self.decode_at_cells(displacements, cells)
        valid = scores >= thr
        valid[:, 0] = True
        return keypoints, scores, valid

    @staticmethod
    def displacements_at(displacements: Tensor, cells: Tensor) -> Tensor:
        """The displacements of the given cells.

        Args:
            displacements (Tensor): (B, 2K, H, W) in heatmap units.
            cells (Tensor): (B, N, 2) integer (x, y) cells inside the map.

        Returns:
            Tensor: (B, N, K, 2).
        """
        B, C, H, W = displacements.shape
        N = cells.shape[1]
        index = (cells[..., 1] * W + cells[..., 0]).long()  # (B, N)
        disp = displacements.reshape(B, C, H * W).gather(
            2, index[:, None].expand(B, C, N))
        return disp.reshape(B, C // 2, 2, N).permute(0, 3, 1, 2)

    def decode_at_cells(self, displacements: Tensor,
                        cells: Tensor) -> Tensor:
        """Poses from the displacements of given centre cells (the
        stride-s convention; ``decode_batch`` uses it for its peaks).

        Args:
            displacements (Tensor): (B, 2K, H, W) in heatmap units.
            cells (Tensor): (B, N, 2) integer (x, y) cells inside the map.

        Returns:
            Tensor: (B, N, K, 2) keypoints in input pixels.
        """
        disp = self.displacements_at(displacements, cells)
        return self.to_input(cells[:, :, None].to(disp) + disp)

    def decode(self, heatmaps, displacements):
        """Decode one sample: (K+1, H, W), (2K, H, W) -> keypoints (N, K, 2)
        in input pixels and scores (N, K), the centre score repeated."""
        heatmaps = torch.as_tensor(heatmaps)[None]
        displacements = torch.as_tensor(displacements)[None]
        keypoints, scores, valid = self.decode_batch(heatmaps, displacements)
        keep = valid[0] & (scores[0] > 0)
        keypoints = keypoints[0][keep]
        scores = scores[0][keep, None].expand(-1, keypoints.shape[1])
        return keypoints.cpu().numpy(), scores.cpu().numpy()
