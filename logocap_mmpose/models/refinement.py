"""LOGO-CAP's refinement, written once: the initial poses to the final
keypoints, as tensor functions over a :class:`RefinementGeometry`.

Everything between the codec's initial poses and the pose NMS lives here,
for every caller: the head (``head.predict``), the training losses
(``losses/refinement_losses.py``), the ONNX export (``deploy/refinement_export.py``
traces :func:`refine`) and the KEM / KAM drawing
(``analysis/kem_kam.py``). The functions take the geometry and, where
KAMs are computed, the message passing network (any callable from stacked
local KEM features to KAMs, the head's ``cmp``); they hold no state.

Stages (``models/kem.py`` defines the vocabulary): :func:`local_poses`,
:func:`local_kem_features`, :func:`kams` (CMP), :func:`global_kems`
(reweighed heatmap windows), :func:`adapt` (contextual adaptation),
:func:`decode_windows` and :func:`decode_kams` (top-2 decoding),
:func:`heatmap_scores`.

The four test modes of the paper's ablation (Table 5), :data:`MODES`, the
one list of them (``test_cfg.mode``):

- ``baseline``: the initial (centre-offset) poses, scored by their heatmaps;
- ``kems_only``: top-2 decoding of the reweighed global KEMs;
- ``kams_only``: the KAMs alone, cells scaled to pixels. As the authors'
  partial refinement, the largest cell scored by its value
  (``adaptation_cfg.kams_only_decode='argmax'``, the default), or the top-2
  average of the other modes (``'top2'``);
- ``full`` (the default): the paper's method, global KEMs adapted by the
  KAMs.

Every function is written so that ``torch.jit.trace`` (the ONNX exporter)
keeps the batch, proposal and map sizes free: map sizes are read as tensors
(``kem._normalise``), there is no branch on a proposal count, and the
adaptation has a traceable form (``impl='matmul'``). Profiler ranges are
not opened while tracing.

:func:`kam_pose_scores` turns the KAMs into keypoint scores
(``test_cfg.kam_score``): the KAMs are trained towards the OKS of
each cell of the local window (the OKS kernel loss), so the largest cell of
a keypoint's KAM estimates how well that keypoint can be placed.

Shapes: B images, N proposals per image, K keypoints, C embedding channels,
h x w maps, S x S local KEMs, a x a global KEMs; positions in input pixels.
"""
import dataclasses
from contextlib import nullcontext
from typing import Callable, Optional, Tuple

import torch
from torch import Tensor
from torch.profiler import record_function

from . import profiling
from .adaptation import ADAPTATION_IMPLS, contextual_adaptation, top2_decode
from .kem import (gaussian_window, kam_cell_size, local_kem_poses, sample_global_kems,
                  sample_global_kems_authors, sample_local_kems,
                  sample_local_kems_authors, sample_own_maps)

Refined = Tuple[Tensor, Tensor, Optional[Tensor]]
KAM_SCORES = (None, 'product', 'replace')
SAMPLINGS = ('centred', 'authors')


@dataclasses.dataclass(frozen=True)
class RefinementGeometry:
    """What the refinement needs besides the maps and the CMP weights.

    Args:
        kem_offsets (Tensor): (K, S, S, 2) local KEM cells around the
            initial keypoint (``kem.local_kem_offsets``).
        stride (float): input pixels per map cell.
        global_size (int): a, the global KEM side (one input pixel a step).
        reweigh (Tensor): (a, a) the reweighing Gaussian
            (``kem.gaussian_window``).
        sampling (str): 'centred' (this package's convention) or 'authors'
            (the authors' reading of the maps), see ``models/kem.py``.
        adaptation_impl (str): one of ``ADAPTATION_IMPLS`` ('fft', 'conv',
            'matmul': the same convolution, see ``models/adaptation.py``).
        top2_lambda (float): weight of the best cell in the top-2 decoding.
        kams_only_lambda (float): that weight in the ``kams_only`` mode (1:
            the arg-max cell, the authors' partial refinement).
    """
    kem_offsets: Tensor
    stride: float
    global_size: int
    reweigh: Tensor
    sampling: str = 'centred'
    adaptation_impl: str = 'fft'
    top2_lambda: float = 0.75
    kams_only_lambda: float = 1.0

    def __post_init__(self):
        if self.sampling not in SAMPLINGS:
            raise ValueError(f'sampling must be one of {SAMPLINGS}, got '
                             f'{self.sampling!r}')
        if self.adaptation_impl not in ADAPTATION_IMPLS:
            raise ValueError(f'adaptation impl must be one of '
                             f'{ADAPTATION_IMPLS}, got '
                             f'{self.adaptation_impl!r}')

    def replace(self, **changes) -> 'RefinementGeometry':
        """A copy with some fields changed (e.g. ``adaptation_impl``)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def of_head(cls, head) -> 'RefinementGeometry':
        """A ``LOGOCAPHead``'s geometry, from its current settings
        (``global_kem_size``, ``reweigh_sigma``, ``sampling``,
        ``adaptation_impl``, ``top2_lambda``, ``kams_only_decode``) on the
        device of its ``kem_offsets``."""
        offsets = head.kem_offsets
        return cls(
            kem_offsets=offsets,
            stride=float(head.stride),
            global_size=int(head.global_kem_size),
            reweigh=gaussian_window(head.global_kem_size, head.reweigh_sigma,
                                    offsets.dtype, offsets.device),
            sampling=head.sampling,
            adaptation_impl=head.adaptation_impl,
            top2_lambda=float(head.top2_lambda),
            kams_only_lambda=1.0 if head.kams_only_decode == 'argmax' else
            float(head.top2_lambda))


def check_mode(mode: str) -> str:
    """``mode`` if it is one of :data:`MODES`.

    Raises:
        ValueError: an unknown mode, naming the known ones.
    """
    if mode not in MODES:
        raise ValueError(f'test_cfg.mode must be one of {MODES}, got '
                         f'{mode!r}')
    return mode


def _range(name: str):
    """A profiler range, or nothing while tracing (an export)."""
    if torch.jit.is_tracing():
        return nullcontext()
    return record_function(name)


# ---------------------------------------------------------------- stages


def local_poses(geometry: RefinementGeometry, initial: Tensor) -> Tensor:
    """Local KEM candidates: (..., K, 2) -> (..., K, S, S, 2)."""
    return local_kem_poses(initial, geometry.kem_offsets)


def local_kem_features(geometry: RefinementGeometry, embedding: Tensor,
                       poses: Tensor) -> Tensor:
    """The embedding on the local KEMs.

    Args:
        geometry (RefinementGeometry): stride and sampling convention.
        embedding (Tensor): (B, C, h, w).
        poses (Tensor): (B, N, K, S, S, 2) from :func:`local_poses`.

    Returns:
        Tensor: (B, N, K*C, S, S), keypoint-major channels (``k*C + c``).
    """
    sample = sample_local_kems_authors if geometry.sampling == 'authors' \
        else sample_local_kems
    with _range(profiling.LOCAL_KEM):
        return sample(embedding, poses, geometry.stride)


def kams(geometry: RefinementGeometry, cmp: Callable[[Tensor], Tensor],
         embedding: Tensor, poses: Tensor) -> Tensor:
    """Raw KAMs (not clamped) from the local KEM features.

    Args:
        geometry (RefinementGeometry): the KEM geometry.
        cmp (Callable): (M, K*C, S, S) -> (M, K, S, S), the message passing.
        embedding (Tensor): (B, C, h, w).
        poses (Tensor): (B, N, K, S, S, 2) from :func:`local_poses`.

    Returns:
        Tensor: (B, N, K, S, S).
    """
    local = local_kem_features(geometry, embedding, poses)
    with _range(profiling.KAM):
        out = cmp(local.flatten(0, 1))
    return out.reshape(poses.shape[:-1])


def global_kems(geometry: RefinementGeometry, keypoint_heatmaps: Tensor,
                initial: Tensor) -> Tensor:
    """Reweighed global KEMs: a x a windows of each keypoint's heatmap.

    Args:
        geometry (RefinementGeometry): window size, stride, Gaussian and
            sampling convention.
        keypoint_heatmaps (Tensor): (B, K, h, w).
        initial (Tensor): (B, N, K, 2) window centres.

    Returns:
        Tensor: (B, N, K, a, a); cell (i, j) at centre + (j, i) - (a-1)/2.
    """
    sample = sample_global_kems_authors if geometry.sampling == 'authors' \
        else sample_global_kems
    windows = sample(keypoint_heatmaps, initial, geometry.global_size,
                     geometry.stride)
    return windows * geometry.reweigh.to(windows.dtype)


def adapt(geometry: RefinementGeometry, windows: Tensor,
          kams: Tensor) -> Tensor:
    """Contextual adaptation: (B, N, K, a, a) global KEMs convolved with
    their (B, N, K, S, S) KAMs -> (B, N, K, a, a)."""
    out = contextual_adaptation(windows.flatten(0, 1), kams.flatten(0, 1),
                                geometry.adaptation_impl)
    return out.reshape(windows.shape)


def decode_windows(geometry: RefinementGeometry, initial: Tensor,
                   maps: Tensor) -> Tuple[Tensor, Tensor]:
    """Top-2 decoding of (B, N, K, a, a) windows centred on ``initial``
    (B, N, K, 2): keypoints (B, N, K, 2) and scores (B, N, K)."""
    with _range(profiling.DECODE):
        offsets, scores = top2_decode(maps.flatten(0, 1),
                                      geometry.top2_lambda)
    return (initial + offsets.reshape(initial.shape),
            scores.reshape(initial.shape[:3]))


def decode_kams(geometry: RefinementGeometry, initial: Tensor,
                kam_maps: Tensor) -> Tuple[Tensor, Tensor]:
    """The ``kams_only`` decoding of (B, N, K, S, S) clamped KAMs: the
    arg-max cell and its value or the top-2 average
    (``geometry.kams_only_lambda``), cells scaled to pixels. Keypoints
    (B, N, K, 2) and scores (B, N, K)."""
    with _range(profiling.DECODE):
        offsets, scores = top2_decode(kam_maps.flatten(0, 1),
                                      geometry.kams_only_lambda)
        offsets = offsets * kam_cell_size(geometry.kem_offsets)[:, None]
    return (initial + offsets.reshape(initial.shape),
            scores.reshape(initial.shape[:3]))


def heatmap_scores(geometry: RefinementGeometry, keypoint_heatmaps: Tensor,
                   initial: Tensor) -> Tensor:
    """Each keypoint's heatmap at the keypoint: (B, N, K)."""
    return sample_own_maps(keypoint_heatmaps, initial, geometry.stride)


# ----------------------------------------------------------------- modes


def _baseline(geometry, cmp, keypoint_heatmaps, embedding,
              initial) -> Refined:
    """The initial poses, scored by their heatmaps (no refinement)."""
    return initial, heatmap_scores(geometry, keypoint_heatmaps,
                                   initial), None


def _kems_only(geometry, cmp, keypoint_heatmaps, embedding,
               initial) -> Refined:
    """Top-2 decoding of the reweighed global KEMs, no adaptation."""
    with _range(profiling.GLOBAL_KEM_ADAPTATION):
        maps = global_kems(geometry, keypoint_heatmaps, initial)
    return decode_windows(geometry, initial, maps) + (None, )


def _kams_only(geometry, cmp, keypoint_heatmaps, embedding,
               initial) -> Refined:
    """The KAMs alone (:func:`decode_kams`)."""
    clamped = kams(geometry, cmp, embedding,
                   local_poses(geometry, initial)).clamp(0, 1)
    return decode_kams(geometry, initial, clamped) + (clamped, )


def _full(geometry, cmp, keypoint_heatmaps, embedding, initial) -> Refined:
    """The paper's method: global KEMs adapted by the KAMs."""
    clamped = kams(geometry, cmp, embedding,
                   local_poses(geometry, initial)).clamp(0, 1)
    with _range(profiling.GLOBAL_KEM_ADAPTATION):
        maps = adapt(geometry, global_kems(geometry, keypoint_heatmaps,
                                           initial), clamped)
    return decode_windows(geometry, initial, maps) + (clamped, )


REFINERS = dict(baseline=_baseline, kems_only=_kems_only,
                kams_only=_kams_only, full=_full)
#: the test modes (``test_cfg.mode``, default 'full'), in the order of the
#: paper's Table 5
MODES = tuple(REFINERS)


def refine(mode: str, geometry: RefinementGeometry,
           cmp: Callable[[Tensor], Tensor], keypoint_heatmaps: Tensor,
           embedding: Tensor, initial: Tensor) -> Refined:
    """Final keypoints of one test mode.

    Args:
        mode (str): one of :data:`MODES`.
        geometry (RefinementGeometry): the refinement's geometry.
        cmp (Callable): (M, K*C, S, S) -> (M, K, S, S), the message passing
            (unused by ``baseline`` and ``kems_only``).
        keypoint_heatmaps (Tensor): (B, K, h, w).
        embedding (Tensor): (B, C, h, w).
        initial (Tensor): (B, N, K, 2) initial poses.

    Returns:
        tuple: keypoints (B, N, K, 2), scores (B, N, K) (before the centre
        scores) and the clamped KAMs (B, N, K, S, S), None for the modes
        without.
    """
    return REFINERS[check_mode(mode)](geometry, cmp, keypoint_heatmaps,
                                      embedding, initial)


def kam_pose_scores(scores: Tensor, kam_maps: Optional[Tensor],
                    how: Optional[str]) -> Tensor:
    """Keypoint scores with the pose quality the KAMs estimate.

    Args:
        scores (Tensor): (B, N, K) scores of the refinement mode.
        kam_maps (Tensor, optional): (B, N, K, S, S) clamped KAMs.
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
    if kam_maps is None:
        raise ValueError(f'test_cfg.kam_score={how!r} needs the KAMs: use '
                         "test_cfg.mode 'full' or 'kams_only'")
    best = kam_maps.flatten(-2).amax(-1)  # (B, N, K)
    if how == 'replace':
        return best
    return scores * best.mean(-1, keepdim=True)
