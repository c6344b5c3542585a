"""Training losses against the authors' code (``case_train.pth`` of
``../shared/data/logocap-parity``, see its README for every tensor).

The head gets the fixture's fixed head outputs and its 30 proposals per image,
with the authors' head weights loaded through the key map and the authors'
sampling convention (``sampling='authors'``, grouped-conv adaptation).
"""
import pytest
import torch

from logocap_mmpose.models import refinement
from logocap_mmpose.models.heads.official_keys import official_head_key
from logocap_mmpose.models.losses import refinement_losses
from logocap_mmpose.models.losses import oks_kernel_targets
from mmpose.registry import MODELS

from tests.conftest import COCO_SIGMAS, require_shared
from tests.float_audit import assert_below


pytestmark = pytest.mark.float_bound

# train-mode KAMs against the fixture, relative to their largest value
KAM_RTOL = 2e-4


def load_case():
    root = require_shared('logocap-parity')
    case = torch.load(f'{root}/case_train.pth')
    weights = torch.load(f'{root}/authors_head_w32.pth')
    return case, weights


def authors_head(weights, input_size: int = 192):
    head = MODELS.build(
        dict(type='LOGOCAPHead', in_channels=480, keypoint_sigmas=COCO_SIGMAS,
             kem_cfg=dict(sampling='authors'),
             adaptation_cfg=dict(impl='conv'),
             decoder=dict(type='LOGOCAPLabel',
                          input_size=(input_size, input_size),
                          heatmap_size=(input_size // 4, input_size // 4))))
    state = {}
    for key, value in weights.items():
        name = official_head_key(key)
        if name.startswith('offset_layers.3.'):
            value = -value  # the authors' offset sign
        state[name] = value
    head.load_state_dict(state, strict=True)
    return head


def padded_gt(case):
    """(B, G, K, 2), (B, G, K), (B, G) in input px, padded persons hidden."""
    gts = case['gt']
    G = max(len(g['areas_canvas']) for g in gts)
    B, K = len(gts), 17
    kpts, vis, areas = torch.zeros(B, G, K, 2), torch.zeros(B, G, K), \
        torch.ones(B, G)
    for b, g in enumerate(gts):
        n = len(g['areas_canvas'])
        kpts[b, :n] = g['keypoints_canvas'][..., :2]
        vis[b, :n] = (g['keypoints_canvas'][..., 2] > 0).float()
        areas[b, :n] = g['areas_canvas']
    return kpts, vis, areas


def rel(a, b) -> float:
    return abs(float(a) - float(b)) / abs(float(b))


def test_gate_matching_and_oks_targets():
    case, weights = load_case()
    head = authors_head(weights)
    kpts, vis, areas = padded_gt(case)
    targets = oks_kernel_targets(
        refinement.local_poses(head.geometry, case['proposals']), kpts, vis,
        areas, head.sigmas, 0.5)
    gate = targets['gate']
    assert torch.equal(gate, case['gate'])
    assert int(gate.sum()) == 23
    assert torch.equal(targets['matched'][gate], case['matched_gt'][gate])
    torch.testing.assert_close(targets['best_oks'][gate],
                               case['best_oks'][gate], atol=1e-5, rtol=0)
    torch.testing.assert_close(targets['matched_keypoints'][gate],
                               case['gated_matched_keypoints'], atol=1e-4,
                               rtol=0)
    # the fixture's OKS is computed in image px, this package's in input px:
    # 8e-6 apart on every CPU; a wrong sigma or area moves OKS by 1e-2
    torch.testing.assert_close(targets['oks'][gate], case['kam_targets'],
                               atol=1e-4, rtol=0)
    torch.testing.assert_close(targets['weights'][gate], case['kam_weights'],
                               atol=1e-4, rtol=0)


def test_dense_losses():
    case, weights = load_case()
    head = authors_head(weights)
    expected = case['losses_cmp_train']
    loss_hm = head.heatmap_loss(case['heatmaps'], case['target_heatmaps'],
                                mask=case['target_heatmap_weights'])
    # this package's displacements are the negated authors' offsets
    loss_off = head.offset_loss(-case['offsets'], -case['target_offsets'],
                                case['target_offset_weights'])
    assert_below(rel(loss_hm, expected['loss.heatmaps']), 1e-6, 'heatmaps')
    assert_below(rel(loss_off, expected['loss.offsets']), 1e-6, 'offsets')


@pytest.mark.parametrize('cmp_mode', ['train', 'eval'])
def test_refinement_losses(cmp_mode):
    case, weights = load_case()
    head = authors_head(weights)
    head.train(cmp_mode == 'train')
    kams = []
    head.cmp.register_forward_hook(lambda m, i, o: kams.append(o.detach()))
    kpts, vis, areas = padded_gt(case)
    losses = refinement_losses(head, case['heatmaps'], case['embedding'],
                               case['proposals'], kpts, vis, areas)
    expected = case[f'losses_cmp_{cmp_mode}']
    # only the 23 gated proposals entered the CMP, unclamped in training
    assert len(kams) == 1 and kams[0].shape == (23, 17, 11, 11)
    assert_below(rel(losses['loss_kam'], expected['loss.oks']), 1e-5, 'kam')
    assert_below(rel(losses['loss_refine'], expected['loss.hm']), 1e-5,
                 'refine')
    assert float(losses['oks_gate_ratio']) == pytest.approx(23 / 60)
    if cmp_mode == 'eval':
        return
    # relative to the KAMs' range (2.1): the CMP's batch statistics sum
    # 23 * 121 cells in an order each CPU picks (1.5e-5 on an AVX2 AMD EPYC,
    # 2.3e-6 here); the eval-mode statistics move them by 0.1 and more
    torch.testing.assert_close(kams[0], case['kam_pred_cmp_train'],
                               atol=KAM_RTOL * kams[0].abs().max(), rtol=0)
    state = head.state_dict()
    for key, value in case['cmp_buffers_after_train_step'].items():
        ours = state[official_head_key(key)]
        if value.dtype == torch.int64:
            assert int(ours) == int(value), key
        else:
            # statistics up to 3.3: 1.2e-6 apart with scalar kernels
            torch.testing.assert_close(ours, value, atol=1e-4, rtol=0)


def test_no_gated_proposal_gives_zero_losses_with_gradients():
    case, weights = load_case()
    head = authors_head(weights)
    kpts, vis, areas = padded_gt(case)
    heatmaps = case['heatmaps'].clone().requires_grad_()
    embedding = case['embedding'].clone().requires_grad_()
    far = case['proposals'] + 1000.0  # nothing within reach of a person
    losses = refinement_losses(head, heatmaps, embedding, far, kpts, vis,
                               areas)
    total = losses['loss_kam'] + losses['loss_refine']
    assert float(total) == 0.0 and float(losses['oks_gate_ratio']) == 0.0
    total.backward()
    assert heatmaps.grad is not None and embedding.grad is not None
    assert head.cmp.layers[0].weight.grad is not None
    assert float(head.cmp.layers[0].weight.grad.abs().sum()) == 0.0
