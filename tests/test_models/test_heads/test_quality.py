"""The learned pose-quality score (``models/quality.py``): its target, its
loss, where its gradient goes, and what ``test_cfg.pose_score`` changes."""
import math

import pytest
import torch

from logocap_mmpose.models.heads.head_config import QUALITY_CFG
from logocap_mmpose.models.losses import PoseQualityLoss, pose_oks
from logocap_mmpose.models.quality import (QUALITY_INPUTS, feature_size,
                                           quality_features, scored_by)
from tests.conftest import COCO_SIGMAS
from tests.test_models.test_heads.test_logocap_head_loss import (
    C_IN, build_head, synthetic_batch)

K = 17


def small_head(quality_cfg=None, seed: int = 0):
    """The loss tests' small head, seeded, with ``quality_cfg``."""
    torch.manual_seed(seed)
    return build_head(quality_cfg=quality_cfg)


# --------------------------------------------------------------------------
# target and loss
# --------------------------------------------------------------------------
def test_pose_oks_by_hand():
    """A pose on its person scores 1; one moved by d px on every keypoint
    scores exp(-d^2 / (2 * area * (2 sigma_k)^2)) averaged over k; the
    best-matching of two persons counts."""
    sigmas = torch.tensor(COCO_SIGMAS)
    gt = torch.rand(1, 2, K, 2) * 100
    vis = torch.ones(1, 2, K)
    areas = torch.tensor([[900., 2500.]])
    d = 3.0
    poses = torch.stack((gt[0, 0], gt[0, 1] + torch.tensor([d, 0.])))[None]
    oks = pose_oks(poses, gt, vis, areas, sigmas)
    expected = torch.exp(-d**2 / (2 * 2500. * (2 * sigmas)**2)).mean()
    assert oks.shape == (1, 2)
    assert oks[0, 0].item() == pytest.approx(1.0)
    assert oks[0, 1].item() == pytest.approx(expected.item(), rel=1e-5)
    # no person: 0
    none = pose_oks(poses, gt[:, :0], vis[:, :0], areas[:, :0], sigmas)
    assert none.tolist() == [[0.0, 0.0]]


def test_the_loss_is_the_mean_squared_error():
    loss = PoseQualityLoss(loss_weight=2.0)
    pred, target = torch.tensor([0.2, 0.9]), torch.tensor([0.5, 0.5])
    assert loss(pred, target).item() == pytest.approx(
        2.0 * (0.3**2 + 0.4**2) / 2)
    assert loss(pred[:0], target[:0]).item() == 0.0
    with pytest.raises(ValueError, match='shape mismatch'):
        loss(pred, target[:1])


def test_features_and_their_size():
    B, N, S, C = 2, 3, 5, 7
    scores, centre = torch.rand(B, N, K), torch.rand(B, N)
    kams, pooled = torch.rand(B, N, K, S, S), torch.rand(B * N, C)
    for inputs in [('scores', ), ('scores', 'kam_stats'), QUALITY_INPUTS]:
        f = quality_features(inputs, scores, centre, kams, pooled)
        assert f.shape == (B, N, feature_size(inputs, K, C))
    f = quality_features(('kam_stats', ), scores, centre, kams, pooled)
    assert torch.equal(f[..., :K], kams.flatten(-2).amax(-1))
    assert torch.allclose(f[..., K:], kams.flatten(-2).mean(-1))


# --------------------------------------------------------------------------
# the head
# --------------------------------------------------------------------------
def test_off_by_default_and_other_weights_unchanged_when_on():
    plain, with_quality = small_head(), small_head(dict(hidden=16))
    assert plain.quality is None
    assert not any('quality' in k for k in plain.state_dict())
    assert with_quality.quality is not None
    # the quality head draws nothing from the global generator: every
    # other weight starts as without it
    mine = with_quality.state_dict()
    for key, value in plain.state_dict().items():
        assert torch.equal(value, mine[key]), key


def test_bad_quality_cfg_is_refused():
    with pytest.raises(ValueError, match='quality_cfg.inputs'):
        small_head(dict(inputs=['kams']))
    with pytest.raises(TypeError, match='quality_cfg'):
        small_head(dict(width=3))


def training_losses(head):
    torch.manual_seed(5)
    feats = (torch.randn(2, C_IN, 32, 32), )
    return head.loss(feats, synthetic_batch(), dict(num_proposals=6))


@pytest.mark.parametrize('detach', [True, False])
def test_the_quality_gradient_reaches_only_the_quality_head(detach):
    """``loss_quality`` is logged; its gradient reaches the quality head
    and nothing else, unless ``quality_cfg.detach=False``."""
    head = small_head(dict(hidden=16, detach=detach))
    head.train()
    losses = training_losses(head)
    assert 'loss_quality' in losses and torch.isfinite(losses['loss_quality'])
    losses['loss_quality'].backward()
    grads = {n: p.grad for n, p in head.named_parameters()}
    assert all(grads[n] is not None and grads[n].abs().sum() > 0
               for n in grads if n.startswith('quality.mlp.0'))
    others = [n for n, g in grads.items() if not n.startswith('quality.')
              and g is not None and g.abs().sum() > 0]
    if detach:
        assert others == []
    else:  # through the features: the CMP and the dense branches
        assert any(n.startswith('cmp.') for n in others)


def test_the_quality_loss_leaves_the_other_losses_alone():
    """Same seed, same input: the other losses (and the CMP's BatchNorm
    statistics) are those of a head without the quality head."""
    plain, with_quality = small_head(), small_head(dict(hidden=16))
    plain.train(), with_quality.train()
    a, b = training_losses(plain), training_losses(with_quality)
    for key in a:
        assert torch.equal(a[key], b[key]), key
    for (name, x), (_, y) in zip(plain.cmp.named_buffers(),
                                 with_quality.cmp.named_buffers()):
        assert torch.equal(x, y), name


def predictions(head, pose_score):
    """``predict_one_size`` of random maps, pose NMS off (the same poses
    come out whatever the score)."""
    head.eval()
    torch.manual_seed(1)
    heatmaps = torch.rand(1, K + 1, 32, 32)
    displacements = 4 * torch.randn(1, 2 * K, 32, 32)
    embedding = torch.randn(1, 4, 32, 32)
    with torch.no_grad():
        return head.predict_one_size(
            heatmaps, displacements, embedding, 'full',
            dict(max_proposals=8, nms_dist_thr=0, pose_score=pose_score))[0]


def test_pose_score_reorders_the_poses_but_never_moves_them():
    head = small_head(dict(hidden=16))
    plain = predictions(head, 'heatmap')
    n = len(plain.keypoints)
    assert n >= 3
    for how in ('quality', 'product'):
        other = predictions(head, how)
        assert len(other.keypoints) == n
        # the same poses, in another order
        a = sorted(map(tuple, plain.keypoints.reshape(n, -1).round(4)))
        b = sorted(map(tuple, other.keypoints.reshape(n, -1).round(4)))
        assert a == b
        assert not torch.allclose(torch.as_tensor(plain.keypoint_scores),
                                  torch.as_tensor(other.keypoint_scores))
    quality = predictions(head, 'quality').keypoint_scores
    assert (quality.std(-1) < 1e-6).all()  # one value per pose
    assert ((quality > 0) & (quality < 1)).all()


def test_pose_score_is_checked():
    scores = torch.rand(1, 2, K)
    assert scored_by('heatmap', scores, None) is scores
    with pytest.raises(ValueError, match='pose_score must be one of'):
        scored_by('oks', scores, None)
    with pytest.raises(ValueError, match='quality head'):
        scored_by('quality', scores, None)
    with pytest.raises(ValueError, match='quality head'):
        predictions(small_head(), 'product')
    product = scored_by('product', scores, torch.tensor([[0.5, 0.25]]))
    assert torch.allclose(product, scores * torch.tensor([0.5, 0.25])[:, None])


def test_defaults_are_documented():
    assert set(QUALITY_CFG['inputs']) <= set(QUALITY_INPUTS)
    assert math.isclose(QUALITY_CFG['loss']['loss_weight'], 1.0)
