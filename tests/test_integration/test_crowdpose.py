"""The CrowdPose configs (configs/logocap/crowdpose).

Fast: both configs (LOGO-CAP and its DEKR peer) parse and build with 14
keypoints, MMPose's CrowdPose meta (sigmas, flip pairs, skeleton) given
inline to every dataset, MMPose's CrowdPoseDataset (as the data-checking
LOGOCAPCrowdPoseDataset) and CrowdPose evaluation.
A flip test of a mirror-symmetric input fuses the heatmaps and offsets by the
CrowdPose flip pairs (and by nothing else).

On ../shared/data/mmpose-tests/crowdpose (2 images, MMPose's test
annotations; skipped when absent): the datasets load without MMPose's
metainfo warning, and the LOGO-CAP config, shrunk to the CPU-sized model
(EfficientNet-Lite0 at 256 px, as ``configs/logocap/coco/
logocap_effnetlite0_1xb8-40e_coco-256x256.py``), trains two iterations
with MMEngine's Runner (finite losses, refinement losses on), then
validates: 14-keypoint poses, the CrowdPose metric (AP, and AP(E/M/H) by
crowd index) and the best checkpoint saved under its key.
"""
import copy
import math
import os.path as osp
import warnings

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook

from mmpose.registry import DATASETS, MODELS

from tests.conftest import REPO as ROOT
from tests.conftest import require_shared

CROWDPOSE_DIR = osp.join(ROOT, 'configs', 'logocap', 'crowdpose')
LOGOCAP_CFG = osp.join(CROWDPOSE_DIR,
                       'logocap_hrnet-w32_4xb12-140e_crowdpose-512x512.py')
DEKR_CFG = osp.join(CROWDPOSE_DIR,
                    'dekr_hrnet-w32_4xb12-140e_crowdpose-512x512.py')
CPU_COCO_CFG = osp.join(ROOT, 'configs', 'logocap', 'coco',
                        'logocap_effnetlite0_1xb8-40e_coco-256x256.py')
K = 14
SPLITS = ('train', 'val', 'test')


def packaged_crowdpose_meta() -> dict:
    """MMPose's packaged CrowdPose meta, parsed."""
    import mmpose
    from mmpose.datasets.datasets.utils import parse_pose_metainfo
    path = osp.join(osp.dirname(mmpose.__file__), '.mim', 'configs',
                    '_base_', 'datasets', 'crowdpose.py')
    return parse_pose_metainfo(dict(from_file=path))


def pairs_from_names(names) -> list:
    """Flip partner of every keypoint from its name (left_x <-> right_x;
    names without a side map to themselves)."""
    index = {n: i for i, n in enumerate(names)}
    swap = {'left': 'right', 'right': 'left'}
    partner = []
    for n in names:
        side, _, rest = n.partition('_')
        partner.append(index[f'{swap[side]}_{rest}'] if side in swap else
                       index[n])
    return partner


def cpu_sized(cfg: Config) -> Config:
    """The CrowdPose LOGO-CAP config with the CPU-sized model of the COCO
    EfficientNet-Lite0 config (backbone, normalisation, 256 px codec,
    49-px global KEMs, 10 training proposals) and its pipelines; the dataset,
    meta, head keypoints and evaluator stay CrowdPose's."""
    cpu = Config.fromfile(CPU_COCO_CFG)
    cfg = copy.deepcopy(cfg)
    cfg.model.backbone = dict(cpu.model.backbone, init_cfg=None)
    cfg.model.data_preprocessor = cpu.model.data_preprocessor
    head = cfg.model.head
    head.in_channels = cpu.model.head.in_channels
    head.kem_cfg.global_size = cpu.model.head.kem_cfg.global_size
    head.kam_loss = cpu.model.head.kam_loss
    head.decoder = cpu.model.head.decoder
    cfg.model.train_cfg = dict(num_proposals=10)
    cfg.train_dataloader.dataset.pipeline = \
        cpu.train_dataloader.dataset.pipeline
    for split in ('val', 'test'):
        cfg[f'{split}_dataloader'].dataset.pipeline = \
            cpu.val_dataloader.dataset.pipeline
    return cfg


# --------------------------------------------------------------------------
# configs (fast)
# --------------------------------------------------------------------------
@pytest.mark.parametrize('path', [LOGOCAP_CFG, DEKR_CFG],
                         ids=osp.basename)
def test_config_uses_crowdpose_meta_dataset_and_metric(path):
    cfg = Config.fromfile(path)
    reference = packaged_crowdpose_meta()
    assert cfg.data_mode == 'bottomup'
    assert cfg.model.head.num_keypoints == K
    assert cfg.model.test_cfg.flip_test is True
    assert cfg.default_hooks.checkpoint.save_best == 'crowdpose/AP'
    from mmpose.datasets.datasets.utils import parse_pose_metainfo
    for split in SPLITS:
        ds = cfg[f'{split}_dataloader'].dataset
        assert ds.type == 'LOGOCAPCrowdPoseDataset'
        assert ds.data_root == 'data/crowdpose/'
        assert 'from_file' not in ds.metainfo  # inline, not a path
        meta = parse_pose_metainfo(copy.deepcopy(ds.metainfo))
        # the whole CrowdPose meta, not COCO's merged with it
        assert meta['dataset_name'] == 'crowdpose'
        assert meta['num_keypoints'] == K
        assert len(meta['skeleton_links']) == len(
            reference['skeleton_links'])
        np.testing.assert_array_equal(meta['sigmas'], reference['sigmas'])
        assert meta['flip_indices'] == reference['flip_indices']
    assert cfg.train_dataloader.dataset.ann_file == \
        'annotations/mmpose_crowdpose_trainval.json'
    assert cfg.test_dataloader.dataset.ann_file == \
        'annotations/mmpose_crowdpose_test.json'
    for evaluator in (cfg.val_evaluator, cfg.test_evaluator):
        assert evaluator.type == 'CocoMetric'
        assert evaluator.iou_type == 'keypoints_crowd'
        assert evaluator.use_area is False
        assert evaluator.prefix == 'crowdpose'
        assert evaluator.ann_file == osp.join(
            cfg.test_dataloader.dataset.data_root,
            cfg.test_dataloader.dataset.ann_file)
    # the config's own dataset_info is CrowdPose's as a whole
    assert len(cfg.dataset_info.keypoint_info) == K


def test_flip_pairs_are_left_right_swaps():
    meta = packaged_crowdpose_meta()
    names = [meta['keypoint_id2name'][i] for i in range(K)]
    assert pairs_from_names(names) == meta['flip_indices']
    assert meta['flip_indices'] == [1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 12,
                                    13]


def unscoped(value):
    """A config value without MMEngine's ``_scope_`` keys (set on what a
    config inherits through ``mmpose::``)."""
    if isinstance(value, dict):
        return {k: unscoped(v) for k, v in value.items() if k != '_scope_'}
    if isinstance(value, (list, tuple)):
        return [unscoped(v) for v in value]
    return value


def test_peers_differ_only_in_the_method():
    """Same data, meta, schedule, input and evaluation in both peers."""
    a, b = Config.fromfile(LOGOCAP_CFG), Config.fromfile(DEKR_CFG)
    for split in SPLITS:
        da, db = a[f'{split}_dataloader'], b[f'{split}_dataloader']
        assert da.batch_size == db.batch_size
        for key in ('type', 'data_root', 'ann_file', 'data_prefix',
                    'metainfo'):
            assert unscoped(da.dataset[key]) == unscoped(db.dataset[key]), (
                split, key)
    for key in ('val_evaluator', 'test_evaluator', 'train_cfg',
                'param_scheduler'):
        assert unscoped(a[key]) == unscoped(b[key]), key
    assert unscoped(a.optim_wrapper.optimizer) == unscoped(
        b.optim_wrapper.optimizer)
    assert a.codec.input_size == b.codec.input_size == (512, 512)


@pytest.mark.float_bound
def test_both_models_build_with_14_keypoints():
    from mmengine.registry import init_default_scope
    init_default_scope('mmpose')
    reference = packaged_crowdpose_meta()
    logocap = MODELS.build(Config.fromfile(LOGOCAP_CFG).model)
    head = logocap.head
    assert head.num_keypoints == K
    np.testing.assert_allclose(head.sigmas.numpy(), reference['sigmas'],
                               rtol=1e-6)
    feats = (torch.randn(1, head.in_channels, 8, 8), )
    with torch.no_grad():
        heatmaps, displacements, _ = head.forward(feats)
    assert heatmaps.shape[1] == K + 1 and displacements.shape[1] == 2 * K
    assert head.cmp(torch.randn(2, K * 64, 11, 11)).shape == (2, K, 11, 11)

    dekr = MODELS.build(Config.fromfile(DEKR_CFG).model).eval()
    with torch.no_grad():
        feats = dekr.extract_feat(torch.randn(1, 3, 128, 128))
        heatmaps, displacements = dekr.head.forward(feats)
    assert heatmaps.shape[1] == K + 1 and displacements.shape[1] == 2 * K
    assert dekr.head.rescore_net is None


@pytest.mark.float_bound
def test_flip_test_of_a_symmetric_input_follows_the_crowdpose_pairs():
    """A mirror-symmetric input: both passes of the flip test see the same
    image, so the fused heatmap of keypoint k must be (H_k + mirror(H_p))/2
    with p the CrowdPose partner of k (the centre paired with itself), the
    fused offsets likewise with the x offsets negated; hence the fused maps
    of partners are mirrors of each other, and top_head and neck are
    mirror-symmetric. Random weights make the channels differ, so a wrong
    pair (e.g. COCO's or none) breaks every check."""
    from mmengine.registry import init_default_scope
    init_default_scope('mmpose')
    cfg = cpu_sized(Config.fromfile(LOGOCAP_CFG))
    cfg.model.test_cfg.output_heatmaps = True
    model = MODELS.build(cfg.model).eval()
    torch.manual_seed(0)
    for p in model.head.parameters():  # visible, varied channels
        p.data.normal_(0, 0.05)
    meta = packaged_crowdpose_meta()
    pairs = pairs_from_names([meta['keypoint_id2name'][i] for i in range(K)])
    left = torch.randint(0, 256, (1, 3, 128, 64), dtype=torch.uint8)
    image = torch.cat((left, left.flip(-1)), -1)  # (1, 3, 128, 128)
    assert torch.equal(image, image.flip(-1))
    from mmpose.structures import PoseDataSample
    sample = PoseDataSample(metainfo=dict(
        flip_indices=meta['flip_indices'], input_size=(128, 128),
        input_center=np.array([64.0, 64.0]), input_scale=np.array([128.0,
                                                                   128.0]),
        img_shape=(128, 128), ori_shape=(128, 128)))
    with torch.no_grad():
        out = model.test_step(dict(inputs=[image[0]], data_samples=[sample]))
        data = model.data_preprocessor(
            dict(inputs=[image[0]], data_samples=[copy.deepcopy(sample)]))
        hm, disp, _ = model.head.forward(model.extract_feat(data['inputs']))
    fused_hm = out[0].pred_fields.heatmaps
    fused_disp = out[0].pred_fields.displacements
    hm, disp = hm[0], disp[0]
    order = pairs + [K]
    expect_hm = (hm + hm[order].flip(-1)) / 2
    dx, dy = disp[0::2], disp[1::2]
    expect_dx = (dx - dx[pairs].flip(-1)) / 2
    expect_dy = (dy + dy[pairs].flip(-1)) / 2
    # float rounding only (two passes against one batch), relative to each
    # map's range; a wrong pairing moves them by more than 1e-3
    hm_tol = dict(rtol=0, atol=1e-4 * float(hm.abs().max()))
    disp_tol = dict(rtol=0, atol=1e-4 * float(disp.abs().max()))
    torch.testing.assert_close(fused_hm, expect_hm, **hm_tol)
    torch.testing.assert_close(fused_disp[0::2], expect_dx, **disp_tol)
    torch.testing.assert_close(fused_disp[1::2], expect_dy, **disp_tol)
    # the pairs' prediction: partners' fused maps are mirrors of each other
    torch.testing.assert_close(fused_hm[order], fused_hm.flip(-1), **hm_tol)
    assert not torch.allclose(hm[:K], hm[pairs].flip(-1), atol=1e-3)
    # identity pairs (no flip pairing) would give another fusion
    wrong = (hm + hm.flip(-1)) / 2
    assert not torch.allclose(fused_hm[:K], wrong[:K], atol=1e-3)


# --------------------------------------------------------------------------
# on MMPose's CrowdPose test images
# --------------------------------------------------------------------------
def crowdpose_data(cfg: Config, root: str) -> Config:
    """Every dataset and evaluator on the two test images."""
    cfg = copy.deepcopy(cfg)
    for split in SPLITS:
        loader = cfg[f'{split}_dataloader']
        loader.dataset.update(data_root=root, ann_file='test_crowdpose.json',
                              data_prefix=dict(img=''))
        loader.update(num_workers=0, persistent_workers=False)
    ann = osp.join(root, 'test_crowdpose.json')
    cfg.val_evaluator = dict(cfg.val_evaluator, ann_file=ann)
    cfg.test_evaluator = dict(cfg.test_evaluator, ann_file=ann)
    return cfg


@pytest.mark.parametrize('path', [LOGOCAP_CFG, DEKR_CFG],
                         ids=osp.basename)
def test_datasets_load_crowdpose_images_without_metainfo_warning(
        path, tmp_path, monkeypatch):
    root = require_shared('mmpose-tests', 'crowdpose')
    cfg = crowdpose_data(Config.fromfile(path), root)
    monkeypatch.chdir(tmp_path)  # not an MMPose checkout
    for split in SPLITS:
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter('always')
            dataset = DATASETS.build(copy.deepcopy(
                cfg[f'{split}_dataloader'].dataset))
            sample = dataset[0]
        assert not [w for w in record
                    if 'metainfo config file' in str(w.message)], split
        assert len(dataset) == 2
        assert dataset.metainfo['dataset_name'] == 'crowdpose'
        meta = sample['data_samples'].metainfo
        assert list(meta['flip_indices']) == [1, 0, 3, 2, 5, 4, 7, 6, 9, 8,
                                              11, 10, 12, 13]
        if split == 'train':  # targets of the 14 keypoints and the centre
            fields = sample['data_samples'].gt_fields
            assert fields.heatmaps.shape[0] == K + 1
            assert fields.displacements.shape[0] == 2 * K


class Recorder(Hook):
    """Keeps the training outputs, the validation predictions and the
    validation metrics."""

    def __init__(self):
        self.losses, self.preds, self.metrics = [], [], {}

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        self.losses.append({k: float(v) for k, v in outputs.items()})

    def after_val_iter(self, runner, batch_idx, data_batch=None,
                       outputs=None):
        self.preds.extend(outputs)

    def after_val_epoch(self, runner, metrics=None):
        self.metrics = dict(metrics)


def test_logocap_trains_predicts_and_evaluates_on_crowdpose(tmp_path):
    from mmengine.runner import Runner
    root = require_shared('mmpose-tests', 'crowdpose')
    cfg = crowdpose_data(cpu_sized(Config.fromfile(LOGOCAP_CFG)), root)
    cfg.train_dataloader.batch_size = 2  # both images: 1 iteration an epoch
    cfg.model.train_cfg.num_proposals = 3  # the cost: CMP on every proposal
    cfg.model.test_cfg.max_proposals = 5
    # every proposal passes the OKS gate, so the refinement losses (the
    # 14-keypoint KAMs, OKS targets and refined windows) are computed from
    # the first iteration on, not only once the offsets have learnt
    cfg.model.train_cfg.oks_threshold = 0.0
    cfg.train_cfg = dict(by_epoch=True, max_epochs=2, val_interval=2)
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=1)
    # no periodic or last checkpoint, only the best one (at validation)
    cfg.default_hooks.checkpoint.update(interval=10, save_last=False)
    cfg.work_dir = str(tmp_path)
    cfg.randomness = dict(seed=0)
    runner = Runner.from_cfg(cfg)
    recorder = Recorder()
    runner.register_hook(recorder, priority='LOW')
    runner.train()

    assert len(recorder.losses) == 2
    for step in recorder.losses:
        for key in ('loss_heatmap', 'loss_offset', 'loss_kam', 'loss_refine',
                    'loss'):
            assert math.isfinite(step[key]), (key, step)
        assert step['loss_kam'] > 0 and step['loss_refine'] > 0
        assert step['oks_gate_ratio'] == 1.0
    # validation ran with the CrowdPose metric and saved the best checkpoint
    assert list(tmp_path.glob('best_crowdpose_AP_epoch_2.pth'))
    # the crowd-index breakdown exists only with iou_type='keypoints_crowd'
    for key in ('AP', 'AP .5', 'AP .75', 'AR', 'AP(E)', 'AP(M)', 'AP(H)'):
        value = recorder.metrics[f'crowdpose/{key}']
        assert math.isfinite(value) and -1 <= value <= 1, key
    assert len(recorder.preds) == 2
    for sample in recorder.preds:
        pred = sample.pred_instances
        assert pred.keypoints.shape[1:] == (K, 2)
        assert pred.keypoint_scores.shape[1:] == (K, )
        assert len(pred.keypoints) >= 1
        assert np.isfinite(pred.keypoints).all()
        assert np.isfinite(pred.keypoint_scores).all()
        assert pred.bboxes.shape == (len(pred.keypoints), 4)
