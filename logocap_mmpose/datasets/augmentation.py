"""The authors' training augmentation, and the MMPose transform that draws it.

The authors' random affine (section 7 of the reference notes; the paper's
recipe), per image of width w and height h:

- a square crop of side ``200 * s`` around the image centre, with
  ``s = min(w, h) / 200 * U(0.75, 1.5)``;
- a rotation U(-30, 30) degrees;
- the crop centre shifted by an integer number of pixels, uniform in
  ``[-40 s, 40 s]`` on each axis: at most 0.2 of the crop side;
- a horizontal flip with p = 0.5 (``RandomFlip``), output 512 x 512.

MMPose's ``BottomupRandomAffine`` draws the same scale and rotation but a
shift relative to the *image* (``U(-0.2, 0.2) * (w, h)``), not to the crop:
on a 640 x 427 image its horizontal shift reaches 0.4 of the crop side at
scale 0.75, twice the authors'. :class:`LOGOCAPRandomAffine` is
``BottomupRandomAffine`` with the authors' shift; the LOGO-CAP configs use
it. ``tests/test_datasets/test_augmentation.py`` compares the three
distributions on 5,000 draws.
"""
from typing import Dict, Optional, Tuple

import numpy as np
from mmcv.transforms.utils import cache_randomness

from mmpose.datasets.transforms import BottomupRandomAffine
from mmpose.registry import TRANSFORMS


def sample_authors_affine(img_w: int, img_h: int,
                          rng: np.random.Generator,
                          scale_range: Tuple[float, float] = (0.75, 1.5),
                          max_rotation: float = 30.0,
                          max_shift: float = 0.2) -> Dict[str, float]:
    """One draw of the authors' random affine, from its description.

    Args:
        img_w (int): image width.
        img_h (int): image height.
        rng (np.random.Generator): the random source.
        scale_range (tuple): range of the crop side over the short side.
        max_rotation (float): rotation range, degrees.
        max_shift (float): largest shift of the crop centre, as a fraction
            of the crop side (the authors' 40 px per 200 px).

    Returns:
        dict: ``crop`` (side, image px), ``rotation`` (degrees) and
        ``shift_x``, ``shift_y`` (integer image px from the image centre).
    """
    s = min(img_w, img_h) / 200 * rng.uniform(*scale_range)
    limit = int(np.floor(max_shift * 200 * s))
    shift_x, shift_y = rng.integers(-limit, limit + 1, size=2)
    return dict(crop=200 * s, rotation=rng.uniform(-max_rotation,
                                                   max_rotation),
                shift_x=float(shift_x), shift_y=float(shift_y))


def affine_params_of(warp_mat: np.ndarray, img_w: int, img_h: int,
                     out_w: int) -> Dict[str, float]:
    """The crop, rotation and shift a (2, 3) image -> input similarity
    stands for: the inverse of :func:`sample_authors_affine` for any
    transform, to compare distributions.

    Returns:
        dict: ``crop`` (image px that span ``out_w`` input px),
        ``rotation`` (degrees, absolute value: the sign convention differs
        between implementations) and ``shift_x``, ``shift_y`` (image px from
        the image centre to the point at the input centre, in the input's
        axes).
    """
    m = np.asarray(warp_mat, np.float64)
    zoom = np.hypot(m[0, 0], m[1, 0])
    inverse = np.linalg.inv(np.vstack((m, [0, 0, 1])))
    centre = inverse @ np.array([out_w / 2, out_w / 2, 1.0])
    return dict(crop=out_w / zoom,
                rotation=abs(np.degrees(np.arctan2(m[1, 0], m[0, 0]))),
                shift_x=centre[0] - img_w / 2, shift_y=centre[1] - img_h / 2)


@TRANSFORMS.register_module()
class LOGOCAPRandomAffine(BottomupRandomAffine):
    """``BottomupRandomAffine`` with the authors' shift: an integer number of
    image pixels, uniform in ``[-shift_factor, shift_factor]`` times the
    crop side (MMPose: times the image side, continuous).

    Scale and rotation are drawn as ``BottomupRandomAffine`` draws them with
    ``distribution='uniform'``, the only distribution it accepts; every
    other argument is ``BottomupRandomAffine``'s.
    """

    def __init__(self, *args, distribution: str = 'uniform', **kwargs):
        if distribution != 'uniform':
            raise ValueError('LOGOCAPRandomAffine draws the authors\' '
                             f"uniform parameters, got distribution="
                             f'{distribution!r}')
        super().__init__(*args, distribution=distribution, **kwargs)
        if self.transform_mode != 'affine':
            raise ValueError("LOGOCAPRandomAffine supports transform_mode="
                             f"'affine' only, got {self.transform_mode!r}")
        self._image_size: Optional[Tuple[int, int]] = None

    def transform(self, results: Dict) -> Optional[dict]:
        img_h, img_w = results['img_shape'][:2]
        self._image_size = (img_w, img_h)
        return super().transform(results)

    @cache_randomness
    def _get_transform_params(self) -> Tuple:
        """(offset rate, scale rate, rotation, shear) as
        ``BottomupRandomAffine`` uses them; the offset rate times the image
        size is the integer shift in pixels."""
        img_w, img_h = self._image_size
        scale = np.ones(1, np.float32)
        if np.random.rand() < self.scale_prob:
            scale = np.random.uniform(*self.scale_factor, size=1)
        rotate = 0.0
        if np.random.rand() < self.rotate_prob:
            rotate = np.random.uniform(-self.rotate_factor,
                                       self.rotate_factor)
        offset = np.zeros(2, np.float32)
        if np.random.rand() < self.shift_prob:
            w, h = self.input_size
            crop = self._fix_aspect_ratio(scale * np.array([img_w, img_h]),
                                          aspect_ratio=w / h)
            limit = np.floor(self.shift_factor * crop).astype(np.int64)
            shift = np.random.randint(-limit, limit + 1)  # per axis
            offset = shift / np.array([img_w, img_h], np.float64)
        return offset, scale, rotate, np.zeros(2, np.float32)
