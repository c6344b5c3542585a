"""The whole model in onnxruntime: the refinement graph
(``export_refinement_onnx``) next to the dense graph, on the CPU config with
random weights.

Checks: the refinement graph equals ``head.refine`` with free proposal
counts (3 and 7) and map sizes, in every test mode; the pipeline with both
graphs gives ``model.test_step``'s poses (and MMPose's on a padded image)
within the tolerances of ``test_onnx_export.py``; a mode mismatch is
refused; ``time_onnxruntime`` runs; the export tool writes both graphs.
Skipped without onnx / onnxruntime (the optional ``onnx`` extra).
"""
import os.path as osp
import sys
from contextlib import contextmanager

import numpy as np
import pytest
import torch

from tests.conftest import REPO
from tests.test_deploy.conftest import CPU_CONFIG, require_onnx

pytestmark = pytest.mark.float_bound

ort = require_onnx()

from mmpose.models.pose_estimators import BottomupPoseEstimator  # noqa: E402
from logocap_mmpose.deploy import (ONNXDenseNetwork,  # noqa: E402
                                   ONNXRefinement, ONNXRuntimePipeline,
                                   batch_canvas_shapes, export_full_model,
                                   export_onnx, export_refinement_onnx,
                                   onnx_inference, preprocess_from_config)
from logocap_mmpose.analysis import time_onnxruntime  # noqa: E402
from tests.test_deploy.test_onnx_export import (  # noqa: E402
    MAX_TIE_SHARE, POSE_TOL_PX, SCORE_TOL, assert_same_poses,
    synthetic_batch)
from tests.test_deploy.test_refinement_network import \
    random_inputs  # noqa: E402
from tests.float_audit import assert_below  # noqa: E402


@pytest.fixture(scope='module')
def onnx_dir(tmp_path_factory):
    return tmp_path_factory.mktemp('full_onnx')


@pytest.fixture(scope='module')
def refinement(seeded_model, onnx_dir):
    path = export_refinement_onnx(seeded_model, str(onnx_dir / 'refine.onnx'))
    return ONNXRefinement(path)


@pytest.fixture(scope='module')
def dense(seeded_model, onnx_dir):
    """A 256x320 dense graph with the normalisation inside."""
    path = export_onnx(seeded_model, str(onnx_dir / 'dense.onnx'), (256, 320),
                       preprocess=preprocess_from_config(seeded_model.cfg))
    return ONNXDenseNetwork(path)


def assert_refined_close(got, expected):
    """Keypoints and scores of the graph vs ``head.refine``: scores within
    SCORE_TOL, keypoints within POSE_TOL_PX but for a MAX_TIE_SHARE of
    near-ties of the top-2 decoding."""
    keypoints, scores = (np.asarray(g) for g in got)
    ke, se = (e.numpy() for e in expected)
    assert keypoints.shape == ke.shape and scores.shape == se.shape
    np.testing.assert_allclose(scores, se, rtol=0, atol=SCORE_TOL)
    far = np.abs(keypoints - ke).max(-1) > POSE_TOL_PX
    assert far.mean() <= MAX_TIE_SHARE, int(far.sum())


def test_refinement_graph_takes_any_proposal_count(seeded_model,
                                                   refinement):
    head = seeded_model.head
    K = head.num_keypoints
    assert refinement.mode == 'full' and refinement.num_keypoints == K
    inputs = [i.name for i in refinement.session.get_inputs()]
    assert inputs == ['heatmaps', 'embedding', 'initial']
    for n, shape in ((3, (64, 64)), (7, (64, 64)), (7, (48, 40))):
        heatmaps, embedding, initial = random_inputs(seeded_model, n, shape,
                                                     seed=n)
        with torch.no_grad():
            expected = head.refine('full', heatmaps[:, :K], embedding,
                                   initial)
        got = refinement(heatmaps.numpy(), embedding.numpy(),
                         initial.numpy())
        assert got[0].shape == (2, n, K, 2) and got[1].shape == (2, n, K)
        assert_refined_close(got, expected)


def test_refinement_graph_on_decoded_proposals(seeded_model, refinement):
    """On the network's own maps and the codec's proposals (3 and 7)."""
    head = seeded_model.head
    K = head.num_keypoints
    x = torch.rand(2, 3, 256, 256, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        heatmaps, displacements, embedding = head.forward(
            seeded_model.extract_feat(x * 4 - 2))
        for n in (3, 7):
            initial, _, _ = head.decoder.decode_batch(
                heatmaps, displacements, n, thr=float('-inf'))
            expected = head.refine('full', heatmaps[:, :K], embedding,
                                   initial)
            got = refinement.refine(heatmaps, embedding, initial)
            assert_refined_close(got, expected)


@contextmanager
def graded_kams(head):
    """KAMs inside (0, 1) while inside: the seeded head's raw KAMs are
    large and clamp to flat 0 / 1 maps, whose top-2 cells are ties that
    PyTorch and onnxruntime break differently (``kams_only`` decodes the
    KAMs themselves)."""
    last = head.cmp.layers[-1]
    saved = last.weight.detach().clone(), last.bias.detach().clone()
    with torch.no_grad():
        last.weight.mul_(1e-3)
        last.bias.fill_(0.5)
    try:
        yield
    finally:
        with torch.no_grad():
            last.weight.copy_(saved[0])
            last.bias.copy_(saved[1])


@pytest.mark.parametrize('mode', ['baseline', 'kems_only', 'kams_only'])
def test_other_modes_export(seeded_model, onnx_dir, mode):
    head = seeded_model.head
    K = head.num_keypoints
    with graded_kams(head):
        graph = ONNXRefinement(export_refinement_onnx(
            seeded_model, str(onnx_dir / f'{mode}.onnx'), mode=mode))
        assert graph.mode == mode
        for n in (3, 7):
            heatmaps, embedding, initial = random_inputs(seeded_model, n)
            with torch.no_grad():
                expected = head.refine(mode, heatmaps[:, :K], embedding,
                                       initial)
            assert_refined_close(
                graph(heatmaps.numpy(), embedding.numpy(), initial.numpy()),
                expected)


def test_whole_model_in_onnxruntime_gives_test_step_poses(
        seeded_model, dense, refinement):
    data = synthetic_batch(seeded_model, [(256, 320), (256, 320)], seed=5)
    assert tuple(data['inputs'][0].shape[-2:]) == (256, 320)
    with torch.no_grad():
        expected = seeded_model.test_step(synthetic_batch(
            seeded_model, [(256, 320), (256, 320)], seed=5))
    got = ONNXRuntimePipeline(seeded_model, dense, refinement)(data)
    assert sum(len(s.pred_instances.keypoints) for s in expected) >= 4
    assert_same_poses(got, expected, POSE_TOL_PX, SCORE_TOL, MAX_TIE_SHARE)


def test_padded_image_in_onnxruntime(seeded_model, dense, refinement):
    """A 256x256 image in the 256x320 graph: the refinement graph gets the
    maps cropped to the image's own cells, as the head does on MMPose's
    padded batch."""
    data = synthetic_batch(seeded_model, [(256, 256)], seed=9)
    with torch.no_grad():
        got = onnx_inference(seeded_model, dense, data, refinement)
        processed = seeded_model.data_preprocessor(data, False)
        padded = torch.nn.functional.pad(processed['inputs'], (0, 64))
        expected = BottomupPoseEstimator.predict(
            seeded_model, padded, processed['data_samples'])
    assert len(expected[0].pred_instances.keypoints) >= 1
    assert_same_poses(got, expected, POSE_TOL_PX, SCORE_TOL, MAX_TIE_SHARE)


def test_mode_mismatch_is_refused(seeded_model, dense, refinement):
    data = synthetic_batch(seeded_model, [(256, 320)], seed=1)
    seeded_model.test_cfg['mode'] = 'kems_only'
    try:
        with pytest.raises(ValueError, match="graph computes 'full'"):
            onnx_inference(seeded_model, dense, data, refinement)
    finally:
        seeded_model.test_cfg['mode'] = 'full'


def test_kam_score_is_refused_by_the_exported_refinement(
        seeded_model, dense, refinement):
    """The graph returns no KAMs: a KAM score stops with the fix, never
    silently scoring by the heatmaps."""
    data = synthetic_batch(seeded_model, [(256, 320)], seed=1)
    seeded_model.test_cfg['kam_score'] = 'product'
    try:
        with pytest.raises(ValueError, match="kam_score='product'.*"
                           'set kam_score=None'):
            onnx_inference(seeded_model, dense, data, refinement)
    finally:
        seeded_model.test_cfg.pop('kam_score')


def test_time_onnxruntime_runs(seeded_model, dense, refinement):
    batches = [synthetic_batch(seeded_model, [(256, 320)], seed=2)]
    ms = time_onnxruntime(seeded_model, [dense], refinement, batches,
                          warmup=0, repeats=1)
    assert isinstance(ms, float) and ms > 0


def test_export_tool_writes_both_graphs(tmp_path):
    sys.path.insert(0, osp.join(REPO, 'tools'))
    try:
        import export_onnx as tool
    finally:
        sys.path.pop(0)
    out = str(tmp_path / 'm.onnx')
    report = tool.main([CPU_CONFIG, 'none', out, '--input-shape', '128',
                        '128', '--cfg-options', 'model.test_cfg.'
                        'max_proposals=5'])
    assert osp.exists(out) and osp.exists(report['refinement_out'])
    assert report['refinement_out'] == str(tmp_path / 'm_refinement.onnx')
    assert_below(report['refinement_check']['max_score_diff'], SCORE_TOL,
                 'refinement scores')
    graph = ONNXRefinement(report['refinement_out'])
    assert graph.mode == 'full'
    dense_only = tool.main([CPU_CONFIG, 'none', str(tmp_path / 'd.onnx'),
                            '--input-shape', '128', '128', '--dense-only',
                            '--no-check'])
    assert 'refinement_out' not in dense_only
    assert not osp.exists(tmp_path / 'd_refinement.onnx')


def test_export_full_model_and_canvas_shapes(seeded_model, tmp_path):
    dense_path, refine_path = export_full_model(
        seeded_model, str(tmp_path / 'd.onnx'), str(tmp_path / 'r.onnx'),
        (128, 192))
    assert ONNXDenseNetwork(dense_path).input_shape == (128, 192)
    assert ONNXRefinement(refine_path).mode == 'full'
    batches = [synthetic_batch(seeded_model, [(256, 320)]),
               synthetic_batch(seeded_model, [(256, 256), (256, 320)])]
    assert batch_canvas_shapes(batches) == [(256, 320), (256, 256)]
