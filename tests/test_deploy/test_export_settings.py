"""No ``test_cfg`` key that changes PyTorch's poses is silently ignored by
the deployed model.

The keys come from one place, ``head_config.TEST_CFG``, which must list
every key the package (and MMPose's ``BottomupPoseEstimator`` it extends)
reads. Each key has a decision in ``deploy.settings.EXPORT_DECISIONS`` and
a value other than the CPU config's here; with that value the whole model
in onnxruntime (dense graph with the normalisation inside, refinement graph
exported in the config's mode) either gives ``model.test_step``'s poses
within the ONNX tolerances, its refinement graph getting as many proposals
as PyTorch's refinement (honoured), or stops with a ``ValueError`` naming
the key (refused). The whole model as one graph (``one_graph.py``) has
its own decisions (``ONE_GRAPH_DECISIONS``): with each key's other value
the graph exported with that ``test_cfg`` gives ``model.test_step``'s poses
(best first), or its export stops with a ``ValueError`` naming the key.
A new key without a decision or a value fails
:func:`test_every_key_has_a_decision_and_a_value`, and then its own case.
Skipped without onnx / onnxruntime (the optional ``onnx`` extra).
"""
import copy
import inspect
import os
import os.path as osp
import re

import numpy as np
import pytest
import torch

from logocap_mmpose.analysis import test_options as with_test_cfg

from tests.conftest import REPO
from tests.test_deploy.conftest import (
    add_quality_head, require_onnx, seeded_cpu_model)

pytestmark = pytest.mark.float_bound

require_onnx()

from logocap_mmpose.deploy import (ONNXDenseNetwork,  # noqa: E402
                                   ONNXOneGraph, ONNXRefinement,
                                   export_one_graph, export_onnx,
                                   export_refinement_onnx, onnx_inference,
                                   one_graph_inference,
                                   preprocess_from_config)
from logocap_mmpose.deploy.settings import (EXPORT_DECISIONS,  # noqa: E402
                                            HONOURED, ONE_GRAPH_DECISIONS,
                                            REFUSED)
from logocap_mmpose.models.heads.head_config import TEST_CFG  # noqa: E402
from tests.test_deploy.test_onnx_export import (  # noqa: E402
    MAX_TIE_SHARE, POSE_TOL_PX, SCORE_TOL, assert_same_poses, by_score,
    poses, synthetic_batch)

# per key, a value other than the CPU config's
OTHER_VALUES = dict(
    flip_test=False,
    flip_in_one_pass=False,
    fuse_conv_bn=False,
    channels_last=False,
    scales=[0.5, 1.0],
    multiscale_size_divisor=64,
    multiscale_test=True,
    mode='kems_only',
    max_proposals=3,
    nms_before_refine=True,
    kam_score='product',
    pose_score='quality',
    output_heatmaps=True,
    nms_dist_thr=0.0,
    nms_joints_thr=2,
    max_num_people=2,
    nms_order='proposal',
)
# settings that go with a key's other value in its case (and in the run it
# is compared with): the seeded model's poses are dots about 0.5 px wide,
# tens of px apart, which duplicate each other only at a distance threshold
# of a thousand pose diagonals
WITH = dict(nms_before_refine=dict(nms_dist_thr=1000.0, nms_joints_thr=0))
# honoured keys whose other value must change PyTorch's poses on the test
# batch (so that the comparison is not vacuous); the others change them by
# float rounding at most, or nothing at one scale, or only other outputs
CHANGES_POSES = ('flip_test', 'mode', 'max_proposals', 'nms_dist_thr',
                 'max_num_people')
# ... or the proposals PyTorch refines (fewer)
CHANGES_PROPOSALS = ('max_proposals', 'nms_before_refine')

KEY_READ = re.compile(r"test_cfg(?:\.get\(|\[)\s*['\"](\w+)['\"]")


def keys_read(source: str) -> set:
    """The ``test_cfg`` keys a source text reads (``test_cfg.get('k'`` or
    ``test_cfg['k']``)."""
    return set(KEY_READ.findall(source))


def test_every_key_the_package_reads_is_listed():
    read = set()
    for folder in ('logocap_mmpose', 'tools'):
        for root, _, files in os.walk(osp.join(REPO, folder)):
            for name in files:
                if name.endswith('.py'):
                    with open(osp.join(root, name)) as f:
                        read |= keys_read(f.read())
    from mmpose.models.pose_estimators import bottomup
    read |= keys_read(inspect.getsource(bottomup))
    assert read - set(TEST_CFG) == set(), 'add them to head_config.TEST_CFG'
    assert set(TEST_CFG) - read == set(), 'keys nobody reads'


def test_every_key_has_a_decision_and_a_value():
    assert set(EXPORT_DECISIONS) == set(TEST_CFG)
    assert set(EXPORT_DECISIONS.values()) <= {HONOURED, REFUSED}
    assert set(ONE_GRAPH_DECISIONS) == set(TEST_CFG)
    assert set(ONE_GRAPH_DECISIONS.values()) <= {HONOURED, REFUSED}
    assert set(OTHER_VALUES) == set(TEST_CFG)
    assert set(CHANGES_POSES) <= {k for k, v in EXPORT_DECISIONS.items()
                                  if v == HONOURED}


@pytest.fixture(scope='module')
def models():
    """A seeded model with a quality head and an unfused copy of it (for
    ``fuse_conv_bn=False``: the first prediction folds the BatchNorms of
    the other one)."""
    model = add_quality_head(seeded_cpu_model())  # pose_score can be set
    return dict(model=model, unfused=copy.deepcopy(model))


@pytest.fixture(scope='module')
def graphs(models, tmp_path_factory):
    """The dense graph (256x320, normalisation inside) and a refinement
    graph per mode, exported with the model's ``test_cfg``."""
    root = tmp_path_factory.mktemp('export_settings')
    model = models['model']
    dense = ONNXDenseNetwork(export_onnx(
        model, str(root / 'dense.onnx'), (256, 320),
        preprocess=preprocess_from_config(model.cfg)))
    refinements = {}

    def refinement(model):
        mode = model.test_cfg.get('mode', TEST_CFG['mode'])
        if mode not in refinements:  # mode: read from the test_cfg
            refinements[mode] = ONNXRefinement(export_refinement_onnx(
                model, str(root / f'refine_{mode}.onnx')))
        return refinements[mode]

    return dense, refinement


def batch(model):
    return synthetic_batch(model, [(256, 320), (256, 320)], seed=5)


class Counted:
    """A refinement (graph or PyTorch function) that records the number of
    proposals of every call."""

    def __init__(self, refine):
        self.inner, self.counts = refine, []

    def __call__(self, *args):
        self.counts.append(int(args[-1].shape[1]))  # initial (B, N, K, 2)
        return self.inner(*args)


def pytorch_counted(model, monkeypatch):
    """``model.test_step`` on :func:`batch`, and the proposal counts its
    refinement got."""
    from logocap_mmpose.models import refinement
    counted = Counted(refinement.refine)
    with monkeypatch.context() as patch:
        patch.setattr(refinement, 'refine', counted)
        return model.test_step(batch(model)), counted.counts


def onnx_counted(model, dense, graph):
    """:func:`onnx_inference` with ``graph`` on :func:`batch`, and the
    proposal counts the graph got."""
    counted = Counted(graph.refine)
    wrapper = type('Graph', (), dict(mode=graph.mode, refine=counted))()
    return onnx_inference(model, dense, batch(model), wrapper), counted.counts


def in_expected_order(got, expected):
    """``got``'s poses reordered to ``expected``'s order where the two orders
    differ only between poses whose pose scores (mean keypoint score) are
    within ``SCORE_TOL``: such near-ties are ordered by float rounding (the
    graph's and PyTorch's differ in the last bits), and the random model
    gives many of them. A swap of poses with clearly different scores stays
    a failure. Poses are matched by their keypoints."""
    for g, e in zip(got, expected):
        kg, ke = g.pred_instances.keypoints, e.pred_instances.keypoints
        if kg.shape != ke.shape or len(ke) < 2:
            continue
        dist = np.abs(ke[:, None] - kg[None]).max(axis=(2, 3))  # (Ne, Ng)
        match = dist.argmin(1)
        if sorted(match) != list(range(len(kg))):
            continue  # no one-to-one match: leave it to the comparison
        sg = g.pred_instances.keypoint_scores.mean(-1)
        se = e.pred_instances.keypoint_scores.mean(-1)
        moved = match != np.arange(len(match))
        if np.all(np.abs(sg[match][moved] - se[moved]) <= SCORE_TOL) and \
                np.all(np.abs(sg[moved] - se[moved]) <= SCORE_TOL):
            g.pred_instances = g.pred_instances[match]
    return got


@pytest.mark.parametrize('key', sorted(TEST_CFG))
def test_the_deployed_model_honours_or_refuses(key, models, graphs,
                                               monkeypatch):
    decision = EXPORT_DECISIONS.get(key)
    assert decision is not None, (f'test_cfg.{key}: no decision in '
                                  'deploy.settings.EXPORT_DECISIONS')
    assert key in OTHER_VALUES, f'test_cfg.{key}: no other value here'
    model = models['unfused' if key == 'fuse_conv_bn' else 'model']
    dense, refinement = graphs
    value = OTHER_VALUES[key]
    assert model.test_cfg.get(key, TEST_CFG[key]) != value
    with torch.no_grad(), with_test_cfg(model, **WITH.get(key, {})):
        before, counts_before = pytorch_counted(model, monkeypatch)
        with with_test_cfg(model, **{key: value}):
            if decision == REFUSED:
                with pytest.raises(ValueError, match=f'test_cfg.{key}'):
                    onnx_inference(model, dense, batch(model),
                                   refinement(model))
                return
            expected, counts = pytorch_counted(model, monkeypatch)
            got, graph_counts = onnx_counted(model, dense,
                                             refinement(model))
    assert sum(len(s.pred_instances.keypoints) for s in expected) >= 1
    assert_same_poses(in_expected_order(got, expected), expected, POSE_TOL_PX,
                      SCORE_TOL, MAX_TIE_SHARE)
    assert graph_counts == counts  # the graph refines PyTorch's proposals
    if key in CHANGES_POSES:  # the setting did change PyTorch's poses
        assert any(
            kb.shape != ke.shape or (abs(kb - ke) > POSE_TOL_PX).any()
            or (abs(sb - se) > SCORE_TOL).any()
            for (kb, sb), (ke, se) in zip(poses(before), poses(expected)))
    if key in CHANGES_PROPOSALS:
        assert sum(counts) < sum(counts_before), (counts, counts_before)
    if key == 'output_heatmaps':
        assert all('pred_fields' in s for s in got)


@pytest.mark.parametrize('key', sorted(TEST_CFG))
def test_the_one_graph_honours_or_refuses(key, models, tmp_path):
    decision = ONE_GRAPH_DECISIONS.get(key)
    assert decision is not None, (f'test_cfg.{key}: no decision in '
                                  'deploy.settings.ONE_GRAPH_DECISIONS')
    model = models['unfused' if key == 'fuse_conv_bn' else 'model']
    value = OTHER_VALUES[key]
    path = str(tmp_path / 'whole.onnx')
    preprocess = preprocess_from_config(model.cfg)
    with torch.no_grad(), with_test_cfg(model, **WITH.get(key, {})), \
            with_test_cfg(model, **{key: value}):
        if decision == REFUSED:
            with pytest.raises(ValueError, match=f'test_cfg.{key}'):
                export_one_graph(model, path, (256, 320), preprocess)
            return
        expected = by_score(model.test_step(batch(model)))
        graph = ONNXOneGraph(export_one_graph(model, path, (256, 320),
                                              preprocess))
        got = one_graph_inference(model, graph, batch(model))
    assert sum(len(s.pred_instances.keypoints) for s in expected) >= 1
    assert_same_poses(got, expected, POSE_TOL_PX, SCORE_TOL, MAX_TIE_SHARE)
