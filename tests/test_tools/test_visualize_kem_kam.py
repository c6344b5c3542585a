"""The KEM / KAM drawing (logocap_mmpose/analysis/kem_kam.py) and
tools/visualize_kem_kam.py, on a coco-mini image with a random-weight
CPU-sized model."""
import copy
import os
import os.path as osp

import numpy as np
import pytest
import torch

from logocap_mmpose.models import refinement
from logocap_mmpose.models.inference import dense_outputs
from logocap_mmpose.analysis.kem_kam import (draw_kem_kam, kem_kam_stages,
                                             resolve_keypoints,
                                             visualize_kem_kam)
from tests.conftest import REPO, require_shared

CPU_CONFIG = osp.join(REPO, 'configs', 'logocap', 'coco',
                      'logocap_effnetlite0_1xb8-40e_coco-256x256.py')
TOOL = osp.join(REPO, 'tools', 'visualize_kem_kam.py')


@pytest.fixture(scope='module')
def image_path():
    root = require_shared('coco-mini', 'val2017')
    return osp.join(root, sorted(os.listdir(root))[0])


@pytest.fixture(scope='module')
def model():
    """The CPU config's model with random weights: the head drawn from
    N(0, 0.05) so that its maps, KAMs and windows vary from cell to cell."""
    from logocap_mmpose.analysis import build_model, load_config
    model = build_model(load_config(CPU_CONFIG), None, 'cpu')
    torch.manual_seed(0)
    for p in model.head.parameters():
        p.data.normal_(0, 0.05)
    return model


@pytest.fixture(scope='module')
def batch(model, image_path):
    from logocap_mmpose.analysis import prepare_batches
    return prepare_batches(model, [image_path])[0]


@pytest.fixture(scope='module')
def batched(model, batch):
    """The head's stages on every proposal at once (its own batched path,
    as ``head.predict`` runs them), independently of the drawing code."""
    head = model.head
    with torch.no_grad():
        data = model.data_preprocessor(copy.deepcopy(batch), False)
        inputs = data['inputs']
        feats = [model.extract_feat(inputs),
                 model.extract_feat(inputs.flip(-1))]
        assert model.test_cfg['flip_test']
        heatmaps, displacements, embedding = dense_outputs(
            head.forward, feats, True,
            data['data_samples'][0].metainfo['flip_indices'])
        initial, _, valid = head.decoder.decode_batch(
            heatmaps, displacements, model.test_cfg.get('max_proposals'))
        maps = heatmaps[:, :head.num_keypoints]
        geometry = head.geometry
        poses = refinement.local_poses(geometry, initial)
        kams = refinement.kams(geometry, head.cmp, embedding,
                               poses).clamp(0, 1)
        after = refinement.adapt(
            geometry, refinement.global_kems(geometry, maps, initial), kams)
        # head.refine on the drawn proposal alone: the batched refinement
        # of all proposals agrees with it up to float rounding, which can
        # swap near-tied cells of the top-2 decoding
        person = min(2, int(valid[0].sum()) - 1)
        final, _ = head.refine('full', maps, embedding,
                               initial[:, person:person + 1])
    return dict(initial=initial[0].numpy(), kams=kams[0].numpy(),
                after=after[0].numpy(), person=person,
                final=final[0, 0].numpy(), count=int(valid[0].sum()))


@pytest.mark.float_bound
def test_drawing_shows_what_the_head_computes(model, batch, batched,
                                              tmp_path):
    person = batched['person']
    keypoints = ['left_wrist', 0, '16']
    out = tmp_path / 'kem_kam.png'
    summary = visualize_kem_kam(model, batch, person, keypoints, str(out))

    # one PNG: an overview plus 4 panels per keypoint
    assert out.exists() and out.stat().st_size > 10_000
    with open(out, 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'
    assert summary['keypoints'] == [9, 0, 16]
    assert summary['num_panels'] == 1 + 4 * 3 == len(summary['figure'].axes)
    assert len(summary['axes']['rows']) == 3

    stages = summary['stages']
    assert stages['num_proposals'] == batched['count']
    np.testing.assert_allclose(stages['initial'], batched['initial'][person],
                               atol=1e-4)
    # the final keypoints drawn are head.refine('full')'s for this proposal
    np.testing.assert_allclose(summary['drawn_final'],
                               batched['final'][[9, 0, 16]], atol=1e-3)
    np.testing.assert_allclose(summary['drawn_initial'],
                               batched['initial'][person][[9, 0, 16]],
                               atol=1e-4)
    # the adapted window drawn is the one the head decodes
    np.testing.assert_allclose(stages['final_from_maps'], stages['final'],
                               atol=1e-4)
    from logocap_mmpose.models.adaptation import top2_decode
    for row, k in zip(summary['axes']['rows'], summary['keypoints']):
        kam = np.asarray(row['kam'].images[0].get_array())
        np.testing.assert_allclose(kam, batched['kams'][person, k],
                                   atol=1e-5)
        after = np.asarray(row['after'].images[1].get_array())
        np.testing.assert_allclose(after, batched['after'][person, k],
                                   rtol=1e-4, atol=1e-5)
        # the final marker is the top-2 decoding of the window drawn
        offset, _ = top2_decode(torch.from_numpy(after)[None, None],
                                model.head.top2_lambda)
        np.testing.assert_allclose(
            row['after'].lines[1].get_xydata()[0],
            stages['initial'][k] + offset[0, 0].numpy(), atol=1e-3)
        # the local KEM grid: S x S points around the initial keypoint
        grid = row['local'].lines[0].get_xydata()
        S = model.head.kem_offsets.shape[1]
        assert grid.shape == (S * S, 2)
        np.testing.assert_allclose(grid.mean(0), stages['initial'][k],
                                   atol=1e-3)
    # the KAMs vary (random weights drawn wide): a real map was drawn
    assert stages['kams'][[9, 0, 16]].std() > 1e-3
    # overview: the final pose as drawn
    overview = summary['axes']['overview']
    final_line = [ln for ln in overview.lines
                  if ln.get_label() == 'final pose'][0]
    np.testing.assert_allclose(final_line.get_xydata(), stages['final'],
                               atol=1e-4)


def test_default_keypoints_are_the_most_moved(model, batch):
    stages = kem_kam_stages(model, batch, 0)
    moved = np.linalg.norm(stages['final'] - stages['initial'], axis=-1)
    chosen = resolve_keypoints(None, stages)
    assert len(chosen) == 3
    assert moved[chosen].min() >= np.delete(moved, chosen).max()
    summary = draw_kem_kam(stages)
    assert summary['keypoints'] == chosen and summary['num_panels'] == 13


def test_refuses_unknown_person_and_keypoints(model, batch, batched):
    with pytest.raises(ValueError, match='proposals'):
        kem_kam_stages(model, batch, batched['count'])
    stages = kem_kam_stages(model, batch, 0)
    with pytest.raises(ValueError, match='unknown keypoint'):
        resolve_keypoints(['left_paw'], stages)
    with pytest.raises(ValueError, match='out of range'):
        resolve_keypoints([17], stages)


def test_command_line(image_path, tmp_path):
    import importlib.util
    spec = importlib.util.spec_from_file_location('visualize_kem_kam', TOOL)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    out = tmp_path / 'sub' / 'vis.png'
    summary = tool.main([image_path, CPU_CONFIG, 'none', '--person', '0',
                         '--keypoints', 'nose', 'right_ankle', '--out',
                         str(out)])
    assert out.exists()
    assert summary['num_panels'] == 1 + 4 * 2
    assert summary['keypoints'] == [0, 16]
