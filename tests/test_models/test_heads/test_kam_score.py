"""``test_cfg.kam_score``: pose scores from the KAMs change the
scores (and so the ranking), never the keypoints."""
import pytest
import torch

from logocap_mmpose.models.refinement import kam_pose_scores
from tests.test_models.test_heads.test_logocap_head_loss import build_head

K = 17


def test_kam_pose_scores_by_hand():
    kams = torch.zeros(1, 2, K, 3, 3)
    kams[0, 0, :, 1, 2] = 0.8  # pose 0: every keypoint's best cell 0.8
    kams[0, 1, :8, 0, 0] = 0.4  # pose 1: 8 keypoints at 0.4, the rest 0
    scores = torch.full((1, 2, K), 0.5)
    product = kam_pose_scores(scores, kams, 'product')
    assert torch.allclose(product[0, 0], torch.full((K, ), 0.4))
    assert torch.allclose(product[0, 1], torch.full((K, ), 0.5 * 0.4 * 8 / K))
    replace = kam_pose_scores(scores, kams, 'replace')
    assert torch.equal(replace[0, 1, :8], torch.full((8, ), 0.4))
    assert torch.equal(replace[0, 1, 8:], torch.zeros(K - 8))
    assert kam_pose_scores(scores, kams, None) is scores
    with pytest.raises(ValueError, match="needs the KAMs"):
        kam_pose_scores(scores, None, 'product')
    with pytest.raises(ValueError, match='kam_score must be one of'):
        kam_pose_scores(scores, kams, 'mean')


@pytest.mark.parametrize('mode', ['full', 'kams_only'])
def test_only_scores_change(mode):
    torch.manual_seed(0)
    head = build_head().eval()
    heatmaps = torch.rand(1, K + 1, 32, 32)
    displacements = 4 * torch.randn(1, 2 * K, 32, 32)
    embedding = torch.randn(1, 4, 32, 32)
    # pose NMS off: the same poses come out, in score order
    cfg = dict(max_proposals=8, nms_dist_thr=0)
    with torch.no_grad():
        plain = head.predict_one_size(heatmaps, displacements, embedding,
                                      mode, cfg)[0]
        scored = head.predict_one_size(heatmaps, displacements, embedding,
                                       mode, dict(cfg, kam_score='product'))[0]
    assert len(plain.keypoints) == len(scored.keypoints) == 8
    assert torch.equal(torch.as_tensor(plain.keypoints),
                       torch.as_tensor(scored.keypoints))
    assert not torch.allclose(torch.as_tensor(plain.keypoint_scores),
                              torch.as_tensor(scored.keypoint_scores))


def test_modes_without_kams_refuse():
    head = build_head().eval()
    with pytest.raises(ValueError, match="mode 'full' or 'kams_only'"):
        head.predict_one_size(torch.rand(1, K + 1, 32, 32),
                              torch.zeros(1, 2 * K, 32, 32),
                              torch.zeros(1, 4, 32, 32), 'baseline',
                              dict(max_proposals=2, kam_score='product'))
