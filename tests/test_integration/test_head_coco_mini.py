"""LOGOCAPHead on a real coco-mini batch: losses, gradient flow, predict."""
import numpy as np
import pytest
import torch
from mmengine.dataset import pseudo_collate
from mmengine.structures import InstanceData

from mmpose.registry import DATASETS, MODELS
from mmpose.structures import PoseDataSample

from logocap_mmpose.models.proposals import gt_center_proposals

from tests.conftest import COCO_FLIP, COCO_SIGMAS, require_shared

CODEC = dict(type='LOGOCAPLabel', input_size=(256, 256),
             heatmap_size=(64, 64), decode_max_instances=10)
C_IN = 16
TRAIN_CFG = dict(num_proposals=10)  # model.train_cfg


def build_head(**kw):
    cfg = dict(type='LOGOCAPHead', in_channels=C_IN,
               keypoint_sigmas=COCO_SIGMAS,
               branch_cfg=dict(heatmap_channels=8, offset_channels=16,
                               embedding_channels=8),
               cmp_cfg=dict(channels=(32, 16, 16),
                            norm_cfg=dict(type='AttentiveNorm',
                                          num_mixtures=4)),
               kem_cfg=dict(global_size=33), decoder=CODEC)
    cfg.update(kw)
    head = MODELS.build(cfg)
    head.init_weights()
    return head


def train_batch(n=2):
    root = require_shared('coco-mini')
    pipeline = [
        dict(type='LoadImage'),
        dict(type='BottomupRandomAffine', input_size=(256, 256),
             shift_factor=0.2, scale_factor=(0.75, 1.5), rotate_factor=30),
        dict(type='RandomFlip', direction='horizontal'),
        dict(type='GenerateTarget', encoder=CODEC),
        dict(type='LOGOCAPGetHeatmapMask'),
        dict(type='PackPoseInputs')
    ]
    dataset = DATASETS.build(
        dict(type='CocoDataset', data_root=root, data_mode='bottomup',
             ann_file='annotations/person_keypoints_train2017.json',
             data_prefix=dict(img='train2017/'), pipeline=pipeline))
    np.random.seed(0)
    batch = pseudo_collate([dataset[i] for i in range(n)])
    return batch['data_samples']


def feats_for(samples, seed=0, requires_grad=False):
    torch.manual_seed(seed)
    x = torch.randn(len(samples), C_IN, 64, 64, requires_grad=requires_grad)
    return (x, )


def test_codec_fields_reach_the_head():
    samples = train_batch()
    fields = samples[0].gt_fields
    for key in ('heatmaps', 'heatmap_weights', 'heatmap_mask',
                'displacements', 'displacement_weights'):
        assert key in fields, key
    assert fields.heatmaps.shape == (18, 64, 64)
    labels = samples[0].gt_instance_labels
    assert labels.instance_keypoints.shape[1:] == (17, 2)


def test_loss_on_real_batch_is_finite_scalars():
    head = build_head()
    samples = train_batch()
    losses = head.loss(feats_for(samples), samples, TRAIN_CFG)
    for key in ('loss_heatmap', 'loss_offset', 'loss_kam', 'loss_refine',
                'oks_gate_ratio'):
        assert key in losses, key
        assert losses[key].dim() == 0 and torch.isfinite(losses[key])


def _gt_proposals(head, samples, noise=2.0):
    """Replace the decoder's proposals by noisy GT poses so the OKS gate
    passes (what a trained offset head gives)."""
    labels = [d.gt_instance_labels for d in samples]
    G = max(len(lb.instance_areas) for lb in labels)

    def decode_batch(heatmaps, displacements, max_instances=None, thr=None):
        B = heatmaps.shape[0]
        kpts = torch.zeros(B, G, 17, 2)
        for b, lb in enumerate(labels):
            kpts[b, :len(lb.instance_areas)] = lb.instance_keypoints
        torch.manual_seed(0)
        kpts = kpts + noise * torch.randn_like(kpts)
        return kpts, torch.ones(B, G), torch.ones(B, G, dtype=torch.bool)

    head.decoder.decode_batch = decode_batch


def _grad_norms(head, loss):
    head.zero_grad()
    loss.backward(retain_graph=True)

    def norm(module):
        grads = [p.grad for p in module.parameters() if p.grad is not None]
        return sum(float(g.abs().sum()) for g in grads)

    return {
        name: norm(getattr(head, name))
        for name in ('heatmap_layers', 'offset_layers', 'embedding_layers',
                     'cmp')
    }


def test_gradient_flow_matches_reference():
    head = build_head()
    samples = train_batch()
    _gt_proposals(head, samples)
    feats = feats_for(samples, requires_grad=True)
    losses = head.loss(feats, samples, TRAIN_CFG)
    assert float(losses['oks_gate_ratio']) > 0
    assert float(losses['loss_refine']) > 0 and float(losses['loss_kam']) > 0

    refine = _grad_norms(head, losses['loss_refine'])
    assert refine['heatmap_layers'] > 0 and refine['cmp'] > 0
    assert refine['embedding_layers'] > 0
    assert refine['offset_layers'] == 0

    kam = _grad_norms(head, losses['loss_kam'])
    assert kam['cmp'] > 0 and kam['embedding_layers'] > 0
    assert kam['heatmap_layers'] == 0 and kam['offset_layers'] == 0

    offset = _grad_norms(head, losses['loss_offset'])
    assert offset['offset_layers'] > 0
    assert offset['heatmap_layers'] == 0 and offset['cmp'] == 0

    feats[0].grad = None
    losses['loss_refine'].backward()
    assert feats[0].grad.abs().sum() > 0  # reaches the backbone


def _lively_head(**kw):
    """Eval-mode head with large random weights so predictions vary."""
    head = build_head(**kw).eval()
    torch.manual_seed(3)
    for m in head.modules():
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.normal_(m.weight, 0, 0.2)
    with torch.no_grad():
        head.heatmap_layers[-1].bias.fill_(0.5)
    return head


def _test_samples(n):
    samples = []
    for _ in range(n):
        s = PoseDataSample(metainfo=dict(flip_indices=COCO_FLIP,
                                         input_size=(256, 256)))
        s.gt_instances = InstanceData()
        samples.append(s)
    return samples


def _flip_feats(x):
    return [(x, ), (x.flip(-1), )]


@pytest.mark.float_bound
def test_predict_flip_batch_of_two_equals_two_singles():
    head = _lively_head()
    torch.manual_seed(5)
    x = torch.randn(2, C_IN, 64, 64)
    cfg = dict(flip_test=True, mode='full', nms_dist_thr=0.05,
               nms_joints_thr=8)
    with torch.no_grad():
        both = head.predict(_flip_feats(x), _test_samples(2), cfg)
        singles = [
            head.predict(_flip_feats(x[i:i + 1]), _test_samples(1), cfg)[0]
            for i in range(2)
        ]
    for b, s in zip(both, singles):
        assert len(b.keypoints) > 0
        np.testing.assert_allclose(b.keypoints, s.keypoints, atol=1e-4)
        np.testing.assert_allclose(b.keypoint_scores, s.keypoint_scores,
                                   atol=1e-5)
        assert b.bboxes.shape == (len(b.keypoints), 4)
        assert isinstance(b.keypoints, np.ndarray)


@pytest.mark.parametrize('mode', ['full', 'baseline', 'kems_only',
                                  'kams_only'])
def test_ablation_modes_run(mode):
    head = _lively_head()
    x = torch.randn(1, C_IN, 64, 64)
    with torch.no_grad():
        preds, fields = head.predict(
            _flip_feats(x), _test_samples(1),
            dict(flip_test=True, mode=mode, output_heatmaps=True))
    p = preds[0]
    assert p.keypoints.shape[1:] == (17, 2)
    assert p.keypoint_scores.shape == p.keypoints.shape[:2]
    assert fields[0].heatmaps.shape == (18, 64, 64)


def test_modes_differ_and_baseline_keeps_initial_poses():
    head = _lively_head()
    x = torch.randn(1, C_IN, 64, 64)
    cfg = dict(flip_test=False, nms_dist_thr=0)
    with torch.no_grad():
        base = head.predict((x, ), _test_samples(1), dict(cfg,
                                                          mode='baseline'))
        full = head.predict((x, ), _test_samples(1), dict(cfg, mode='full'))
        hm, disp, _ = head.forward((x, ))
        init, _, valid = head.decoder.decode_batch(hm, disp)
    assert len(base[0].keypoints) > 0
    candidates = init[0][valid[0]].numpy()  # (n, K, 2)
    for pose in base[0].keypoints:  # every baseline pose is an initial pose
        dist = np.abs(candidates - pose).max(axis=(1, 2))
        assert dist.min() < 1e-4
    assert not np.allclose(base[0].keypoints, full[0].keypoints)


def test_clear_errors():
    with pytest.raises(ValueError, match='num_keypoints=17 but 14'):
        build_head(keypoint_sigmas=COCO_SIGMAS[:14])
    with pytest.raises(ValueError, match='keypoint sigmas'):
        build_head(keypoint_sigmas=None)
    head = build_head()
    with pytest.raises(ValueError, match='input channels'):
        head.forward((torch.zeros(1, C_IN + 1, 8, 8), ))
    with pytest.raises(ValueError, match='mode'):
        head.predict((torch.zeros(1, C_IN, 8, 8), ), _test_samples(1),
                     dict(mode='kems'))


def test_targets_with_other_keypoint_count_raise():
    head = build_head()
    samples = train_batch()
    for s in samples:
        s.gt_fields.set_field(s.gt_fields.heatmaps[:15], 'heatmaps')
    with pytest.raises(ValueError, match='14 keypoints but LOGOCAPHead'):
        head.loss(feats_for(samples), samples, TRAIN_CFG)


def test_sigmas_from_dataset_meta():
    head = build_head(keypoint_sigmas=None,
                      metainfo=dict(from_file='configs/_base_/datasets/'
                                    'crowdpose.py'),
                      num_keypoints=14)
    assert head.sigmas.shape == (14, ) and head.kem_offsets.shape[0] == 14


def test_gt_center_proposals_decode_ground_truth():
    """With the codec's exact offsets, proposals read at the GT centre cells
    are the GT poses (the optional injection of GT-centre proposals)."""
    head = build_head()
    codec = head.decoder
    rng = np.random.default_rng(0)
    kpts = rng.uniform(60, 200, (3, 17, 2)).astype(np.float32)
    kpts[1] += 20
    vis = np.ones((3, 17), np.float32)
    enc = codec.encode(kpts, vis, area=np.array([9e3, 8e3, 7e3]))
    disp = torch.from_numpy(enc['displacements'])[None]
    props = gt_center_proposals(codec, disp, torch.from_numpy(kpts)[None],
                                torch.from_numpy(vis)[None])
    assert props.shape == (1, 3, 17, 2)
    # persons overlap, so a centre cell can belong to a smaller person;
    # every proposal must be one of the GT poses exactly
    for pose in props[0].numpy():
        assert np.abs(kpts - pose).max(axis=(1, 2)).min() < 1e-3
