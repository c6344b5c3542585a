"""ONNX export of the dense network (``logocap_mmpose.deploy``,
``tools/export_onnx.py``) on the CPU config with random weights.

Checks: onnxruntime's heatmaps, displacements and embedding equal PyTorch's
(with and without the normalisation in the graph); the rest of inference on
the network's maps gives exactly ``model.test_step``'s poses, and on
onnxruntime's maps the same poses up to float rounding; images smaller than
the graph are padded as MMPose pads a batch; larger ones are refused.
Skipped without onnx / onnxruntime (the optional ``onnx`` extra).
"""
import os.path as osp
import sys

import numpy as np
import pytest
import torch
from mmengine.dataset import Compose, pseudo_collate

from tests.conftest import REPO
from tests.test_deploy.conftest import (
    CPU_CONFIG, require_onnx, seeded_cpu_model)
from tests.float_audit import assert_below

pytestmark = pytest.mark.float_bound

ort = require_onnx()

from mmpose.models.pose_estimators import BottomupPoseEstimator  # noqa: E402
from logocap_mmpose.deploy import (DenseNetwork, ONNXDenseNetwork,  # noqa
                                   export_onnx, onnx_inference,
                                   predict_from_maps, preprocess_from_config)

# onnxruntime vs PyTorch on the dense maps: relative to each map's range
# (measured on emulated CPUs: docs/reliability.md)
MAP_RTOL = 1e-4
# poses from onnxruntime's maps vs PyTorch's: float rounding (measured
# 8e-6 px here), except where the top-2 decoding of a flat refined window
# meets a near-tie and picks another cell with the same score (measured on a
# fitted checkpoint and a real image: 3 of 510 keypoints, scores 2e-7 apart)
POSE_TOL_PX = 1e-3
SCORE_TOL = 1e-5
MAX_TIE_SHARE = 0.02


@pytest.fixture(scope='module')
def model():
    """This module's own model (its tests change its settings)."""
    return seeded_cpu_model()


@pytest.fixture(scope='module')
def graphs(model, tmp_path_factory):
    """A 256x256 graph of preprocessed inputs and a 256x320 graph with the
    normalisation inside."""
    root = tmp_path_factory.mktemp('onnx')
    plain = export_onnx(model, str(root / 'plain.onnx'), (256, 256))
    raw = export_onnx(model, str(root / 'raw.onnx'), (256, 320),
                      preprocess=preprocess_from_config(model.cfg))
    return ONNXDenseNetwork(plain), ONNXDenseNetwork(raw)


def synthetic_batch(model, shapes, seed=0):
    """A test batch of smooth random images of the given (h, w), through
    the config's test pipeline (as MMPoseInferencer feeds an array)."""
    pipeline = Compose(model.cfg.test_dataloader.dataset.pipeline)
    rng = np.random.default_rng(seed)
    items = []
    for i, (h, w) in enumerate(shapes):
        coarse = rng.uniform(0, 255, (h // 16 + 1, w // 16 + 1, 3))
        img = np.kron(coarse, np.ones((16, 16, 1)))[:h, :w].astype(np.uint8)
        info = dict(img=img, img_path=f'synthetic_{i}.png', id=[i], img_id=i)
        info.update(model.dataset_meta)
        items.append(pipeline(info))
    return pseudo_collate(items)


class TorchNetwork:
    """The PyTorch dense network behind :func:`onnx_inference`'s network
    interface. It gets the images followed by their flips and runs the two
    halves as two passes, as ``model.predict`` does (so that even the
    batch-dependent float rounding of the convolutions is the same)."""

    def __init__(self, model, input_shape):
        self.net, self.input_shape, self.preprocess = DenseNetwork(
            model), input_shape, None

    def __call__(self, inputs):
        half = len(inputs) // 2
        with torch.no_grad():
            parts = [self.net(torch.from_numpy(inputs[:half])),
                     self.net(torch.from_numpy(inputs[half:]))]
        return tuple(torch.cat(maps).numpy() for maps in zip(*parts))


def poses(samples):
    return [(s.pred_instances.keypoints, s.pred_instances.keypoint_scores)
            for s in samples]


def by_score(samples):
    """The samples' poses best first (``model.test_step`` keeps the NMS's
    order, which with ``nms_order='proposal'`` is not the score order)."""
    for s in samples:
        order = np.argsort(-s.pred_instances.bbox_scores, kind='stable')
        s.pred_instances = s.pred_instances[order]
    return samples


def assert_same_poses(got, expected, px=0.0, score=0.0, tie_share=0.0):
    """Same poses in the same order: every keypoint score within ``score``,
    every keypoint within ``px`` except at most a ``tie_share`` of them
    (near-ties of the decoding, whose scores still agree)."""
    assert len(got) == len(expected)
    far, total = 0, 0
    for (kg, sg), (ke, se) in zip(poses(got), poses(expected)):
        assert kg.shape == ke.shape
        np.testing.assert_allclose(sg, se, rtol=0, atol=score)
        far += int((np.abs(kg - ke).max(-1) > px).sum())
        total += se.size
    assert far <= tie_share * total, (far, total)


def test_onnxruntime_maps_equal_pytorch(model, graphs):
    plain, _ = graphs
    assert plain.input_shape == (256, 256) and plain.batch_size is None
    assert plain.preprocess is None
    x = torch.rand(3, 3, 256, 256, generator=torch.Generator().manual_seed(1))
    x = x * 4 - 2  # the normalised range
    with torch.no_grad():
        expected = [m.numpy() for m in DenseNetwork(model)(x)]
    got = plain(x.numpy())
    K = model.head.num_keypoints
    C = model.head.embedding_channels
    shapes = [(3, K + 1, 64, 64), (3, 2 * K, 64, 64), (3, C, 64, 64)]
    for g, e, shape in zip(got, expected, shapes):
        assert g.shape == e.shape == shape
        scale = np.abs(e).max()
        assert scale > 0
        np.testing.assert_allclose(g, e, rtol=0, atol=MAP_RTOL * scale)


def test_graph_with_normalisation_equals_the_data_preprocessor(model, graphs):
    _, raw = graphs
    assert raw.preprocess == dict(mean=[127.5] * 3, std=[127.5] * 3,
                                  bgr_to_rgb=True)
    rng = np.random.default_rng(2)
    imgs = [torch.from_numpy(rng.integers(0, 256, (3, 256, 320),
                                          dtype=np.uint8)) for _ in range(2)]
    from mmpose.structures import PoseDataSample
    normalised = model.data_preprocessor(
        dict(inputs=imgs, data_samples=[PoseDataSample() for _ in imgs]),
        False)['inputs']
    with torch.no_grad():
        expected = [m.numpy() for m in DenseNetwork(model)(normalised)]
    got = raw(torch.stack(imgs).float().numpy())
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=0,
                                   atol=MAP_RTOL * np.abs(e).max())


def test_rest_on_the_network_maps_is_test_step(model):
    """The rest of inference reproduces ``model.test_step`` bit for bit on
    PyTorch's own maps (flip test on, several poses per image)."""
    assert model.test_cfg['flip_test']
    data = synthetic_batch(model, [(256, 256), (256, 256)])
    with torch.no_grad():
        expected = model.test_step(data)
        got = onnx_inference(model, TorchNetwork(model, (256, 256)), data)
    assert sum(len(s.pred_instances.keypoints) for s in expected) >= 4
    assert_same_poses(got, expected)


def test_onnx_pipeline_gives_the_poses_of_test_step(model, graphs):
    plain, _ = graphs
    data = synthetic_batch(model, [(256, 256), (256, 256)], seed=5)
    with torch.no_grad():
        expected = model.test_step(data)
        got = onnx_inference(model, plain, data)
    assert sum(len(s.pred_instances.keypoints) for s in expected) >= 4
    assert_same_poses(got, expected, POSE_TOL_PX, SCORE_TOL, MAX_TIE_SHARE)
    # in image pixels, inside the image
    for s in got:
        assert s.pred_instances.keypoints.shape[1:] == (17, 2)


def test_predict_from_maps_without_flip(model):
    data = synthetic_batch(model, [(256, 256)], seed=7)
    model.test_cfg['flip_test'] = False
    try:
        with torch.no_grad():
            expected = model.test_step(data)
            processed = model.data_preprocessor(data, False)
            maps = DenseNetwork(model)(processed['inputs'])
            got = predict_from_maps(model, maps, processed['data_samples'])
    finally:
        model.test_cfg['flip_test'] = True
    assert_same_poses(got, expected)
    with pytest.raises(ValueError, match='flipped_maps'):
        predict_from_maps(model, maps, processed['data_samples'])
    # the head computes its maps from features again afterwards
    assert 'forward' not in model.head.__dict__


def test_smaller_images_are_padded_as_mmpose_pads_a_batch(model, graphs):
    """A 256x256 image in the 256x320 graph (raw input, normalisation in
    the graph) gives the poses of MMPose's BottomupPoseEstimator on the
    image padded to 256x320 (the head decodes only its own cells)."""
    _, raw = graphs
    data = synthetic_batch(model, [(256, 256)], seed=9)
    with torch.no_grad():
        got = onnx_inference(model, raw, data)
        processed = model.data_preprocessor(data, False)
        padded = torch.nn.functional.pad(processed['inputs'], (0, 64))
        expected = BottomupPoseEstimator.predict(
            model, padded, processed['data_samples'])
    assert len(expected[0].pred_instances.keypoints) >= 1
    assert_same_poses(got, expected, POSE_TOL_PX, SCORE_TOL, MAX_TIE_SHARE)


def test_larger_images_are_refused(model, graphs):
    plain, _ = graphs
    data = synthetic_batch(model, [(200, 300)])  # resized to 256 x 384
    with pytest.raises(ValueError, match='at most 256x256'):
        onnx_inference(model, plain, data)


def test_export_tool(tmp_path):
    sys.path.insert(0, osp.join(REPO, 'tools'))
    try:
        import export_onnx as tool
    finally:
        sys.path.pop(0)
    out = str(tmp_path / 'm.onnx')
    report = tool.main([
        CPU_CONFIG, 'none', out, '--input-shape', '128', '160',
        '--static-batch', '--with-preprocess'
    ])
    assert osp.exists(out)
    assert report['input_shape'] == (128, 160)
    diff, scale = report['max_abs_diff'], report['max_abs']
    assert_below(max(diff[k] / scale[k] for k in diff), MAP_RTOL,
                 'maps, relative to their range')
    network = ONNXDenseNetwork(out)
    assert network.batch_size == 1 and network.input_shape == (128, 160)
    # a fixed batch of 1 still runs three images (one at a time)
    x = np.random.default_rng(0).uniform(0, 255, (3, 3, 128, 160))
    maps = network(x.astype(np.float32))
    assert [m.shape[0] for m in maps] == [3, 3, 3]
    single = network(x[2:3].astype(np.float32))
    np.testing.assert_array_equal(maps[0][2:], single[0])
