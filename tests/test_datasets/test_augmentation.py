"""The training augmentation against the authors' recipe, as distributions.

5,000 draws each of the authors' random affine (``sample_authors_affine``,
written from its description), of the paper configs' affine
(``LOGOCAPRandomAffine``) and of MMPose's ``BottomupRandomAffine`` with the
same parameters, on a landscape and a portrait COCO-sized image. Compared:
the crop side over the short side, the rotation and the shift of the crop
centre as a fraction of the crop side, by the two-sample Kolmogorov-Smirnov
statistic. Bound: 0.04, about the 0.1% critical value of two samples of
5,000 (1.95 * sqrt(2 / 5000) = 0.039); the draws are seeded.
"""
import os.path as osp

import numpy as np
import pytest
from mmengine.config import Config
from scipy.stats import ks_2samp

from logocap_mmpose.datasets.augmentation import (affine_params_of,
                                                  sample_authors_affine)
from mmpose.registry import TRANSFORMS
from tests.conftest import REPO

N = 5000
BOUND = 0.04
PAPER_CFG = osp.join(REPO, 'configs', 'logocap', 'coco',
                     'logocap_hrnet-w32_4xb12-140e_coco-512x512.py')
OUT = 64  # the relative parameters do not depend on the output size


def config_affine(type_name=None):
    cfg = Config.fromfile(PAPER_CFG)
    step = [s for s in cfg.train_dataloader.dataset.pipeline
            if 'RandomAffine' in s['type']][0]
    step = dict(step, input_size=(OUT, OUT))
    if type_name:
        step['type'] = type_name
    return TRANSFORMS.build(step)


def relative(params, short):
    crop = np.array([p['crop'] for p in params])
    return dict(scale=crop / short,
                rotation=np.array([p['rotation'] for p in params]),
                shift_x=np.array([p['shift_x'] for p in params]) / crop,
                shift_y=np.array([p['shift_y'] for p in params]) / crop)


def draws(transform, img_w, img_h, seed):
    np.random.seed(seed)
    img = np.zeros((img_h, img_w, 3), np.uint8)
    params = []
    for _ in range(N):
        out = transform(dict(img=img, img_shape=(img_h, img_w)))
        params.append(affine_params_of(out['warp_mat'], img_w, img_h, OUT))
    return relative(params, min(img_w, img_h))


def authors(img_w, img_h, seed):
    rng = np.random.default_rng(seed)
    params = []
    for _ in range(N):
        p = sample_authors_affine(img_w, img_h, rng)
        params.append(dict(p, rotation=abs(p['rotation'])))
    return relative(params, min(img_w, img_h))


@pytest.mark.parametrize('img_w,img_h', [(640, 427), (427, 640)])
def test_config_affine_draws_the_authors_distribution(img_w, img_h):
    transform = config_affine()
    assert type(transform).__name__ == 'LOGOCAPRandomAffine'
    ours, theirs = draws(transform, img_w, img_h, 0), authors(img_w, img_h, 1)
    for key in ours:
        ks = ks_2samp(ours[key], theirs[key]).statistic
        assert ks < BOUND, (key, ks)
    # the ranges themselves: scale [0.75, 1.5], |rotation| <= 30, shift 0.2
    assert 0.75 <= ours['scale'].min() and ours['scale'].max() <= 1.5
    assert ours['rotation'].max() <= 30 + 1e-6
    assert np.abs(ours['shift_x']).max() <= 0.2 + 1e-6


def test_mmpose_affine_shift_is_relative_to_the_image():
    """Same parameters in MMPose's BottomupRandomAffine: scale and rotation
    agree with the authors', the shift along the long side does not (the
    reason the configs use LOGOCAPRandomAffine)."""
    mmpose = draws(config_affine('BottomupRandomAffine'), 640, 427, 0)
    theirs = authors(640, 427, 1)
    for key in ('scale', 'rotation'):
        assert ks_2samp(mmpose[key], theirs[key]).statistic < BOUND
    assert ks_2samp(mmpose['shift_x'], theirs['shift_x']).statistic > 0.1
    assert np.abs(mmpose['shift_x']).max() > 0.35  # up to 0.2 * 640 / 320


def test_authors_shift_is_integer_pixels_within_a_fifth_of_the_crop():
    rng = np.random.default_rng(0)
    for _ in range(200):
        p = sample_authors_affine(640, 427, rng)
        assert p['shift_x'] == int(p['shift_x'])
        assert abs(p['shift_x']) <= 0.2 * p['crop']
        assert 0.75 * 427 <= p['crop'] <= 1.5 * 427
