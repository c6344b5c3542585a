"""LOGOCAPLabel: targets, decoding, and a round trip on real COCO data."""
import numpy as np
import pytest
import torch
from mmengine.dataset import Compose

from mmpose.registry import DATASETS, KEYPOINT_CODECS, METRICS

from tests.conftest import require_shared


def build(**kw):
    cfg = dict(type='LOGOCAPLabel', input_size=(256, 256),
               heatmap_size=(64, 64))
    cfg.update(kw)
    return KEYPOINT_CODECS.build(cfg)


def two_people():
    kpts = np.array([[[40.3, 50.7], [60.1, 52.2], [55.0, 90.0]],
                     [[150.0, 160.0], [170.5, 150.2], [160.0, 200.0]]],
                    np.float32)
    vis = np.array([[1, 1, 1], [1, 0, 1]], np.float32)
    return kpts, vis, np.array([4000.0, 2500.0], np.float32)


@pytest.mark.float_bound
def test_encode_shapes_and_peaks():
    codec = build()
    kpts, vis, area = two_people()
    enc = codec.encode(kpts, vis, area=area)
    assert enc['heatmaps'].shape == (4, 64, 64)
    assert enc['heatmap_weights'].shape == (1, 64, 64)
    assert enc['displacements'].shape == (6, 64, 64)
    assert enc['displacement_weights'].shape == (6, 64, 64)
    assert enc['instance_keypoints'].shape == (2, 3, 2)
    # Gaussian peak of keypoint 0 of person 0 at its heatmap cell
    u = codec.to_heatmap(kpts[0, 0])
    region = enc['heatmaps'][0][:32, :32]  # person 1 is further away
    peak = np.unravel_index(region.argmax(), region.shape)
    assert peak == (round(float(u[1])), round(float(u[0])))
    # invisible keypoint 1 of person 1 draws nothing near it
    u1 = np.round(codec.to_heatmap(kpts[1, 1])).astype(int)
    assert enc['heatmaps'][1][u1[1], u1[0]] < 1e-3
    # weights: 1 in Gaussian windows, 0.1 elsewhere
    np.testing.assert_array_equal(np.unique(enc['heatmap_weights']),
                                  np.float32([0.1, 1]))
    assert enc['heatmap_weights'][0, 0, 63] == pytest.approx(0.1)


@pytest.mark.float_bound
def test_offsets_are_exact_and_weighted():
    codec = build()
    kpts, vis, area = two_people()
    enc = codec.encode(kpts, vis, area=area)
    disp, w = enc['displacements'], enc['displacement_weights']
    # every supervised cell decodes exactly to its person's keypoint
    ys, xs = np.nonzero(w[0] > 0)
    assert len(ys) == 2 * 64  # 8x8 window for each of the two persons
    for y, x in zip(ys[:5], xs[:5]):
        got = codec.to_input(np.array([x + disp[0, y, x], y + disp[1, y, x]]))
        person = 0 if x < 32 else 1
        np.testing.assert_allclose(got, kpts[person, 0], atol=1e-4)
    # area-normalised weights; invisible keypoint of person 1 unsupervised
    assert w[0].max() == pytest.approx(1 / np.sqrt(2500))
    assert w[0][w[0] > 0].min() == pytest.approx(1 / np.sqrt(4000))
    assert w[2][:, 32:].max() == 0 and w[2][:, :32].max() > 0


def test_overlap_goes_to_smaller_person_and_small_person_has_no_center():
    codec = build()
    kpts = np.array([[[100, 100], [110, 110]], [[104, 104], [108, 108]],
                     [[200, 200], [204, 204]]], np.float32)
    vis = np.ones((3, 2), np.float32)
    area = np.array([5000, 3000, 100], np.float32)
    enc = codec.encode(kpts, vis, area=area)
    w = enc['displacement_weights'][0]
    assert w.max() == pytest.approx(1 / np.sqrt(3000))  # smaller wins
    c = np.round(codec.to_heatmap(np.array([106, 106.]))).astype(int)
    assert w[c[1], c[0]] == pytest.approx(1 / np.sqrt(3000))
    # person 2 (area 100 < 32^2): no centre, no offsets, keypoint heatmap kept
    u = np.round(codec.to_heatmap(np.array([202, 202.]))).astype(int)
    assert enc['heatmaps'][2][u[1], u[0]] < 1e-3
    assert w[u[1] - 3:u[1] + 3, u[0] - 3:u[0] + 3].max() == 0
    assert enc['heatmaps'][0].max() > 0.5
    assert enc['instance_keypoints_visible'][2].sum() == 2


@pytest.mark.float_bound
def test_overlap_is_decided_per_keypoint_channel():
    """In a shared cell, each keypoint channel goes to the smallest person
    that labels it: a small person without keypoint 1 leaves channel 1 to
    the larger one (as the authors), while it takes channel 0."""
    codec = build()
    kpts = np.array([[[100, 100], [110, 110]], [[104, 104], [108, 108]]],
                    np.float32)
    vis = np.array([[1, 1], [1, 0]], np.float32)  # person 1 lacks keypoint 1
    area = np.array([5000, 3000], np.float32)
    enc = codec.encode(kpts, vis, area=area)
    w, d = enc['displacement_weights'], enc['displacements']
    shared = np.isclose(w[0], 1 / np.sqrt(3000)) & np.isclose(
        w[2], 1 / np.sqrt(5000))
    assert shared.sum() > 0
    y, x = np.argwhere(shared)[0]
    np.testing.assert_allclose(  # channel 1 points at person 0's keypoint
        codec.to_input(np.array([x + d[2, y, x], y + d[3, y, x]])),
        [110, 110], atol=1e-4)
    np.testing.assert_allclose(
        codec.to_input(np.array([x + d[0, y, x], y + d[1, y, x]])),
        [104, 104], atol=1e-4)


@pytest.mark.float_bound
def test_center_cut_off_uses_the_annotated_area():
    """The 32^2 cut-off applies to the area before augmentation: a person
    shrunk to 500 input px^2 by a 0.5x resize (2000 annotated) keeps its
    centre; the same input area with no resize has none."""
    codec = build()
    kpts = np.array([[[100, 100], [110, 110]]], np.float32)
    vis = np.ones((1, 2), np.float32)
    area = np.array([500.0], np.float32)
    half = np.array([[0.5, 0.0, 3.0], [0.0, 0.5, -2.0]])
    c = np.round(codec.to_heatmap(np.array([105, 105.]))).astype(int)
    with_warp = codec.encode(kpts, vis, area=area, warp_mat=half)
    without = codec.encode(kpts, vis, area=area)
    assert with_warp['heatmaps'][2][c[1], c[0]] > 0.9
    assert without['heatmaps'][2].max() == 0
    # the offset weight stays 1/sqrt(area in input px)
    assert with_warp['displacement_weights'].max() == pytest.approx(
        1 / np.sqrt(500))
    np.testing.assert_allclose(with_warp['instance_areas'], area)


def test_out_of_input_keypoints_are_invisible():
    codec = build()
    kpts = np.array([[[-5, 10], [300, 20], [50, 60]]], np.float32)
    enc = codec.encode(kpts, np.ones((1, 3)), area=np.array([5000.]))
    assert enc['instance_keypoints_visible'].tolist() == [[0, 0, 1]]


def test_no_person():
    codec = build()
    enc = codec.encode(np.zeros((0, 17, 2)), np.zeros((0, 17)),
                       area=np.zeros(0))
    assert enc['heatmaps'].shape == (18, 64, 64)
    assert enc['heatmaps'].max() == 0
    assert enc['displacement_weights'].max() == 0


@pytest.mark.float_bound
def test_decode_round_trip_synthetic():
    codec = build(decode_max_instances=5)
    kpts, vis, area = two_people()
    vis[:] = 1
    enc = codec.encode(kpts, vis, area=area)
    dec, scores = codec.decode(enc['heatmaps'], enc['displacements'])
    assert dec.shape == (2, 3, 2) and scores.shape == (2, 3)
    order = np.argsort(dec[:, 0, 0])
    np.testing.assert_allclose(dec[order], kpts, atol=1e-4)


def test_batch_decode_prefix_validity():
    codec = build(decode_max_instances=4)
    kpts, vis, area = two_people()
    enc = codec.encode(kpts, np.ones_like(vis), area=area)
    hm = torch.from_numpy(enc['heatmaps'])[None].repeat(2, 1, 1, 1)
    hm[1] = 0  # an image with nothing
    disp = torch.from_numpy(enc['displacements'])[None].repeat(2, 1, 1, 1)
    k, s, valid = codec.decode_batch(hm, disp)
    assert k.shape == (2, 4, 3, 2)
    assert valid[0].tolist() == [True, True, False, False]
    assert valid[1].tolist() == [True, False, False, False]  # top one kept
    assert (s[0, :-1] >= s[0, 1:]).all()


def test_window_targets_peak_at_gt():
    codec = build(refine_sigma=4.0)
    centers = torch.tensor([[[50.0, 60.0]]])
    gt = torch.tensor([[[53.0, 58.0]]])
    t = codec.window_targets(centers, gt, 21)
    assert t.shape == (1, 1, 21, 21)
    i, j = divmod(int(t.flatten().argmax()), 21)
    assert (j - 10, i - 10) == (3, -2)
    assert float(t.max()) == pytest.approx(1.0)
    assert float(t[0, 0, 10, 10]) == pytest.approx(np.exp(-13 / 32))


def test_round_trip_real_coco_mini_val():
    """Encode real GT through the val pipeline, decode the initial poses,
    map back to the image and score with CocoMetric."""
    root = require_shared('coco-mini')
    ann = f'{root}/annotations/person_keypoints_val2017.json'
    dataset = DATASETS.build(
        dict(type='CocoDataset', data_root=root, data_mode='bottomup',
             ann_file='annotations/person_keypoints_val2017.json',
             data_prefix=dict(img='val2017/'), test_mode=True,
             pipeline=[]))
    pipeline = Compose([
        dict(type='LoadImage'),
        dict(type='BottomupResize', input_size=(512, 512), size_factor=64,
             resize_mode='expand'),
        # bottom-up meta keys (no per-instance category_id), as DEKR's
        dict(type='PackPoseInputs',
             meta_keys=('id', 'img_id', 'img_path', 'crowd_index',
                        'ori_shape', 'img_shape', 'input_size',
                        'input_center', 'input_scale', 'flip',
                        'flip_direction', 'flip_indices', 'raw_ann_info'))
    ])
    metric = METRICS.build(
        dict(type='CocoMetric', ann_file=ann, nms_mode='none',
             score_mode='keypoint'))
    metric.dataset_meta = dataset.metainfo
    for i in range(len(dataset)):
        info = dataset.get_data_info(i)
        sample = pipeline(dict(info))['data_samples']
        meta = sample.metainfo
        size = np.array(meta['input_size'], np.float32)
        center = np.array(meta['input_center'], np.float32)
        scale = np.array(meta['input_scale'], np.float32)
        gt = sample.gt_instances
        if len(gt) and 'keypoints' in gt:
            kpts = (gt.keypoints - center + 0.5 * scale) / scale * size
            area = np.asarray(info['area']) * np.prod(size / scale)
            vis = gt.keypoints_visible
        else:
            kpts, vis, area = np.zeros((0, 17, 2)), np.zeros((0, 17)), \
                np.zeros(0)
        # the padded input of this image (BottomupResize 'expand')
        codec = build(input_size=tuple(int(v) for v in size),
                      heatmap_size=tuple(int(v) // 4 for v in size))
        # the image -> input resize, so the centre cut-off (32^2) applies
        # to the annotated area as the authors do
        warp = np.array([[size[0] / scale[0], 0, 0],
                         [0, size[1] / scale[1], 0]])
        enc = codec.encode(kpts, vis, area=area, warp_mat=warp)
        dec, scores = codec.decode(enc['heatmaps'], enc['displacements'])
        dec = dec / size * scale + center - 0.5 * scale
        sample.pred_instances = type(gt)(
            keypoints=dec, keypoint_scores=scores,
            bbox_scores=scores.mean(1) if len(scores) else np.zeros(0))
        metric.process([], [sample.to_dict()])
    results = metric.evaluate(len(dataset))
    print('codec round trip on coco-mini val:', results)
    assert results['coco/AP (M)'] >= 0.995
    assert results['coco/AP (L)'] >= 0.995
