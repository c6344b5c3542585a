"""The test resize of LOGO-CAP's configs and its inverse, in numpy and
OpenCV only (no torch, no MMPose): the ONNX runner resizes with it, and the
MMPose transform ``LOGOCAPTestResize`` is built on it.

Two resizes, as the test pipelines name them:

- ``BottomupResize`` (MMPose, ``resize_mode='expand'``, no UDP):
  :func:`expand_warp` gives the same canvas, warp matrix and meta (the
  short side to the input size, the long side to a multiple of
  ``size_factor``; the image centre ``(w / 2, h / 2)`` at the canvas
  centre);
- ``LOGOCAPTestResize`` (the authors' rounding, see
  ``logocap_mmpose/datasets/transforms.py``): :func:`authors_test_warp`.

Both return MMPose's meta (``input_size``, ``input_center``,
``input_scale``), which :func:`to_image_pixels` uses to map input pixels
back to the image as MMPose's ``BottomupPoseEstimator`` does.
"""
from typing import Dict, Sequence, Tuple

import cv2
import numpy as np

#: the test resizes :func:`resize_image` replays (``type`` of the pipeline's
#: resize transform)
RESIZES = ('BottomupResize', 'LOGOCAPTestResize')


def _ceil_to(value: float, factor: int) -> int:
    return int(np.ceil(value / factor) * factor)


def _similarity(src_center, src_width, dst_size) -> np.ndarray:
    """Warp (2, 3) that maps ``src_center`` to the canvas centre and a
    ``src_width`` wide span to the canvas width (no rotation), solved from
    three float32 points by OpenCV."""
    dst_w, dst_h = dst_size
    center = np.asarray(src_center, np.float64)
    half, dst_half = 0.5 * src_width, 0.5 * dst_w
    src = np.array([center, center - (half, 0), center - (half, -half)])
    dst = np.array([[0.5 * dst_w, 0.5 * dst_h], [0.5 * dst_w - dst_half,
                                                 0.5 * dst_h],
                    [0.5 * dst_w - dst_half, 0.5 * dst_h + dst_half]])
    return cv2.getAffineTransform(src.astype(np.float32),
                                  dst.astype(np.float32))


def expand_warp(img_w: int, img_h: int, input_size: Sequence[int],
                size_factor: int = 32) -> Dict[str, np.ndarray]:
    """Warp and meta of MMPose's ``BottomupResize(resize_mode='expand',
    use_udp=False)`` at one scale.

    Args:
        img_w, img_h (int): the image size.
        input_size (Sequence[int]): (w, h), the transform's input size.
        size_factor (int): both canvas sides are multiples of it.

    Returns:
        dict: ``warp_mat`` (2, 3) image -> input, ``input_size`` (w, h) of
        the canvas, ``input_center`` (2,) and ``input_scale`` (2,) float32.
    """
    pad_w, pad_h = (_ceil_to(v, size_factor) for v in input_size)
    ratio = img_w / img_h
    resized = (max(pad_w, pad_h * ratio), max(pad_h, pad_w / ratio))
    canvas = tuple(_ceil_to(v, size_factor) for v in resized)
    center = np.array([img_w / 2, img_h / 2], np.float32)
    scale = np.array([img_w * canvas[0] / resized[0],
                      img_h * canvas[1] / resized[1]], np.float32)
    return dict(warp_mat=_similarity(center, scale[0], canvas),
                input_size=canvas, input_center=center, input_scale=scale)


def authors_test_size(img_w: int, img_h: int, input_size: int,
                      size_factor: int = 64) -> Tuple[int, int]:
    """Canvas (w, h) of the authors' test resize."""
    f = size_factor
    short = int((input_size + f - 1) // f * f)
    if img_w < img_h:
        return short, int((short / img_w * img_h + f - 1) // f * f)
    return int((short / img_h * img_w + f - 1) // f * f), short


def authors_test_warp(img_w: int, img_h: int, input_size: int,
                      size_factor: int = 64) -> Dict[str, np.ndarray]:
    """Warp matrix and MMPose meta of the authors' test resize.

    Returns:
        dict: ``warp_mat`` (2, 3) image -> input, ``input_size`` (w, h) of the
        canvas, ``input_center`` (2,) the image point at the canvas centre,
        and ``input_scale`` (2,) the image extent the canvas covers, so that
        MMPose's ``kpt / input_size * input_scale + input_center -
        0.5 * input_scale`` maps input pixels back to the image.
    """
    out_w, out_h = authors_test_size(img_w, img_h, input_size, size_factor)
    center = np.array([int(img_w / 2.0 + 0.5), int(img_h / 2.0 + 0.5)],
                      np.float32)
    # the image width the canvas width stands for (the authors' scale * 200)
    if img_w < img_h:
        src_w = img_w
    else:
        src_w = out_w / out_h * img_h
    # three corresponding points: the centres, a point above them and a
    # point to the left of that one (a similarity, no rotation)
    up_src = np.array([0, -0.5 * src_w], np.float32)
    up_dst = np.array([0, -0.5 * out_w], np.float32)
    dst_centre = np.array([0.5 * out_w, 0.5 * out_h], np.float32)
    src = np.stack([center, center + up_src,
                    center + up_src + np.array([up_src[1], 0], np.float32)])
    dst = np.stack([dst_centre, dst_centre + up_dst,
                    dst_centre + up_dst + np.array([up_dst[1], 0],
                                                   np.float32)])
    warp_mat = cv2.getAffineTransform(src.astype(np.float32),
                                      dst.astype(np.float32))
    scale = out_w / src_w
    return dict(
        warp_mat=warp_mat,
        input_size=(out_w, out_h),
        input_center=center,
        input_scale=np.array([out_w / scale, out_h / scale], np.float32))


def canvas_warp(resize: dict, img_w: int, img_h: int) -> Dict[str, np.ndarray]:
    """The warp and meta of a test pipeline's resize transform.

    Args:
        resize (dict): the transform's config (``type`` one of
            :data:`RESIZES`, ``input_size``, ``size_factor``, and for
            ``BottomupResize`` ``resize_mode`` and ``use_udp``).
        img_w, img_h (int): the image size.

    Raises:
        ValueError: a resize this module does not replay.
    """
    kind = resize.get('type')
    if kind == 'LOGOCAPTestResize':
        size = resize['input_size']
        size = size if isinstance(size, int) else int(size[0])
        return authors_test_warp(img_w, img_h, size,
                                 int(resize.get('size_factor', 64)))
    if kind == 'BottomupResize':
        if resize.get('resize_mode', 'fit') != 'expand' or resize.get(
                'use_udp', False) or resize.get('aug_scales'):
            raise ValueError(
                "only BottomupResize(resize_mode='expand', use_udp=False) "
                f'at one scale is replayed without MMPose, got {resize}')
        return expand_warp(img_w, img_h, resize['input_size'],
                           int(resize.get('size_factor', 32)))
    raise ValueError(f'unknown test resize {kind!r}: one of {RESIZES}')


def resize_image(image: np.ndarray, resize: dict) -> Tuple[np.ndarray, dict]:
    """Resize and pad an (h, w, 3) uint8 image as the test pipeline does.

    Returns:
        tuple: the canvas (H, W, 3) uint8 and the meta of :func:`canvas_warp`.
    """
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f'expected an (h, w, 3) image, got shape '
                         f'{image.shape}')
    meta = canvas_warp(resize, image.shape[1], image.shape[0])
    canvas = cv2.warpAffine(image, meta['warp_mat'],
                            tuple(int(v) for v in meta['input_size']),
                            flags=cv2.INTER_LINEAR,
                            borderValue=tuple(resize.get('pad_val',
                                                         (0, 0, 0))))
    return canvas, meta


def to_image_pixels(points: np.ndarray, input_size: Sequence[float],
                    input_center: Sequence[float],
                    input_scale: Sequence[float]) -> np.ndarray:
    """Input pixels -> image pixels, as MMPose's
    ``BottomupPoseEstimator.add_pred_to_datasample`` maps them.

    Args:
        points (np.ndarray): (..., 2) positions (x, y) in input pixels.
        input_size, input_center, input_scale: (2,) each, the meta of the
            resize.

    Returns:
        np.ndarray: (..., 2).
    """
    size, center, scale = (np.asarray(v, np.float32)
                           for v in (input_size, input_center, input_scale))
    return points / size * scale + center - 0.5 * scale
