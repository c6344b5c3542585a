"""The whole model as one ONNX graph (``logocap_mmpose.deploy.one_graph``)
on the CPU config with seeded random weights.

Checks: in onnxruntime the one graph gives ``model.test_step``'s poses
(within the tolerances of ``test_onnx_export.py``) on synthetic images,
with the normalisation in the graph or not, with a pose NMS that removes
poses in both visiting orders, and on coco-mini images; the batch size,
height and width are free (one graph serves landscape and portrait
images); an image with no person gives a valid count of 0; settings that
differ from the graph's, or that it cannot honour, and sizes that are not
multiples of the size divisor are refused. (The tensor pose NMS against the greedy one:
``tests/test_models/test_pose_nms_tensor.py``.) Skipped without onnx /
onnxruntime (the optional ``onnx`` extra).
"""
import copy
import os.path as osp

import numpy as np
import pytest
import torch

from logocap_mmpose.analysis import test_options as with_test_cfg

from tests.conftest import require_shared
from tests.test_deploy.conftest import (add_quality_head, require_onnx,
                                        seeded_cpu_model)

pytestmark = pytest.mark.float_bound

require_onnx()

from logocap_mmpose.deploy import (ONNXOneGraph,  # noqa: E402
                                   export_one_graph, one_graph_inference,
                                   preprocess_from_config, to_image_pixels)
from tests.test_deploy.test_onnx_export import (  # noqa: E402
    MAX_TIE_SHARE, POSE_TOL_PX, SCORE_TOL, assert_same_poses, by_score,
    synthetic_batch)

COCO_MINI_384 = ('000000000632.jpg', '000000001268.jpg', '000000001503.jpg')


@pytest.fixture(scope='module')
def model():
    """This module's own model (its tests change its settings)."""
    return seeded_cpu_model()


@pytest.fixture(scope='module')
def onnx_dir(tmp_path_factory):
    return tmp_path_factory.mktemp('one_graph')


@pytest.fixture(scope='module')
def raw_graph(model, onnx_dir):
    """256x320, the normalisation inside (raw BGR input)."""
    return ONNXOneGraph(export_one_graph(
        model, str(onnx_dir / 'raw.onnx'), (256, 320),
        preprocess=preprocess_from_config(model.cfg)))


def test_one_graph_gives_test_step_poses(model, raw_graph):
    assert model.test_cfg['flip_test']
    assert raw_graph.size_divisor == 64  # the test resize's size_factor
    assert raw_graph.resize['type'] == 'BottomupResize'
    assert raw_graph.preprocess is not None
    assert raw_graph.max_people == 10  # max_proposals
    data = synthetic_batch(model, [(256, 320), (256, 320)], seed=5)
    with torch.no_grad():
        expected = model.test_step(synthetic_batch(
            model, [(256, 320), (256, 320)], seed=5))
    got = one_graph_inference(model, raw_graph, data)
    assert sum(len(s.pred_instances.keypoints) for s in expected) >= 4
    assert_same_poses(got, expected, POSE_TOL_PX, SCORE_TOL, MAX_TIE_SHARE)
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g.pred_instances.bboxes,
                                   e.pred_instances.bboxes, rtol=0,
                                   atol=1e-2)


@pytest.mark.parametrize('order', ['score', 'proposal'])
def test_pose_nms_in_the_graph(model, onnx_dir, order):
    """A distance threshold at which the seeded model's poses (dots about
    0.5 px wide, tens of px apart) duplicate each other: the NMS inside the
    graph removes the poses PyTorch's removes."""
    cfg = dict(nms_dist_thr=2.0, nms_joints_thr=8, nms_order=order,
               max_num_people=5)
    shapes = [(256, 320), (256, 320)]
    with with_test_cfg(model, **cfg), torch.no_grad():
        expected = by_score(model.test_step(synthetic_batch(model, shapes,
                                                            seed=5)))
        graph = ONNXOneGraph(export_one_graph(
            model, str(onnx_dir / f'nms_{order}.onnx'), (256, 320),
            preprocess=preprocess_from_config(model.cfg)))
        assert graph.max_people == 5
        got = one_graph_inference(model, graph,
                                  synthetic_batch(model, shapes, seed=5))
    counts = [len(s.pred_instances.keypoints) for s in expected]
    assert all(1 < c < 10 for c in counts), counts  # the NMS did remove
    assert_same_poses(got, expected, POSE_TOL_PX, SCORE_TOL, MAX_TIE_SHARE)


def coco_mini_batch(model, names):
    from mmengine.dataset import Compose, pseudo_collate
    root = require_shared('coco-mini', 'val2017')
    pipeline = Compose(model.cfg.test_dataloader.dataset.pipeline)
    items = []
    for name in names:
        info = dict(img_path=osp.join(root, name))
        info.update(model.dataset_meta)
        items.append(pipeline(info))
    return pseudo_collate(items)


def test_coco_mini_images_preprocessed_input(model, onnx_dir):
    """Three coco-mini images (256x384 after the test resize) as one batch
    through a graph that takes the preprocessed input, traced at 256x320."""
    data = coco_mini_batch(model, COCO_MINI_384)
    assert all(tuple(i.shape[-2:]) == (256, 384) for i in data['inputs'])
    graph = ONNXOneGraph(export_one_graph(
        model, str(onnx_dir / 'plain.onnx'), (256, 320)))
    assert graph.preprocess is None
    with torch.no_grad():
        expected = model.test_step(coco_mini_batch(model, COCO_MINI_384))
    got = one_graph_inference(model, graph, data)
    assert sum(len(s.pred_instances.keypoints) for s in expected) >= 6
    assert_same_poses(got, expected, POSE_TOL_PX, SCORE_TOL, MAX_TIE_SHARE)


def test_batch_size_is_free(model, raw_graph):
    data = synthetic_batch(model, [(256, 320)] * 3, seed=11)
    x = torch.stack(list(data['inputs'])).float().numpy()
    together = raw_graph(x)
    assert together['keypoints'].shape == (3, 10, 17, 2)
    assert together['num_people'].dtype == np.int64
    for i in range(3):
        alone = raw_graph(x[i:i + 1])
        n = int(alone['num_people'][0])
        assert n == together['num_people'][i] and n >= 1
        np.testing.assert_allclose(alone['keypoints'][0, :n],
                                   together['keypoints'][i, :n], rtol=0,
                                   atol=POSE_TOL_PX)
        np.testing.assert_allclose(alone['keypoint_scores'][0, :n],
                                   together['keypoint_scores'][i, :n],
                                   rtol=0, atol=SCORE_TOL)
    # best first, the padding rows after the valid ones score 0
    for scores, n in zip(together['pose_scores'], together['num_people']):
        assert (np.diff(scores[:n]) <= 0).all()
        assert (scores[n:] == 0).all()


def test_no_person_gives_a_count_of_zero(model, onnx_dir):
    """Heatmaps below 0 everywhere: no centre scores above 0, so no pose,
    in PyTorch and in the graph."""
    empty = copy.deepcopy(model)
    with torch.no_grad():
        empty.head.heatmap_layers[-1].bias.fill_(-50.0)
    data = synthetic_batch(empty, [(256, 320)], seed=3)
    with torch.no_grad():
        expected = empty.test_step(synthetic_batch(empty, [(256, 320)],
                                                   seed=3))
    graph = ONNXOneGraph(export_one_graph(
        empty, str(onnx_dir / 'empty.onnx'), (256, 320),
        preprocess=preprocess_from_config(empty.cfg)))
    outputs = graph(torch.stack(list(data['inputs'])).float().numpy())
    assert outputs['num_people'].tolist() == [0]
    assert (outputs['pose_scores'] == 0).all()
    got = one_graph_inference(empty, graph, data)
    assert len(expected[0].pred_instances.keypoints) == 0
    assert got[0].pred_instances.keypoints.shape == (0, 17, 2)


def test_settings_other_than_the_graphs_are_refused(model, raw_graph):
    data = synthetic_batch(model, [(256, 320)], seed=1)
    with with_test_cfg(model, max_proposals=5):
        with pytest.raises(ValueError, match='test_cfg.max_proposals is 5 '
                           'but the one graph was exported with 10'):
            one_graph_inference(model, raw_graph, data)
    with with_test_cfg(model, output_heatmaps=True):
        with pytest.raises(ValueError, match='test_cfg.output_heatmaps'):
            one_graph_inference(model, raw_graph, data)
    with with_test_cfg(model, scales=[0.5, 1.0]):
        with pytest.raises(ValueError, match='test_cfg.scales'):
            export_one_graph(model, 'unused.onnx', (256, 320))


@pytest.mark.parametrize('shape', [(320, 256), (192, 448)])
def test_one_graph_serves_other_sizes(model, raw_graph, shape):
    """The graph traced at 256x320 gives test_step's poses on a portrait
    and on a wide image: the height and width are free."""
    with torch.no_grad():
        expected = model.test_step(synthetic_batch(model, [shape], seed=7))
    got = one_graph_inference(model, raw_graph,
                              synthetic_batch(model, [shape], seed=7))
    assert len(expected[0].pred_instances.keypoints) >= 2
    assert_same_poses(got, expected, POSE_TOL_PX, SCORE_TOL, MAX_TIE_SHARE)


def test_sizes_the_graph_cannot_take_are_refused(model, raw_graph):
    data = synthetic_batch(model, [(256, 320), (320, 256)], seed=1)
    with pytest.raises(ValueError, match='must have one size'):
        one_graph_inference(model, raw_graph, data)
    with pytest.raises(ValueError, match='multiples of 64, got 256x288'):
        raw_graph(np.zeros((1, 3, 256, 288), np.float32))
    with pytest.raises(ValueError, match='multiples of 64'):
        export_one_graph(model, 'unused.onnx', (256, 288))


def test_to_image_pixels_is_mmposes_mapping():
    points = np.array([[[0.0, 0.0], [255.5, 127.0]]], np.float32)
    got = to_image_pixels(points, (256, 256), (100.0, 50.0), (512.0, 512.0))
    expected = points / 256 * 512 + np.array([100.0, 50.0]) - 256
    np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_export_tool_one_graph(tmp_path):
    from tests.conftest import load_tool
    from tests.test_deploy.conftest import CPU_CONFIG
    tool = load_tool('export_onnx')
    out = str(tmp_path / 'whole.onnx')
    report = tool.main([CPU_CONFIG, 'none', out, '--input-shape', '128',
                        '128', '--one-graph', '--with-preprocess',
                        '--cfg-options', 'model.test_cfg.max_proposals=5'])
    assert report['one_graph'] and osp.exists(out)
    assert not osp.exists(tmp_path / 'whole_refinement.onnx')
    check = report['one_graph_check']
    assert check['same_count']
    assert check['max_score_diff'] <= SCORE_TOL
    graph = ONNXOneGraph(out)
    assert graph.size_divisor == 64 and graph.max_people == 5
    assert graph.settings['max_proposals'] == 5


def test_the_graph_carries_the_learned_quality(onnx_dir):
    """A model with a quality head (random weights) and
    ``pose_score='quality'``: the graph gives ``test_step``'s poses, scored
    by their predicted OKS, and returns that OKS as ``pose_quality``."""
    model = add_quality_head(seeded_cpu_model())
    shapes = [(256, 320), (256, 320)]
    with with_test_cfg(model, pose_score='quality'), torch.no_grad():
        expected = by_score(model.test_step(synthetic_batch(model, shapes,
                                                            seed=5)))
        graph = ONNXOneGraph(export_one_graph(
            model, str(onnx_dir / 'quality.onnx'), (256, 320),
            preprocess=preprocess_from_config(model.cfg)))
        data = synthetic_batch(model, shapes, seed=5)
        got = one_graph_inference(model, graph, data)
        outputs = graph(torch.stack(list(data['inputs'])).float().numpy())
    assert sum(len(s.pred_instances.keypoints) for s in expected) >= 4
    assert_same_poses(got, expected, POSE_TOL_PX, SCORE_TOL, MAX_TIE_SHARE)
    for i, n in enumerate(outputs['num_people']):
        quality = outputs['pose_quality'][i, :n]
        assert ((quality > 0) & (quality < 1)).all()
        # scored by the quality: every keypoint score is the pose's OKS
        np.testing.assert_allclose(outputs['keypoint_scores'][i, :n],
                                   np.repeat(quality[:, None], 17, 1),
                                   rtol=0, atol=1e-6)
    assert not np.allclose(outputs['pose_quality'][0, :2], 0)
