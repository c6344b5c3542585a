"""Batched inference through MMPose's inferencer.

MMPose 1.3.2's ``MMPoseInferencer`` takes ``batch_size`` but runs one image
per ``test_step`` (checked below, so a future MMPose that batches shows up
here). ``logocap_mmpose.apis.BatchedMMPoseInferencer`` merges MMPose's
single-image batches, so a bottom-up model gets ``batch_size`` images per
step. Checked on coco-mini val images with seeded random weights of the CPU
config (ImageNet backbone from the pip package, head weights drawn so that
every image decodes poses): the same poses as one image at a time, for a
batch of one input size (one network pass) and of mixed sizes, and for the
frames of a video file.
"""
import json
import os.path as osp
from contextlib import contextmanager
from typing import Dict, Iterator, List, Sequence

import numpy as np
import pytest
import torch

from logocap_mmpose.apis import BatchedMMPoseInferencer, merge_collated
from tests.conftest import REPO, require_shared

CPU_CONFIG = osp.join(REPO, 'configs', 'logocap', 'coco',
                      'logocap_effnetlite0_1xb8-40e_coco-256x256.py')
KEYPOINT_TOL = 1e-3  # px
SCORE_TOL = 1e-4


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------
def val_images(root: str) -> List[str]:
    """coco-mini val image paths, by image id."""
    with open(osp.join(root, 'annotations',
                       'person_keypoints_val2017.json')) as f:
        images = json.load(f)['images']
    return [osp.join(root, 'val2017', im['file_name'])
            for im in sorted(images, key=lambda im: im['id'])]


def input_size(inferencer, path: str) -> tuple:
    """(H, W) of the network input the test pipeline makes of an image."""
    pose2d = inferencer.inferencer
    info = dict(img_path=path, **pose2d.model.dataset_meta)
    return tuple(pose2d.pipeline(info)['inputs'].shape[-2:])


@contextmanager
def recorded_passes(model) -> Iterator[Dict[str, list]]:
    """Batch sizes of every ``test_step`` and every network pass
    (``extract_feat``) of ``model`` while the block runs."""
    seen: Dict[str, list] = {'test_step': [], 'extract_feat': []}
    test_step, extract_feat = model.test_step, model.extract_feat

    def counted_test_step(data):
        seen['test_step'].append(len(data['inputs']))
        return test_step(data)

    def counted_extract_feat(inputs):
        seen['extract_feat'].append(int(inputs.shape[0]))
        return extract_feat(inputs)

    model.test_step = counted_test_step
    model.extract_feat = counted_extract_feat
    try:
        yield seen
    finally:
        del model.test_step, model.extract_feat  # back to the class methods


def predictions(inferencer, inputs, batch_size: int, **kwargs) -> list:
    """Per input, the list of its poses (dicts of ``keypoints`` and
    ``keypoint_scores``), from every result the inferencer yields."""
    return [
        poses for result in inferencer(inputs, batch_size=batch_size,
                                       **kwargs)
        for poses in result['predictions']
    ]


def assert_same_poses(alone: Sequence[list], batched: Sequence[list]):
    assert len(alone) == len(batched)
    for i, (a, b) in enumerate(zip(alone, batched)):
        assert len(a) == len(b), f'input {i}: {len(a)} vs {len(b)} poses'
        if not a:
            continue
        ka = np.array([p['keypoints'] for p in a])
        kb = np.array([p['keypoints'] for p in b])
        sa = np.array([p['keypoint_scores'] for p in a])
        sb = np.array([p['keypoint_scores'] for p in b])
        np.testing.assert_allclose(kb, ka, rtol=0, atol=KEYPOINT_TOL,
                                   err_msg=f'input {i}: keypoints')
        np.testing.assert_allclose(sb, sa, rtol=0, atol=SCORE_TOL,
                                   err_msg=f'input {i}: scores')


# --------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------
@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory) -> str:
    """Seeded random weights of the CPU config: ImageNet EfficientNet-Lite0
    (offline, from its pip package) and a head drawn from N(0, 0.1^2),
    which gives every image proposals with positive scores.

    The keypoint heatmaps are lifted by 3 (bias) so that they are positive
    in the image. Left negative, the largest cells of a refined window are
    the zeros sampled outside the image: exact ties in exact arithmetic,
    which the float noise of the FFT adaptation (different for another
    number of proposals in the batch) breaks either way, moving a keypoint
    of ~0 score by a cell or more between batch sizes. Trained heatmaps
    are positive on the persons."""
    from mmpose.apis import init_model
    torch.manual_seed(0)
    model = init_model(CPU_CONFIG, None, device='cpu')
    model.init_weights()
    with torch.no_grad():
        for name, value in model.head.state_dict().items():
            if value.dtype.is_floating_point and 'running_' not in name:
                value.copy_(torch.randn_like(value) * 0.1)
        model.head.heatmap_layers[-1].bias[:model.head.num_keypoints] += 3.0
    path = str(tmp_path_factory.mktemp('weights') / 'random.pth')
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), path)
    return path


def make_inferencer(cls, checkpoint: str):
    inferencer = cls(pose2d=CPU_CONFIG, pose2d_weights=checkpoint,
                     device='cpu')
    model = inferencer.inferencer.model
    # every centre a proposal (10 of them, to keep the test short): poses
    # in every image to compare
    model.head.decoder.decode_thr = -1.0
    model.test_cfg['max_proposals'] = 10
    return inferencer


@pytest.fixture(scope='module')
def inferencer(checkpoint):
    return make_inferencer(BatchedMMPoseInferencer, checkpoint)


@pytest.fixture(scope='module')
def images_by_size(inferencer) -> Dict[tuple, List[str]]:
    """coco-mini val images (the first 24) grouped by network input size."""
    groups: Dict[tuple, List[str]] = {}
    for path in val_images(require_shared('coco-mini'))[:24]:
        groups.setdefault(input_size(inferencer, path), []).append(path)
    return groups


# --------------------------------------------------------------------------
# tests
# --------------------------------------------------------------------------
def test_merge_collated_is_collating_all_at_once():
    from mmengine.dataset import default_collate, pseudo_collate
    items = [dict(inputs=torch.full((3, 2, 2), float(i)), data_samples=i)
             for i in range(5)]
    for collate in (pseudo_collate, default_collate):
        merged = merge_collated([collate(items[:2]), collate(items[2:])])
        whole = collate(items)
        assert merged.keys() == whole.keys()
        if collate is pseudo_collate:
            assert merged['data_samples'] == whole['data_samples']
            assert all(torch.equal(a, b) for a, b in
                       zip(merged['inputs'], whole['inputs']))
        else:
            assert torch.equal(merged['inputs'], whole['inputs'])
            assert torch.equal(merged['data_samples'],
                               whole['data_samples'])
    with pytest.raises(TypeError):
        merge_collated([1, 2])


def test_stock_mmpose_inferencer_runs_one_image_per_step(
        checkpoint, images_by_size):
    """What MMPose 1.3.2 does with ``batch_size``: nothing. If this fails,
    MMPose batches by itself and ``BatchedMMPoseInferencer`` may go."""
    from mmpose.apis import MMPoseInferencer
    stock = make_inferencer(MMPoseInferencer, checkpoint)
    paths = [p for group in images_by_size.values() for p in group][:4]
    with recorded_passes(stock.inferencer.model) as seen:
        results = list(stock(paths, batch_size=4))
    assert seen['test_step'] == [1, 1, 1, 1]
    assert [len(r['predictions']) for r in results] == [1, 1, 1, 1]


@pytest.mark.float_bound
def test_batch_of_one_size_is_one_pass_with_the_same_poses(
        inferencer, images_by_size):
    size, paths = max(images_by_size.items(), key=lambda kv: len(kv[1]))
    if len(paths) < 4:
        pytest.skip('fewer than 4 of the first coco-mini val images share '
                    'an input size')
    paths = paths[:4]
    model = inferencer.inferencer.model
    with recorded_passes(model) as alone:
        one_by_one = predictions(inferencer, paths, batch_size=1)
    with recorded_passes(model) as batch:
        batched = predictions(inferencer, paths, batch_size=4)
    assert alone['test_step'] == [1, 1, 1, 1]
    assert batch['test_step'] == [4]
    # the network passes of one image (the image and its flip, as one or
    # two passes), each now carrying the four images
    per_image = alone['extract_feat'][:len(alone['extract_feat']) // 4]
    assert per_image and alone['extract_feat'] == per_image * 4
    assert batch['extract_feat'] == [4 * n for n in per_image]
    assert sum(len(p) for p in one_by_one) >= 4  # poses to compare
    assert_same_poses(one_by_one, batched)


@pytest.mark.float_bound
def test_batch_of_mixed_sizes_gives_the_poses_of_each_image_alone(
        inferencer, images_by_size):
    """Two input sizes in one batch: one ``test_step``; the estimator runs
    each size unpadded (``LOGOCAPPoseEstimator``)."""
    groups = sorted(images_by_size.values(), key=len, reverse=True)
    if len(groups) < 2 or len(groups[1]) < 2:
        pytest.skip('the first coco-mini val images have fewer than two '
                    'input sizes with two images each')
    paths = [groups[0][0], groups[1][0], groups[0][1], groups[1][1]]
    model = inferencer.inferencer.model
    one_by_one = predictions(inferencer, paths, batch_size=1)
    with recorded_passes(model) as batch:
        batched = predictions(inferencer, paths, batch_size=4)
    assert batch['test_step'] == [4]
    assert_same_poses(one_by_one, batched)


@pytest.mark.float_bound
def test_video_frames_in_batches(inferencer, images_by_size, tmp_path):
    """A 5-frame video file: batches of 2, 2 and 1 frames, the poses of the
    frames one at a time, and MMPose's per-video prediction file."""
    import cv2
    paths = [p for group in images_by_size.values() for p in group][:5]
    video = str(tmp_path / 'clip.mp4')
    writer = cv2.VideoWriter(video, cv2.VideoWriter_fourcc(*'mp4v'), 10,
                             (320, 240))
    assert writer.isOpened(), 'OpenCV cannot write mp4v videos here'
    for path in paths:
        writer.write(cv2.resize(cv2.imread(path), (320, 240)))
    writer.release()

    model = inferencer.inferencer.model
    one_by_one = predictions(inferencer, video, batch_size=1)
    with recorded_passes(model) as batch:
        batched = predictions(inferencer, video, batch_size=2,
                              pred_out_dir=str(tmp_path / 'pred'))
    assert len(one_by_one) == 5
    assert batch['test_step'] == [2, 2, 1]
    assert_same_poses(one_by_one, batched)
    with open(tmp_path / 'pred' / 'clip.json') as f:
        frames = json.load(f)
    assert [frame['frame_id'] for frame in frames] == [0, 1, 2, 3, 4]
    assert [len(frame['instances']) for frame in frames] == \
        [len(poses) for poses in batched]
