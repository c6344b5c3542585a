"""The local-window upper bound (paper, Fig. 2): ``logocap_mmpose.analysis.upper_bound``
and ``tools/upper_bound.py``.

The oracle is checked against a brute-force reference, for its exact
identity at s = 1 and its monotonicity in s (per pose and, on a synthetic
COCO fixture scored by ``CocoMetric``, in AP); the tool end to end on three
coco-mini val images with random weights.
"""
import json
import os.path as osp
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmengine.structures import InstanceData

from mmpose.datasets.datasets.utils import parse_pose_metainfo
from mmpose.structures import PoseDataSample
from logocap_mmpose.analysis.upper_bound import (
    DEFAULT_WINDOWS, annotation_arrays, correlation_table, evaluate_upper_bound,
    oks_scored_samples, oracle_keypoints, oracle_samples, plot_upper_bound,
    score_oks_correlation, true_pose_oks, upper_bound_table, window_offsets)
from logocap_mmpose.models.heads.logocap_head import resolve_metainfo_file
from logocap_mmpose.models.kem import keypoint_scales, local_kem_offsets
from tests.conftest import COCO_SIGMAS, REPO, require_shared

K = 17
SIGMAS = torch.tensor(COCO_SIGMAS)
KEM = local_kem_offsets(keypoint_scales(COCO_SIGMAS), 11, 5.0)
CPU_CONFIG = osp.join(REPO, 'configs', 'logocap', 'coco',
                      'logocap_effnetlite0_1xb8-40e_coco-256x256.py')


def random_case(seed=0, B=2, N=6, G=3, spread=12.0):
    """Poses scattered around G persons (some padding persons, some
    unlabelled keypoints)."""
    g = torch.Generator().manual_seed(seed)
    gt = torch.rand(B, G, K, 2, generator=g) * 200 + 20
    vis = (torch.rand(B, G, K, generator=g) > 0.2).float()
    vis[0, -1] = 0  # a padding person in image 0
    areas = torch.rand(B, G, generator=g) * 4000 + 1000
    owner = torch.randint(0, G, (B, N), generator=g)
    base = gt.gather(1, owner[..., None, None].expand(B, N, K, 2))
    kpts = base + torch.randn(B, N, K, 2, generator=g) * spread
    return kpts, gt, vis, areas


def pose_oks(kpts, gt, vis, areas, sigmas):
    """(B, N, G) OKS of every pose with every person (mean over the
    person's labelled keypoints), numpy reference."""
    d2 = ((kpts[:, :, None] - gt[:, None])**2).sum(-1)  # B,N,G,K
    var = 2 * areas[:, None, :, None] * (2 * sigmas)**2
    oks = np.exp(-d2 / var) * vis[:, None]
    return oks.sum(-1) / np.maximum(vis.sum(-1), 1)[:, None]


def test_window_offsets_are_the_central_kem_cells():
    for s in DEFAULT_WINDOWS:
        w = window_offsets(KEM, s)
        assert w.shape == (K, s, s, 2)
        assert torch.equal(w[:, s // 2, s // 2], torch.zeros(K, 2))
    # the 11 x 11 window is the whole grid; its step is the KEM step
    assert torch.allclose(window_offsets(KEM, 11), KEM)
    w3 = window_offsets(KEM, 3)
    assert torch.allclose(w3[:, 1, 2] - w3[:, 1, 1], KEM[:, 5, 6] - KEM[:, 5,
                                                                        5])
    for bad in (0, 2, 13):
        with pytest.raises(ValueError, match='window size'):
            window_offsets(KEM, bad)


def test_window_of_size_one_returns_the_initial_poses_exactly():
    kpts, gt, vis, areas = random_case()
    out = oracle_keypoints(kpts, window_offsets(KEM, 1), gt, vis, areas,
                           SIGMAS)
    assert torch.equal(out, kpts)
    # and through the data-sample path, with the image-frame scaling and
    # float64 keypoints (as add_pred_to_datasample leaves them)
    samples = synthetic_samples(kpts[0].numpy(), gt[0].numpy(),
                                vis[0].numpy(), areas[0].numpy())
    samples[0].pred_instances.keypoints = \
        samples[0].pred_instances.keypoints.astype(np.float64) + 1 / 3
    moved = oracle_samples(samples, KEM, [1, 11], COCO_SIGMAS)
    assert moved[1][0].pred_instances.keypoints.dtype == np.float64
    assert np.array_equal(moved[1][0].pred_instances.keypoints,
                          samples[0].pred_instances.keypoints)
    assert not np.array_equal(moved[11][0].pred_instances.keypoints,
                              samples[0].pred_instances.keypoints)
    # scores are those of the initial poses
    assert np.array_equal(moved[11][0].pred_instances.keypoint_scores,
                          samples[0].pred_instances.keypoint_scores)


@pytest.mark.float_bound
def test_oracle_matches_a_brute_force_reference():
    kpts, gt, vis, areas = random_case(seed=1)
    s = 7
    offsets = window_offsets(KEM, s)
    out = oracle_keypoints(kpts, offsets, gt, vis, areas, SIGMAS).numpy()
    cells = (kpts[..., None, None, :] + offsets).numpy()  # B,N,K,s,s,2
    k_np, g_np, v_np, a_np = (t.numpy() for t in (kpts, gt, vis, areas))
    sig = SIGMAS.numpy()
    B, N = k_np.shape[:2]
    for b in range(B):
        for n in range(N):
            # matching: best mean (over labelled keypoints) of the best cell
            d2 = ((cells[b, n][None] - g_np[b][:, :, None, None])**2).sum(-1)
            var = 2 * a_np[b][:, None, None, None] * (2 * sig[None, :, None,
                                                              None])**2
            oks = np.exp(-d2 / var) * v_np[b][..., None, None]
            score = oks.reshape(len(g_np[b]), K, -1).max(-1).sum(-1) / \
                np.maximum(v_np[b].sum(-1), 1)
            score[v_np[b].sum(-1) == 0] = -1
            g = int(score.argmax())
            for k in range(K):
                if v_np[b, g, k] == 0:
                    expected = k_np[b, n, k]
                else:
                    dist = ((cells[b, n, k] - g_np[b, g, k])**2).sum(-1)
                    i, j = np.unravel_index(dist.argmin(), dist.shape)
                    expected = cells[b, n, k, i, j]
                np.testing.assert_allclose(out[b, n, k], expected, atol=1e-4)


def test_best_pose_oks_never_decreases_with_the_window():
    """Per pose: max over persons of the oracle pose's OKS grows with s
    (the windows are nested), and it is the matched person's."""
    kpts, gt, vis, areas = random_case(seed=2, N=10, spread=20.0)
    sig = SIGMAS.numpy()
    previous = None
    for s in DEFAULT_WINDOWS:
        out = oracle_keypoints(kpts, window_offsets(KEM, s), gt, vis, areas,
                               SIGMAS).numpy()
        best = pose_oks(out, gt.numpy(), vis.numpy(), areas.numpy(),
                        sig).max(-1)
        if previous is not None:
            assert (best >= previous - 1e-6).all()
        previous = best
    initial = pose_oks(kpts.numpy(), gt.numpy(), vis.numpy(), areas.numpy(),
                       sig).max(-1)
    assert previous.mean() > initial.mean() + 0.1


def test_images_without_ground_truth_keep_their_poses():
    kpts = torch.rand(1, 4, K, 2) * 100
    out = oracle_keypoints(kpts, window_offsets(KEM, 11),
                           torch.zeros(1, 0, K, 2), torch.zeros(1, 0, K),
                           torch.zeros(1, 0), SIGMAS)
    assert torch.equal(out, kpts)


def test_annotation_arrays_drop_crowds_and_unlabelled_persons():
    person = dict(keypoints=[10, 20, 2] + [0, 0, 0] * (K - 1), area=50.0,
                  iscrowd=0)
    crowd = dict(keypoints=[1, 1, 1] * K, area=9.0, iscrowd=1)
    empty = dict(keypoints=[0, 0, 0] * K, area=7.0, iscrowd=0)
    boxed = dict(keypoints=[5, 6, 1] * K, bbox=[0, 0, 4, 5], iscrowd=0)
    kpts, vis, areas = annotation_arrays([person, crowd, empty, boxed], K)
    assert kpts.shape == (2, K, 2) and vis.shape == (2, K)
    np.testing.assert_array_equal(kpts[0, 0], [10, 20])
    assert vis[0].sum() == 1 and vis[1].sum() == K
    np.testing.assert_array_equal(areas, [50.0, 20.0])
    with pytest.raises(ValueError, match='14 keypoints'):
        annotation_arrays([dict(keypoints=[0] * 42, area=1.0)], K)


# --------------------------------------------------------------------------
# AP on a synthetic COCO fixture (evaluate_upper_bound() and CocoMetric)
# --------------------------------------------------------------------------
def synthetic_samples(kpts, gt, vis, areas, img_id=1, factor=2.0):
    """One image: predictions ``kpts`` (N, K, 2) in image pixels, ground
    truth as COCO annotations; input space = image / ``factor``."""
    anns = [
        dict(id=img_id * 100 + i, image_id=img_id, category_id=1,
             keypoints=np.concatenate((g, 2 * v[:, None]), 1).reshape(
                 -1).tolist(), num_keypoints=int(v.sum()), area=float(a),
             bbox=[float(g[:, 0].min()), float(g[:, 1].min()),
                   float(np.ptp(g[:, 0])), float(np.ptp(g[:, 1]))],
             iscrowd=0) for i, (g, v, a) in enumerate(zip(gt, vis, areas))
        if v.sum() > 0
    ]
    scores = np.linspace(0.9, 0.5, len(kpts))[:, None].repeat(K, 1)
    sample = PoseDataSample(
        metainfo=dict(id=[a['id'] for a in anns], img_id=img_id,
                      raw_ann_info=anns, input_size=(256, 256),
                      input_scale=np.array([256 * factor, 256 * factor],
                                           np.float32),
                      input_center=np.array([128 * factor, 128 * factor],
                                            np.float32)))
    sample.pred_instances = InstanceData(
        keypoints=np.asarray(kpts, np.float32),
        keypoint_scores=scores.astype(np.float32),
        bbox_scores=scores.mean(1).astype(np.float32))
    sample.gt_instances = InstanceData()
    return [sample]


class StubModel:
    """Returns fixed predictions in every test mode except 'full', where it
    returns the ground truth itself (AP 1)."""

    def __init__(self, batches, truth):
        self.head = SimpleNamespace(kem_offsets=KEM, test_cfg={})
        self.test_cfg = {}
        self.batches, self.truth = batches, truth
        self.modes_seen, self.kam_scores_seen = [], []

    def eval(self):
        return self

    def test_step(self, data):
        mode = self.test_cfg.get('mode')
        self.modes_seen.append(mode)
        self.kam_scores_seen.append(self.test_cfg.get('kam_score', 'unset'))
        samples = self.batches[data['index']]
        if mode == 'full':
            return self.truth[data['index']]
        return [s.clone() for s in samples]


@pytest.fixture(scope='module')
def synthetic_coco(tmp_path_factory):
    rng = np.random.default_rng(0)
    root = tmp_path_factory.mktemp('coco')
    images, annotations, batches, truth = [], [], [], []
    for img_id in (1, 2, 3):
        G = 3
        centres = rng.uniform(150, 450, (G, 1, 2))
        gt = (centres + rng.normal(0, 40, (G, K, 2))).astype(np.float32)
        vis = (rng.random((G, K)) > 0.15).astype(np.float32)
        areas = rng.uniform(8000, 20000, G).astype(np.float32)
        # two detections per person: a close one and a far duplicate
        noise = np.concatenate((rng.normal(0, 12, (G, K, 2)),
                                rng.normal(0, 30, (G, K, 2))))
        kpts = np.concatenate((gt, gt)) + noise
        samples = synthetic_samples(kpts, gt, vis, areas, img_id)
        batches.append(samples)
        truth.append(synthetic_samples(gt, gt, vis, areas, img_id))
        images.append(dict(id=img_id, width=640, height=640,
                           file_name=f'{img_id}.jpg'))
        annotations += samples[0].metainfo['raw_ann_info']
    ann_file = str(root / 'ann.json')
    with open(ann_file, 'w') as f:
        json.dump(dict(images=images, annotations=annotations,
                       categories=[dict(id=1, name='person')]), f)
    return ann_file, batches, truth


def test_ap_never_decreases_as_the_window_grows(synthetic_coco):
    ann_file, batches, truth = synthetic_coco
    model = StubModel(batches, truth)
    loader = [dict(index=i, data_samples=b) for i, b in enumerate(batches)]
    meta = parse_pose_metainfo(
        dict(from_file=resolve_metainfo_file(
            'configs/_base_/datasets/coco.py')))
    evaluator = dict(type='CocoMetric', ann_file=ann_file, nms_mode='none',
                     score_mode='keypoint')
    result = evaluate_upper_bound(model, loader, evaluator, DEFAULT_WINDOWS,
                         modes=('full', ), dataset_meta=meta)
    ap = [result['oracle'][s]['coco/AP'] for s in DEFAULT_WINDOWS]
    assert all(b >= a for a, b in zip(ap, ap[1:])), ap
    # on this fixture every larger window still helps (measured: 0.177,
    # 0.460, 0.652, 0.774, 0.845, 0.894), so a mixed-up window would show
    assert all(b > a for a, b in zip(ap, ap[1:])), ap
    assert result['oracle'][1] == result['initial']
    assert ap[-1] > result['initial']['coco/AP'] + 0.5, ap
    assert result['modes']['full']['coco/AP'] == pytest.approx(1.0)
    # baseline for the initial poses, 'full' as asked; the mode is restored
    assert set(model.modes_seen) == {'baseline', 'full'}
    assert 'mode' not in model.test_cfg


def test_true_pose_oks_by_hand():
    """Two labelled keypoints of one person (area 100): one exact, one 2 px
    off; the unlabelled one does not count; the best person is taken."""
    sigmas = torch.tensor([0.1, 0.2, 0.3], dtype=torch.float64)
    gt = torch.tensor([[[0., 0.], [10., 0.], [5., 5.]],
                       [[50., 50.], [60., 50.], [55., 55.]]],
                      dtype=torch.float64)
    vis = torch.tensor([[1., 1., 0.], [1., 1., 1.]], dtype=torch.float64)
    areas = torch.tensor([100., 100.], dtype=torch.float64)
    pose = gt[:1].clone()
    pose[0, 1, 0] += 2.0
    pose[0, 2] = torch.tensor([90., 90.])  # unlabelled: anywhere
    far = torch.full((1, 3, 2), 500.0, dtype=torch.float64)
    oks = true_pose_oks(torch.cat((pose, far)), gt, vis, areas, sigmas)
    hand = (1.0 + np.exp(-4.0 / (2 * 100 * (2 * 0.2)**2))) / 2  # 0.8987
    assert oks[0].item() == pytest.approx(hand, abs=1e-12)
    assert oks[1].item() == pytest.approx(0.0, abs=1e-12)
    assert true_pose_oks(pose, gt[:0], vis[:0], areas[:0],
                         sigmas).tolist() == [0.0]


def test_true_oks_ranking_repairs_a_bad_order(tmp_path):
    """Far duplicates ranked above the close detections cost AP; scoring
    by true OKS puts them back. Keypoints are never changed."""
    rng = np.random.default_rng(1)
    G = 3
    gt = (rng.uniform(150, 450, (G, 1, 2)) +
          rng.normal(0, 40, (G, K, 2))).astype(np.float32)
    vis = np.ones((G, K), np.float32)
    areas = np.full(G, 15000.0, np.float32)
    far = gt + rng.normal(0, 30, (G, K, 2))
    close = gt + rng.normal(0, 3, (G, K, 2))
    # scores fall along the rows: the far duplicates come first
    batches = [synthetic_samples(np.concatenate((far, close)), gt, vis,
                                 areas)]
    ann_file = str(tmp_path / 'ann.json')
    with open(ann_file, 'w') as f:
        json.dump(dict(images=[dict(id=1, width=640, height=640,
                                    file_name='1.jpg')],
                       annotations=batches[0][0].metainfo['raw_ann_info'],
                       categories=[dict(id=1, name='person')]), f)
    rescored = oks_scored_samples(batches[0], COCO_SIGMAS)
    np.testing.assert_array_equal(rescored[0].pred_instances.keypoints,
                                  batches[0][0].pred_instances.keypoints)
    scores = rescored[0].pred_instances.keypoint_scores[:, 0]
    assert (scores[G:] > scores[:G].max()).all()  # close ones above
    meta = parse_pose_metainfo(
        dict(from_file=resolve_metainfo_file(
            'configs/_base_/datasets/coco.py')))
    evaluator = dict(type='CocoMetric', ann_file=ann_file, nms_mode='none',
                     score_mode='keypoint')
    loader = [dict(index=0, data_samples=batches[0])]
    model = StubModel(batches, batches)
    result = evaluate_upper_bound(model, loader, evaluator, (1, ),
                                  modes=('full', ), dataset_meta=meta,
                                  kam_scores=(None, 'product'))
    assert result['oks_scored']['coco/AP'] > \
        result['initial']['coco/AP'] + 0.3, result
    # one row per kam_score, each with its own setting, restored after
    assert list(result['modes']) == ['full, kam_score=None',
                                     'full, kam_score=product']
    assert model.kam_scores_seen == ['unset', None, 'product']
    assert 'kam_score' not in model.test_cfg
    # the stub's 'full' poses are the initial ones: the same rescored AP
    assert result['modes_oks_scored'] == dict(full=result['oks_scored'])
    # scores fall while the duplicates' OKS is lower than the close ones':
    # a negative rank correlation, the same for every row of the same poses
    rho = result['score_oks_spearman']
    assert set(rho) == {'initial', 'full, kam_score=None',
                        'full, kam_score=product'}
    assert rho['initial'] < -0.5
    assert rho['full, kam_score=None'] == rho['initial']
    # by true OKS the ranking is perfect
    assert score_oks_correlation(rescored, rescored) == pytest.approx(1.0)
    assert '| initial (centre-offset) | ' in correlation_table(result)


def test_table_and_plot(tmp_path):
    metrics = lambda ap: {'coco/AP': ap, 'coco/AP .5': ap + 0.1,  # noqa
                          'coco/AP .75': ap, 'coco/AR': ap + 0.05}
    result = dict(initial=metrics(0.2),
                  oks_scored=metrics(0.22),
                  oracle={s: metrics(0.2 + s / 100) for s in (1, 3, 11)},
                  modes={'full': metrics(0.25)})
    table = upper_bound_table(result)
    lines = table.splitlines()
    assert len(lines) == 2 + 2 + 3 + 1
    assert lines[2].startswith('| initial (centre-offset) | - | 0.200 |')
    assert lines[3].startswith('| initial, scored by true OKS | - | 0.220 |')
    assert lines[3].endswith('+0.020 |')
    assert '| oracle | 11x11 | 0.310 |' in table and '+0.110 |' in table
    assert lines[-1].startswith('| model, mode full |')
    path = tmp_path / 'plot.png'
    plot_upper_bound(result, str(path), title='t')
    with open(path, 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'


# --------------------------------------------------------------------------
# the tool, end to end
# --------------------------------------------------------------------------
@pytest.mark.slow
def test_tool_on_coco_mini_val(tmp_path):
    root = require_shared('coco-mini')
    from mmengine.config import Config
    from mmpose.apis import init_model
    cfg = Config.fromfile(CPU_CONFIG)
    cfg.model.backbone.init_cfg = None
    model = init_model(cfg, None, device='cpu')
    ckpt = str(tmp_path / 'random.pth')
    torch.save(dict(state_dict=model.state_dict()), ckpt)
    sys.path.insert(0, osp.join(REPO, 'tools'))
    try:
        import upper_bound as tool
    finally:
        sys.path.pop(0)
    out = tmp_path / 'out'
    table = tool.main([
        CPU_CONFIG, ckpt, '--data-root', root, '--labelled-only',
        '--num-images', '3', '--windows', '1', '5', '11', '--modes', 'full',
        '--kam-scores', 'none', 'product', '--out-dir', str(out),
        '--cfg-options',
        'model.backbone.init_cfg=None',
        'model.test_cfg.max_proposals=5'
    ])
    rows = [line.split('|')[1:-1] for line in table.splitlines()[2:]]
    assert [r[1].strip() for r in rows] == ['-', '-', '1x1', '5x5', '11x11',
                                            '-', '-', '-']
    assert [r[0].strip() for r in rows[-3:]] == [
        'model, mode full, kam_score=None',
        'model, mode full, kam_score=product',
        'model, mode full, scored by true OKS'
    ]
    # s = 1 is the initial poses: the same metrics
    assert rows[0][2:6] == rows[2][2:6]
    for name in ('upper_bound.md', 'upper_bound.png', 'upper_bound.json'):
        assert (out / name).exists(), name
    with open(out / 'upper_bound.json') as f:
        saved = json.load(f)
    assert saved['images'] == 3 and set(saved['oracle']) == {'1', '5', '11'}
    assert 'coco/AP' in saved['oks_scored']
    assert set(saved['score_oks_spearman']) == {
        'initial', 'full, kam_score=None', 'full, kam_score=product'}
    assert 'Spearman rho' in (out / 'upper_bound.md').read_text()
