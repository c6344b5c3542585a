"""``LOGOCAPLoadImage``: MMPose's ``LoadImage`` with clear errors and the
image formats users pass.

MMPose 1.3.2's ``LoadImage`` returns whatever array it is given and words
every loading failure as "Please check whether the file exists". Through the
LOGO-CAP configs that meant:

- a 2-D grayscale array, or (H, W, 1), reached the data preprocessor with
  one channel and failed there with ``IndexError`` (BGR -> RGB);
- a float image in [0, 1] was normalised as 0-255 pixels: a black image;
- a zero-byte or undecodable file failed with OpenCV's ``!buf.empty()``;
- 14-keypoint annotations read by a 17-keypoint dataset type failed later
  with an ``IndexError`` inside ``RandomFlip``.

This transform loads as ``LoadImage`` does, then gives every image as
(H, W, 3) BGR (grayscale repeated, alpha dropped, a float image in [0, 1]
scaled to 0-255 with a warning) or raises a ``ValueError`` that names the
image and the problem.

A file that cannot be read during training (missing, empty, undecodable,
e.g. a disk or sync fault mid-epoch) stops the run with that error by
default. ``skip_unreadable=True`` logs a warning naming the file instead and
returns None, upon which MMEngine's dataset draws another image (training
only; at test time MMEngine refuses a None sample).
"""
import os.path as osp
from typing import Optional

import numpy as np
from mmengine.logging import print_log

from mmpose.datasets.transforms import LoadImage
from mmpose.registry import TRANSFORMS


class ImageInputError(ValueError):
    """An image (file or array) this package cannot read as a BGR image."""


def as_bgr_image(img, name: str = 'the image',
                 scale_unit_floats: bool = True) -> np.ndarray:
    """``img`` as an (H, W, 3) BGR array with 0-255 values.

    Args:
        img (np.ndarray): (H, W), (H, W, 1), (H, W, 3) BGR or (H, W, 4) BGRA.
        name (str): how errors name the image (its path).
        scale_unit_floats (bool): a float image whose values all lie in
            [0, 1] is taken as 0-1 intensities and scaled by 255.

    Raises:
        ImageInputError: not an array, empty, another shape, a dtype that
            is not a number, values that are not finite or integers outside
            0-255.
    """
    if not isinstance(img, np.ndarray):
        raise ImageInputError(f'{name}: expected a numpy array (H, W, 3) in '
                              f'BGR order, got {type(img).__name__}')
    if img.ndim == 2:
        img = img[..., None]
    if img.ndim != 3 or img.shape[2] not in (1, 3, 4):
        raise ImageInputError(
            f'{name}: an image array of shape {img.shape}; expected (H, W), '
            '(H, W, 1), (H, W, 3) BGR or (H, W, 4) BGRA (channels last)')
    if img.shape[0] == 0 or img.shape[1] == 0:
        raise ImageInputError(f'{name}: an empty image (shape {img.shape})')
    if img.dtype == np.bool_ or not (np.issubdtype(img.dtype, np.integer) or
                                     np.issubdtype(img.dtype, np.floating)):
        raise ImageInputError(f'{name}: pixel type {img.dtype} is not an '
                              'image type (uint8, or float with values in '
                              '0-255)')
    if np.issubdtype(img.dtype, np.floating):
        if not np.isfinite(img).all():
            raise ImageInputError(f'{name}: holds NaN or infinite pixels')
        if scale_unit_floats and img.min() >= 0 and img.max() <= 1:
            print_log(
                f'{name}: a float image with values in [0, 1]; read as 0-1 '
                'intensities and scaled to 0-255 (pass uint8 or 0-255 '
                'floats to avoid this)', logger='current', level=30)
            img = img.astype(np.float32) * 255
    elif img.dtype != np.uint8:
        low, high = int(img.min()), int(img.max())
        if low < 0 or high > 255:
            raise ImageInputError(
                f'{name}: {img.dtype} pixels in [{low}, {high}]; expected '
                '0-255 (convert e.g. 16-bit images to uint8 first)')
        img = img.astype(np.uint8)
    if img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    elif img.shape[2] == 4:
        img = img[..., :3]
    return np.ascontiguousarray(img)


@TRANSFORMS.register_module()
class LOGOCAPLoadImage(LoadImage):
    """MMPose's ``LoadImage`` (same arguments) plus the checks of this
    module's docstring.

    Required keys: ``img_path`` or ``img``. Modified keys: ``img``,
    ``img_shape``, ``ori_shape``, ``img_path`` (None for arrays).

    Args:
        skip_unreadable (bool): warn and return None for a file that cannot
            be read, instead of raising (see the module docstring).
            Default: False.
        **kwargs: ``LoadImage``'s arguments.
    """

    def __init__(self, skip_unreadable: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.skip_unreadable = skip_unreadable

    def transform(self, results: dict) -> Optional[dict]:
        try:
            return self._load(results)
        except (OSError, ImageInputError) as err:
            if not self.skip_unreadable or 'img' in results:
                raise
            print_log(f'skipped an unreadable image (skip_unreadable=True; '
                      f'the dataset draws another): {err}',
                      logger='current', level=30)
            return None

    def _load(self, results: dict) -> Optional[dict]:
        given = 'img' in results
        path = results.get('img_path')
        if given:  # the inferencer names arrays '000000.jpg', '000001.jpg'..
            name = f'the image array {path}' if path else 'the image array'
            results['img'] = as_bgr_image(results['img'], name)
            results = super().transform(results)  # shapes, to_float32
        else:
            name = str(path)
            self._check_file(path)
            try:
                results = super().transform(results)
            except FileNotFoundError:
                raise
            except Exception as err:
                if isinstance(path, str) and osp.isfile(path):
                    raise ImageInputError(
                        f'{path} could not be decoded as an image (corrupt '
                        'file, or a format OpenCV does not read)') from err
                raise
            if results is None:  # ignore_empty
                return None
            # e.g. color_type='grayscale' decodes to (H, W)
            results['img'] = as_bgr_image(results['img'], name,
                                          scale_unit_floats=False)
        self._check_keypoint_count(results, name)
        return results

    def _check_file(self, path) -> None:
        if not isinstance(path, str) or self.ignore_empty:
            return
        if osp.isfile(path) and osp.getsize(path) == 0:
            raise ImageInputError(f'{path} is an empty file (0 bytes), not '
                                  'an image')

    @staticmethod
    def _check_keypoint_count(results: dict, name: str) -> None:
        """Annotations and dataset meta must agree on the keypoint count."""
        keypoints = results.get('keypoints')
        flip_indices = results.get('flip_indices')
        if keypoints is None or flip_indices is None:
            return
        keypoints = np.asarray(keypoints)
        if keypoints.ndim != 3 or len(keypoints) == 0:
            return
        if keypoints.shape[1] != len(flip_indices):
            dataset = results.get('dataset_name')
            dataset = f'dataset {dataset!r}' if dataset else 'the dataset'
            raise ImageInputError(
                f'{name}: its annotations hold {keypoints.shape[1]} keypoints '
                f'per person, but the meta of {dataset} defines '
                f'{len(flip_indices)}; use the dataset type (or a metainfo '
                'file) made for this annotation file, and a head with the '
                'same num_keypoints')
