"""Each LOGO-CAP stage alone: KEM geometry, Attentive Norm, CMP,
contextual adaptation, top-2 decoding, OKS targets and the OKS kernel loss."""
import math

import pytest
import torch

from logocap_mmpose.models import (AttentiveNorm2d, ConvMessagePassing,
                                   contextual_adaptation, oks_kernel_targets,
                                   top2_decode)
from logocap_mmpose.models.kem import (gaussian_window, keypoint_scales,
                                       local_kem_offsets, sample_global_kems,
                                       sample_local_kems)
from logocap_mmpose.models.heads import LOGOCAPHead
from logocap_mmpose.models.refinement import RefinementGeometry, refine
from mmpose.registry import MODELS

from tests.conftest import COCO_SIGMAS

# the reference's per-keypoint factors, sigma_k / min(sigma), rounded
REFERENCE_SCALES = [
    1.04, 1, 1, 1.4, 1.4, 3.16, 3.16, 2.88, 2.88, 2.48, 2.48, 4.28, 4.28,
    3.48, 3.48, 3.56, 3.56
]


def test_keypoint_scales_equal_reference():
    scales = keypoint_scales(COCO_SIGMAS)
    assert [round(float(s), 2) for s in scales] == REFERENCE_SCALES


@pytest.mark.float_bound
def test_local_kem_grid_values():
    offsets = local_kem_offsets(keypoint_scales(COCO_SIGMAS), 11, 5.0)
    assert offsets.shape == (17, 11, 11, 2)
    # unscaled grid is linspace(-5, 5, 11): symmetric, centre cell is zero
    base = torch.linspace(-5, 5, 11)
    torch.testing.assert_close(offsets[1, 0, :, 0], base)
    torch.testing.assert_close(offsets[1, :, 0, 1], base)
    assert offsets[:, 5, 5].abs().max() == 0
    # cell (i, j) = scale_k * (grid[j], grid[i])
    torch.testing.assert_close(offsets[11, 2, 9],
                               torch.tensor([4.0, -3.0]) * 0.107 / 0.025)


def test_bad_sigmas_raise():
    with pytest.raises(ValueError, match='positive'):
        keypoint_scales([0.1, 0.0])
    with pytest.raises(ValueError, match='odd'):
        local_kem_offsets(torch.ones(2), 10)


def test_local_kem_sampling_is_keypoint_major():
    B, C, h, w, K = 1, 3, 8, 8, 2
    emb = torch.arange(B * C * h * w, dtype=torch.float32).reshape(
        B, C, h, w)
    # a pose at the centre of cell (2, 5) and (6, 1) (stride 4: 4*j + 1.5)
    pts = torch.tensor([[5 * 4 + 1.5, 2 * 4 + 1.5], [1 * 4 + 1.5,
                                                      6 * 4 + 1.5]])
    poses = pts.reshape(1, 1, K, 1, 1, 2).expand(1, 1, K, 3, 3, 2)
    feats = sample_local_kems(emb, poses, stride=4)
    assert feats.shape == (1, 1, K * C, 3, 3)
    for k, (y, x) in enumerate([(2, 5), (6, 1)]):
        for c in range(C):
            assert feats[0, 0, k * C + c, 1, 1] == emb[0, c, y, x]


def test_global_kems_follow_window_layout():
    hm = torch.zeros(1, 1, 16, 16)
    hm[0, 0, 5, 9] = 1.0  # input pixel (9*4+1.5, 5*4+1.5) = (37.5, 21.5)
    centre = torch.tensor([[[[30.5, 25.5]]]])  # (B, N, K, 2)
    win = sample_global_kems(hm, centre, 21, stride=4)
    assert win.shape == (1, 1, 1, 21, 21)
    i, j = divmod(int(win.flatten().argmax()), 21)
    assert (j - 10, i - 10) == (7, -4)
    g = gaussian_window(97, 16.0)
    assert g[48, 48] == 1 and g[48, 48 + 16] == pytest.approx(math.exp(-0.5))


@pytest.mark.float_bound
def test_attentive_norm_equals_direct_formula():
    torch.manual_seed(0)
    an = AttentiveNorm2d(6, num_mixtures=4).train()
    x = torch.randn(5, 6, 7, 7) * 2 + 0.5
    out = an(x)
    mu = x.mean((2, 3))
    var = x.var((2, 3), unbiased=True)
    y = mu / torch.sqrt(var + 1e-3)
    lam = torch.clamp(y @ an.attention.weight[:, :, 0, 0].t() + 3, 0, 6) / 6
    bmean = x.mean((0, 2, 3), keepdim=True)
    bvar = x.var((0, 2, 3), unbiased=False, keepdim=True)
    xhat = (x - bmean) / torch.sqrt(bvar + 1e-5)
    ref = (lam @ an.weight)[..., None, None] * xhat + (lam @ an.bias)[...,
                                                                      None,
                                                                      None]
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)


def test_cmp_shapes_and_authors_layer_layout():
    cmp = ConvMessagePassing(
        17 * 4, 17, (16, 8, 8),
        norm_cfg=dict(type='AttentiveNorm', num_mixtures=3))
    kams = cmp(torch.randn(3, 68, 11, 11))
    assert kams.shape == (3, 17, 11, 11)
    names = [n for n, _ in cmp.layers.named_children()]
    assert names == [str(i) for i in range(10)]
    assert isinstance(cmp.layers[4], AttentiveNorm2d)
    assert cmp.layers[0].bias is None and cmp.layers[9].bias is not None
    plain = ConvMessagePassing(68, 17, (16, 8, 8),
                               norm_cfg=dict(type='BN'))
    assert isinstance(plain.layers[4], torch.nn.BatchNorm2d)


def _render(points, size, sigma):
    """Heatmaps (1, K, size, size) at full input resolution (stride 1)."""
    ys, xs = torch.meshgrid(torch.arange(size).float(),
                            torch.arange(size).float(), indexing='ij')
    d2 = (xs - points[:, 0, None, None])**2 + (ys - points[:, 1, None,
                                                            None])**2
    return torch.exp(-d2 / (2 * sigma**2))[None]


@pytest.mark.parametrize('impl', ['conv', 'fft'])
def test_adaptation_with_centre_impulse_recovers_ground_truth(impl):
    torch.manual_seed(1)
    K = 17
    gt = torch.rand(K, 2) * 120 + 40
    hm = _render(gt, 200, sigma=2.0)
    initial = gt + (torch.rand(K, 2) * 2 - 1) * 10 / math.sqrt(2)
    assert ((initial - gt).norm(dim=1) <= 10).all()
    win = sample_global_kems(hm, initial[None, None], 97, stride=1)[0]
    win = win * gaussian_window(97, 16.0)
    kam = torch.zeros(1, K, 11, 11)
    kam[..., 5, 5] = 1.0
    offsets, scores = top2_decode(contextual_adaptation(win, kam, impl),
                                  0.75)
    err = (initial + offsets[0] - gt).norm(dim=1)
    assert err.max() < 1.0, err
    assert (scores > 0).all()


@pytest.mark.float_bound
@pytest.mark.parametrize('impl', ['conv', 'fft'])
@pytest.mark.parametrize('dy,dx', [(0, 3), (-2, 0), (4, -5), (-5, 5)])
def test_adaptation_impulse_shifts_by_cell_offset(dy, dx, impl):
    # peak off the pixel grid: a unique second-best cell (no exact ties for
    # float rounding to break differently)
    hm = _render(torch.tensor([[100.3, 99.8]]), 200, sigma=2.0)
    initial = torch.tensor([[[[100.0, 100.0]]]])
    win = sample_global_kems(hm, initial, 97, stride=1)[0]
    kam = torch.zeros(1, 1, 11, 11)
    kam[0, 0, 5, 5] = 1
    base, _ = top2_decode(contextual_adaptation(win, kam, impl))
    kam = torch.zeros(1, 1, 11, 11)
    kam[0, 0, 5 + dy, 5 + dx] = 1
    moved, _ = top2_decode(contextual_adaptation(win, kam, impl))
    # a true convolution with 1-pixel cells: the response moves by (dx, dy)
    torch.testing.assert_close(moved - base, torch.tensor([[[dx, dy]]],
                                                          dtype=torch.float))


@pytest.mark.float_bound
def test_fft_adaptation_equals_grouped_conv_with_gradients():
    torch.manual_seed(0)
    kems = torch.rand(3, 4, 21, 21, requires_grad=True)
    kams = torch.randn(3, 4, 5, 5, requires_grad=True)
    weights = torch.randn(3, 4, 21, 21)
    grads = []
    outs = []
    for impl in ('conv', 'fft'):
        out = contextual_adaptation(kems, kams, impl)
        (out * weights).sum().backward()
        outs.append(out.detach())
        grads.append((kems.grad.clone(), kams.grad.clone()))
        kems.grad = None
        kams.grad = None
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-4, atol=1e-5)
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match='impl'):
        contextual_adaptation(kems, kams, 'direct')


def test_fft_size_is_smooth_and_large_enough():
    from logocap_mmpose.models.adaptation import fft_size
    assert fft_size(107) == 108 and fft_size(64) == 64 and fft_size(11) == 12
    assert fft_size(59) == 60


@pytest.mark.float_bound
def test_top2_decode_convex_average():
    maps = torch.zeros(1, 1, 5, 5)
    maps[0, 0, 2, 3] = 1.0  # (x, y) offset (1, 0)
    maps[0, 0, 1, 3] = 0.6  # (1, -1)
    offsets, scores = top2_decode(maps, 0.75)
    torch.testing.assert_close(offsets, torch.tensor([[[1.0, -0.25]]]))
    torch.testing.assert_close(scores, torch.tensor([[0.75 + 0.15]]))


def test_oks_kernel_loss_hand_computed():
    loss = MODELS.build(dict(type='OKSKernelLoss', loss_weight=0.5))
    kams = torch.zeros(3, 2, 2, 2)
    kams[0, 0] = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    oks = torch.zeros(3, 2, 2, 2)
    oks[0, 0, 1, 1] = 0.5
    oks[1, 1] = 1.0
    weights = torch.tensor([[0.2, 0.4], [0.0, 0.5], [0.0, 0.0]])
    # the 3 proposals given are the gated ones: a mean over all of them
    # proposal 0: (0.2*(1 + 0.25) + 0.4*0) / 8 = 0.03125
    # proposal 1: 0.5 * 4 * 1 / 8 = 0.25; proposal 2: zero weights, 0
    expected = 0.5 * (0.03125 + 0.25 + 0.0) / 3
    assert float(loss(kams, oks, weights)) == pytest.approx(expected)
    empty = torch.zeros(0, 2, 2, 2, requires_grad=True)
    zero = loss(empty, empty.detach(), torch.zeros(0, 2))
    assert float(zero) == 0.0
    zero.backward()
    assert empty.grad is not None
    with pytest.raises(ValueError, match='shape'):
        loss(kams, oks, weights[:, :1])


@pytest.mark.float_bound
def test_oks_targets_match_gate_and_weights():
    sigmas = torch.tensor([0.05, 0.1])
    offsets = local_kem_offsets(keypoint_scales(sigmas), 3, 4.0)
    gt = torch.tensor([[[[10.0, 10.0], [30.0, 10.0]],
                        [[200.0, 200.0], [220.0, 200.0]]]])
    vis = torch.ones(1, 2, 2)
    areas = torch.tensor([[400.0, 400.0]])
    # proposal 0 near person 1 with keypoint 0 off by one cell (-4, 0)
    # proposal 1 far from everybody
    initial = torch.tensor([[[[196.0, 200.0], [220.0, 200.0]],
                             [[500.0, 500.0], [520.0, 500.0]]]])
    poses = initial[..., None, None, :] + offsets
    t = oks_kernel_targets(poses, gt, vis, areas, sigmas, 0.5)
    assert t['matched'][0, 0] == 1
    assert t['gate'].tolist() == [[True, False]]
    torch.testing.assert_close(t['matched_keypoints'][0, 0], gt[0, 1])
    # keypoint 0: best cell (dx=+4) reaches OKS 1, centre has exp(-16/(2*400*0.01))
    centre = math.exp(-16 / (2 * 400 * 4 * 0.05**2))
    assert float(t['oks'][0, 0, 0, 1, 2]) == pytest.approx(1.0)
    assert float(t['weights'][0, 0, 0]) == pytest.approx(1 - centre)
    assert float(t['weights'][0, 0, 1]) == pytest.approx(0.0)
    assert t['weights'][0, 1].abs().max() == 0


def test_oks_targets_without_ground_truth():
    poses = torch.zeros(2, 3, 2, 3, 3, 2)
    t = oks_kernel_targets(poses, torch.zeros(2, 0, 2, 2),
                           torch.zeros(2, 0, 2), torch.zeros(2, 0),
                           torch.tensor([0.05, 0.1]))
    assert t['weights'].shape == (2, 3, 2) and not t['gate'].any()


@pytest.mark.parametrize('decode', ['argmax', 'top2'])
def test_kams_only_decoding_on_hand_made_grid(decode):
    """``kams_only`` reads the KAM grid alone: 'argmax' (the authors'
    partial refinement) moves the initial keypoint to the largest cell and
    scores it by that cell's value; 'top2' averages the two largest."""
    offsets = local_kem_offsets(torch.tensor([1.0, 2.0]), 5, 2.0)  # (2,5,5,2)
    kams = torch.zeros(1, 1, 2, 5, 5)  # (B, N, K, S, S)
    kams[0, 0, 0, 1, 4], kams[0, 0, 0, 3, 2] = 0.9, 0.5  # (row, col)
    kams[0, 0, 1, 2, 0], kams[0, 0, 1, 2, 1] = 0.6, 0.4
    # the head's geometry for this kams_only_decode (CMP: the KAMs above)
    head = LOGOCAPHead(in_channels=8, num_keypoints=2,
                       keypoint_sigmas=[0.1, 0.2],
                       kem_cfg=dict(local_size=5, local_extent=2.0),
                       adaptation_cfg=dict(kams_only_decode=decode),
                       decoder=dict(type='LOGOCAPLabel', input_size=(32, 32),
                                    heatmap_size=(8, 8)))
    geometry = head.geometry
    assert isinstance(geometry, RefinementGeometry)
    torch.testing.assert_close(geometry.kem_offsets, offsets)
    initial = torch.tensor([[[[10.0, 20.0], [30.0, 40.0]]]])  # (1,1,2,2)
    keypoints, scores, _ = refine('kams_only', geometry,
                                  lambda local: kams.flatten(0, 1), None,
                                  torch.zeros(1, 1, 8, 8), initial)
    # cell (row i, col j) of keypoint k is at initial + scale_k * (j-2, i-2)
    first = torch.tensor([10.0 + 2, 20.0 - 1])
    second = torch.tensor([30.0 - 2 * 2, 40.0 + 0])
    if decode == 'argmax':
        expected = torch.stack((first, second))
        expected_scores = torch.tensor([0.9, 0.6])
    else:
        expected = torch.stack((
            0.75 * first + 0.25 * torch.tensor([10.0 + 0, 20.0 + 1]),
            0.75 * second + 0.25 * torch.tensor([30.0 - 2, 40.0 + 0])))
        expected_scores = torch.tensor([0.75 * 0.9 + 0.25 * 0.5,
                                        0.75 * 0.6 + 0.25 * 0.4])
    assert torch.allclose(keypoints[0, 0], expected, atol=1e-5)
    assert torch.allclose(scores[0, 0], expected_scores, atol=1e-6)


def test_kams_only_decode_is_checked():
    with pytest.raises(ValueError, match='kams_only_decode'):
        LOGOCAPHead(in_channels=8, adaptation_cfg=dict(
            kams_only_decode='mean'))
