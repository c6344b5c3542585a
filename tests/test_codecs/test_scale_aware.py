"""LOGOCAPLabel's scale-aware keypoint targets (``scale_aware_sigma``)."""
import hashlib

import numpy as np
import pytest

from mmpose.registry import KEYPOINT_CODECS


def build(**kw):
    cfg = dict(type='LOGOCAPLabel', input_size=(256, 256),
               heatmap_size=(64, 64))
    cfg.update(kw)
    return KEYPOINT_CODECS.build(cfg)


def random_people():
    """Six persons of 17 keypoints, some outside the input, some hidden."""
    rng = np.random.default_rng(11)
    kpts = rng.uniform(-10, 266, (6, 17, 2)).astype(np.float32)
    vis = (rng.uniform(size=(6, 17)) > 0.2).astype(np.float32)
    area = np.array([400., 2500., 9000., 20000., 40000., 900.], np.float32)
    return kpts, vis, area


def digest(codecs) -> str:
    h = hashlib.sha256()
    warps = [None, np.array([[0.5, 0, 3], [0, 0.5, 1]], np.float32)]
    for codec in codecs:
        kpts, vis, area = random_people()
        for warp in warps:
            enc = codec.encode(kpts, vis, area=area, warp_mat=warp)
            for key in sorted(enc):
                h.update(key.encode())
                h.update(np.ascontiguousarray(enc[key]).tobytes())
    return h.hexdigest()


# sha256 of every target of the case above, recorded with the fixed-sigma
# codec once its Gaussian windows, centres and offset overlaps followed the
# authors' (numpy 1.26 of requirements/constraints.txt). Any change
# to the default targets must change this on purpose.
FIXED_SIGMA_DIGEST = (
    '88d7ad9a65351dd850914adfa319e66b482e89416eecce6e6730f6454972d0de')


def test_default_targets_are_bit_identical_to_before_the_option():
    codecs = [build(), build(sigma=1.5, center_sigma=3.0)]
    assert not codecs[0].scale_aware_sigma
    assert digest(codecs) == FIXED_SIGMA_DIGEST
    # off explicitly is the same as the default, whatever the other knobs
    off = [build(scale_aware_sigma=False, sigma_reference_size=10.0,
                 sigma_range=(0.1, 9.0)),
           build(sigma=1.5, center_sigma=3.0, scale_aware_sigma=False)]
    assert digest(off) == FIXED_SIGMA_DIGEST


def test_sigma_at_the_reference_size_is_the_fixed_sigma():
    ref = 64.0
    fixed = build()
    aware = build(scale_aware_sigma=True, sigma_reference_size=ref)
    assert aware.person_sigmas(np.array([ref**2]))[0] == pytest.approx(2.0)
    kpts, vis, _ = random_people()
    area = np.full(len(kpts), ref**2, np.float32)  # every person at ref
    a, b = fixed.encode(kpts, vis, area=area), aware.encode(kpts, vis,
                                                             area=area)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


@pytest.mark.float_bound
def test_sigma_formula_and_clipping():
    codec = build(sigma=2.0, scale_aware_sigma=True, sigma_reference_size=64,
                  sigma_range=(1.0, 4.0))
    sides = np.array([8.0, 32.0, 64.0, 96.0, 128.0, 512.0])
    got = codec.person_sigmas(sides**2)
    np.testing.assert_allclose(got, [1.0, 1.0, 2.0, 3.0, 4.0, 4.0])
    # the defaults: reference a quarter of the input side, range sigma x
    # [1/2, 2]
    default = build(scale_aware_sigma=True)
    assert default.sigma_reference_size == 64.0
    assert default.sigma_range == (1.0, 4.0)
    with pytest.raises(ValueError, match='sigma_range'):
        build(scale_aware_sigma=True, sigma_range=(3.0, 1.0))
    with pytest.raises(ValueError, match='sigma_reference_size'):
        build(scale_aware_sigma=True, sigma_reference_size=0)


def fitted_sigma(profile: np.ndarray, centre: float) -> float:
    """Sigma of a 1-D Gaussian profile from its second moment."""
    x = np.arange(len(profile)) - centre
    return float(np.sqrt((profile * x**2).sum() / profile.sum()))


def test_a_bigger_person_gets_a_wider_gaussian():
    codec = build(scale_aware_sigma=True, sigma_reference_size=64,
                  sigma_range=(0.5, 8.0))
    # two single-keypoint persons far apart, the second 3x the side
    kpts = np.array([[[62.0, 62.0]], [[190.0, 190.0]]], np.float32)
    vis = np.ones((2, 1), np.float32)
    area = np.array([48.0**2, 144.0**2], np.float32)
    enc = codec.encode(kpts, vis, area=area)
    hm = enc['heatmaps'][0]
    u_small = codec.to_heatmap(kpts[0, 0])  # (15.125, 15.125) cells
    u_big = codec.to_heatmap(kpts[1, 0])
    row_small = hm[int(round(u_small[1])), :32]
    row_big = hm[int(round(u_big[1])), 32:]
    s_small = fitted_sigma(row_small, u_small[0])
    s_big = fitted_sigma(row_big, u_big[0] - 32)
    # 2 * 48/64 = 1.5 and 2 * 144/64 = 4.5 cells (truncation at 3 sigma
    # shrinks the second moment by ~1%)
    assert s_small == pytest.approx(1.5, rel=0.03)
    assert s_big == pytest.approx(4.5, rel=0.03)
    # the same persons with the fixed sigma: equal widths of 2 cells
    fixed = build().encode(kpts, vis, area=area)['heatmaps'][0]
    w_small = fitted_sigma(fixed[int(round(u_small[1])), :32], u_small[0])
    w_big = fitted_sigma(fixed[int(round(u_big[1])), 32:], u_big[0] - 32)
    assert w_small == pytest.approx(w_big, rel=1e-3)
    assert w_small == pytest.approx(2.0, rel=0.03)
    # the 3-sigma weight windows follow each Gaussian: 2*ceil(3 sigma)+1
    # cells wide where the Gaussian is non-zero
    weights = enc['heatmap_weights'][0]
    width_small = int((weights[int(round(u_small[1])), :32] == 1).sum())
    width_big = int((weights[int(round(u_big[1])), 32:] == 1).sum())
    assert width_small < width_big
    assert width_big >= 2 * int(3 * 4.5)
    # peaks stay at the keypoint cells and reach 1 near them
    assert hm[:32, :32].max() > 0.9 and hm[32:, 32:].max() > 0.9
    # the centre Gaussians keep center_sigma: equal widths
    centre = enc['heatmaps'][1]
    c_small = fitted_sigma(centre[int(round(u_small[1])), :32], u_small[0])
    c_big = fitted_sigma(centre[int(round(u_big[1])), 32:], u_big[0] - 32)
    assert c_small == pytest.approx(c_big, rel=1e-3)


def test_sigma_follows_the_area_after_augmentation():
    """``area`` is in input pixels^2 (after the affine): a warp that halves
    the person halves its sigma, while the centre cut-off still reads the
    annotated area."""
    codec = build(scale_aware_sigma=True, sigma_reference_size=64,
                  sigma_range=(0.25, 8.0))
    kpts = np.array([[[100.0, 100.0], [140.0, 160.0]]], np.float32)
    vis = np.ones((1, 2), np.float32)
    warp = np.array([[0.5, 0, 0], [0, 0.5, 0]], np.float32)
    big = codec.encode(kpts, vis, area=np.array([128.0**2]))
    small = codec.encode(kpts, vis, area=np.array([64.0**2]), warp_mat=warp)
    u = codec.to_heatmap(kpts[0, 0])
    row = int(round(u[1]))
    s_big = fitted_sigma(big['heatmaps'][0, row], u[0])
    s_small = fitted_sigma(small['heatmaps'][0, row], u[0])
    assert s_big == pytest.approx(4.0, rel=0.03)
    assert s_small == pytest.approx(2.0, rel=0.03)
    # both have a centre (annotated area 128^2 in both cases)
    assert big['heatmaps'][2].max() > 0.9 and small['heatmaps'][2].max() > 0.9
