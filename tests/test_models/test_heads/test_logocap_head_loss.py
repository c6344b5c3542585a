"""``LOGOCAPHead.loss`` on synthetic COCO samples encoded by the codec.

No ``../shared`` data is needed: the samples come from MMPose's
``get_coco_sample`` (as MMPose's own head tests) and pass through the same
``GenerateTarget`` / ``LOGOCAPGetHeatmapMask`` / ``PackPoseInputs`` steps as
the training pipeline. The coco-mini tests in ``test_integration`` run the
same paths on real images.
"""

import numpy as np
import pytest
import torch

from logocap_mmpose.datasets import LOGOCAPGetHeatmapMask
from mmpose.datasets.transforms import GenerateTarget, PackPoseInputs
from mmpose.registry import MODELS
from mmpose.testing import get_coco_sample
from tests.conftest import COCO_SIGMAS

CODEC = dict(type='LOGOCAPLabel', input_size=(128, 128),
             heatmap_size=(32, 32), decode_max_instances=8)
C_IN = 8
GROUPED = dict(
    branch_cfg=dict(heatmap_channels=8, offset_channels=16,
                    embedding_channels=4),
    kem_cfg=dict(global_size=17),
    cmp_cfg=dict(channels=(16, 8, 8),
                 norm_cfg=dict(type='AttentiveNorm', num_mixtures=3)))


def build_head(**kw) -> torch.nn.Module:
    cfg = dict(type='LOGOCAPHead', in_channels=C_IN,
               keypoint_sigmas=COCO_SIGMAS, decoder=CODEC, **GROUPED)
    cfg.update(kw)
    head = MODELS.build(cfg)
    head.init_weights()
    return head


def synthetic_batch(num_images: int = 2, num_persons: int = 2) -> list:
    """Packed data samples of ``num_images`` 128x128 images, each with
    ``num_persons`` side-by-side persons of 17 visible keypoints."""
    steps = [GenerateTarget(encoder=CODEC), LOGOCAPGetHeatmapMask(),
             PackPoseInputs()]
    samples = []
    for i in range(num_images):
        data = get_coco_sample(img_shape=(128, 128), num_instances=num_persons,
                               non_occlusion=True)
        data['keypoints'] = np.clip(data['keypoints'] + 3 * i, 0, 127)
        data['area'] = np.full(num_persons, 60.0**2, np.float32)
        data['input_size'] = CODEC['input_size']
        data['warp_mat'] = np.eye(2, 3, dtype=np.float32)  # no augmentation
        for step in steps:
            data = step(data)
        samples.append(data['data_samples'])
    return samples


def near_perfect_forward(head, samples, feats, shift=0.0):
    """``head.forward`` whose heatmaps and offsets are the codec's targets
    plus the (learnable, tiny at init) branch outputs, so the decoded
    proposals are the ground-truth poses moved ``shift`` cells right, and
    gradients still reach every branch."""
    gt_heatmaps = torch.stack([s.gt_fields.heatmaps for s in samples])
    gt_disp = torch.stack([s.gt_fields.displacements for s in samples])
    gt_disp[:, 0::2] += shift
    x = feats[-1]
    return (head.heatmap_layers(x) + gt_heatmaps,
            head.offset_layers(x) + gt_disp, head.embedding_layers(x))


def run_loss(head, samples, train_cfg, requires_grad=False, shift=0.75):
    torch.manual_seed(0)
    feats = (torch.randn(len(samples), C_IN, 32, 32,
                         requires_grad=requires_grad), )
    head.forward = lambda f: near_perfect_forward(head, samples, f, shift)
    entered = []
    hook = head.cmp.register_forward_hook(
        lambda m, i, o: entered.append(i[0].shape[0]))
    try:
        losses = head.loss(feats, samples, train_cfg)
    finally:
        hook.remove()
        del head.forward
    return losses, feats, entered


def test_dense_losses_vanish_on_the_targets():
    head = build_head()
    samples = synthetic_batch()
    for layers in (head.heatmap_layers, head.offset_layers):
        torch.nn.init.zeros_(layers[3].weight)
        torch.nn.init.zeros_(layers[3].bias)
    losses, _, entered = run_loss(head, samples, dict(num_proposals=8),
                                  shift=0.0)
    assert float(losses['loss_heatmap']) == 0.0
    assert float(losses['loss_offset']) == 0.0
    # the decoded proposals are the GT poses: each person passes the gate
    # with a full OKS at the KEM centre cell ...
    assert entered and entered[0] >= 4
    assert float(losses['oks_gated_mean']) > 0.99
    # ... where no cell of the KEM gains OKS, so the gain weights of both
    # refinement losses are zero (as the authors weigh them)
    assert float(losses['loss_kam']) == 0 and float(losses['loss_refine']) == 0
    shifted, _, _ = run_loss(head, samples, dict(num_proposals=8))
    assert float(shifted['loss_offset']) > 0
    assert float(shifted['loss_kam']) > 0 and float(shifted['loss_refine']) > 0


@pytest.mark.parametrize('num_proposals', [4, 8])
def test_train_cfg_sets_the_proposals_and_the_gate_ratio(num_proposals):
    head = build_head()
    samples = synthetic_batch()
    losses, _, entered = run_loss(head, samples,
                                  dict(num_proposals=num_proposals))
    # only the gated proposals enter the CMP, and the logged ratio is
    # gated / all proposals of the batch
    assert len(entered) == 1 and entered[0] >= 4
    assert float(losses['oks_gate_ratio']) == pytest.approx(
        entered[0] / (2 * num_proposals))


def test_train_cfg_gate_and_gt_proposals():
    head = build_head()
    samples = synthetic_batch()
    closed, _, entered = run_loss(head, samples,
                                  dict(num_proposals=4, oks_threshold=1.01))
    assert entered == [] and float(closed['oks_gate_ratio']) == 0.0
    assert float(closed['loss_kam']) == 0 and float(closed['loss_refine']) == 0
    injected, _, entered = run_loss(
        head, samples, dict(num_proposals=4, inject_gt_proposals=True))
    # 4 decoded + 2 GT-centre proposals per image; both kinds pass the gate
    assert entered[0] >= 8
    assert float(injected['oks_gate_ratio']) == pytest.approx(
        entered[0] / (2 * 6))


def test_unknown_train_cfg_key_is_an_error():
    head = build_head()
    with pytest.raises(KeyError, match='num_proposal'):
        run_loss(head, synthetic_batch(1, 1), dict(num_proposal=4))


def _grad_sums(head, loss) -> dict:
    head.zero_grad()
    loss.backward(retain_graph=True)
    return {
        name: sum(float(p.grad.abs().sum())
                  for p in getattr(head, name).parameters()
                  if p.grad is not None)
        for name in ('heatmap_layers', 'offset_layers', 'embedding_layers',
                     'cmp')
    }


def test_gradient_routing_of_each_loss():
    """As the authors: the initial poses are detached, so no refinement loss
    reaches the offset branch; the KAM loss trains the CMP and the
    embedding only; the refine loss also reaches the heatmaps."""
    head = build_head()
    losses, feats, _ = run_loss(head, synthetic_batch(),
                                dict(num_proposals=8), requires_grad=True)
    heat = _grad_sums(head, losses['loss_heatmap'])
    assert heat['heatmap_layers'] > 0
    assert heat['offset_layers'] == heat['embedding_layers'] == 0
    assert heat['cmp'] == 0
    offset = _grad_sums(head, losses['loss_offset'])
    assert offset['offset_layers'] > 0
    assert offset['heatmap_layers'] == offset['cmp'] == 0
    kam = _grad_sums(head, losses['loss_kam'])
    assert kam['cmp'] > 0 and kam['embedding_layers'] > 0
    assert kam['heatmap_layers'] == kam['offset_layers'] == 0
    refine = _grad_sums(head, losses['loss_refine'])
    assert refine['cmp'] > 0 and refine['embedding_layers'] > 0
    assert refine['heatmap_layers'] > 0 and refine['offset_layers'] == 0
    feats[0].grad = None
    losses['loss_refine'].backward()
    assert float(feats[0].grad.abs().sum()) > 0  # reaches the backbone


def test_flat_keys_are_refused_with_their_name():
    for key, value in (('global_kem_size', 17), ('num_proposals', 5),
                       ('heatmap_channels', 8)):
        with pytest.raises(TypeError, match=key):
            build_head(**{key: value})


def test_bn_instead_of_attentive_norm_and_unknown_keys():
    head = build_head(cmp_cfg=dict(channels=(16, 8, 8),
                                   norm_cfg=dict(type='BN')))
    assert isinstance(head.cmp.layers[4], torch.nn.BatchNorm2d)
    with pytest.raises(TypeError, match='global_kem_size'):
        build_head(kem_cfg=dict(global_kem_size=17))
    with pytest.raises(ValueError, match='sampling'):
        build_head(kem_cfg=dict(sampling='nearest'))
