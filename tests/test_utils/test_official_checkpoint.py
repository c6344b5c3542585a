"""tools/convert_official_checkpoint.py and its module
``logocap_mmpose/utils/official_checkpoint.py``.

End to end: a file in the authors' key layout (the fixture's
``authors_head_w32.pth`` head plus an HRNet-W32 backbone state dict made
here under the authors' backbone names, checked against the authors' key
listing) goes through the command-line tool, and the result loads into the
official W32 config's model with strict key checking. Then the three errors:
not a LOGO-CAP checkpoint, a W48 checkpoint for W32, a truncated file.
"""
import ast
import importlib.util
import os.path as osp

import pytest
import torch

from logocap_mmpose.models.heads.official_keys import official_head_key
from logocap_mmpose.utils.official_checkpoint import (
    OfficialCheckpointError, coco_dataset_meta, convert_official_checkpoint,
    official_config, read_official_state_dict)
from mmengine.config import Config
from mmengine.runner import load_checkpoint
from mmpose.registry import MODELS

from tests.conftest import COCO_SIGMAS, REPO, SHARED_DATA, require_shared


def load_tool():
    spec = importlib.util.spec_from_file_location(
        'convert_official_checkpoint',
        osp.join(REPO, 'tools', 'convert_official_checkpoint.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def authors_listing():
    """{key: shape} of the authors' W32 state dict (shared docs)."""
    require_shared()
    doc = osp.join(osp.dirname(SHARED_DATA), 'docs',
                   'official-state-dict-w32.txt')
    listing = {}
    for line in open(doc):
        if line.startswith('#') or not line.strip():
            continue
        key, shape = line.rstrip('\n').split('\t')
        listing[key] = tuple(ast.literal_eval(shape))
    return listing


def authors_w32_state_dict():
    """The authors' layout: fixture head weights + a (random) HRNet-W32
    backbone under the authors' names, ``backbone.<MMPose HRNet name>``."""
    root = require_shared('logocap-parity')
    cfg = Config.fromfile(official_config('w32'))
    backbone = MODELS.build(cfg.model.backbone)
    state = {f'backbone.{k}': v for k, v in backbone.state_dict().items()}
    state.update(torch.load(osp.join(root, 'authors_head_w32.pth')))
    return state


@pytest.mark.float_bound
def test_convert_end_to_end_and_load_strictly(tmp_path, capsys):
    state = authors_w32_state_dict()
    # the file really is in the authors' layout: same keys, same shapes
    assert {k: tuple(v.shape) for k, v in state.items()} == authors_listing()
    src, dst = tmp_path / 'logocap-hrnet-w32-coco.pth.tar', tmp_path / 'c.pth'
    torch.save(state, src)  # a bare state dict, as the authors publish
    assert load_tool().main([str(src), str(dst), '--arch', 'w32']) == 0
    assert 'HRNet-W32: 1873 tensors checked' in capsys.readouterr().out

    cfg = Config.fromfile(official_config('w32'))
    model = MODELS.build(cfg.model)
    checkpoint = load_checkpoint(model, str(dst), map_location='cpu',
                                 strict=True)
    assert set(checkpoint) == {'state_dict', 'meta'}
    meta = checkpoint['meta']['dataset_meta']
    expected = coco_dataset_meta()
    assert meta['dataset_name'] == 'coco' and meta['num_keypoints'] == 17
    assert meta['flip_indices'] == expected['flip_indices']
    assert meta['sigmas'].tolist() == pytest.approx(COCO_SIGMAS)
    # values: backbone as is, head renamed, offsets negated
    torch.testing.assert_close(model.backbone.stage4[2].fuse_layers[0][1][0]
                               .weight,
                               state['backbone.stage4.2.fuse_layers.0.1.0.'
                                     'weight'], atol=0, rtol=0)
    torch.testing.assert_close(model.head.cmp.layers[4].weight,
                               state['joints_mlp.4.weight_'], atol=0, rtol=0)
    torch.testing.assert_close(model.head.offset_layers[3].weight,
                               -state['final_layer_reg.weight'], atol=0,
                               rtol=0)
    torch.testing.assert_close(model.head.offset_layers[3].bias,
                               -state['final_layer_reg.bias'], atol=0, rtol=0)


def test_wrapped_and_module_prefixed_checkpoints_are_read(tmp_path):
    weights = {'transition_cls.0.weight': torch.zeros(32, 480, 1, 1)}
    for i, wrapped in enumerate([
            {'state_dict': {'module.' + k: v for k, v in weights.items()}},
            {'model': weights}, weights]):
        path = tmp_path / f'{i}.pth'
        torch.save(wrapped, path)
        assert list(read_official_state_dict(str(path))) == list(weights)


def test_not_a_logocap_checkpoint(tmp_path, capsys):
    path = tmp_path / 'hrnet_w32_imagenet.pth'
    torch.save({'conv1.weight': torch.zeros(64, 3, 3, 3)}, path)
    with pytest.raises(OfficialCheckpointError,
                       match='not a LOGO-CAP checkpoint'):
        convert_official_checkpoint(str(path))
    assert load_tool().main([str(path), str(tmp_path / 'out.pth')]) == 1
    assert 'not a LOGO-CAP checkpoint' in capsys.readouterr().err
    assert not (tmp_path / 'out.pth').exists()
    # an already converted (MMPose) checkpoint
    torch.save({'state_dict': {'head.cmp.layers.0.weight': torch.zeros(1)}},
               path)
    with pytest.raises(OfficialCheckpointError, match='MMPose layout'):
        convert_official_checkpoint(str(path))


def w48_authors_head():
    """A W48 head (720-channel input) under the authors' key names."""
    head = MODELS.build(
        dict(type='LOGOCAPHead', in_channels=720,
             branch_cfg=dict(heatmap_channels=48),
             keypoint_sigmas=COCO_SIGMAS,
             decoder=dict(type='LOGOCAPLabel', input_size=(640, 640),
                          heatmap_size=(160, 160)))).state_dict()
    return {
        key: head[official_head_key(key)]
        for key in authors_listing() if not key.startswith('backbone.')
    }


def test_w48_checkpoint_refused_for_w32(tmp_path):
    path = tmp_path / 'logocap-hrnet-w48-coco.pth.tar'
    torch.save(w48_authors_head(), path)
    with pytest.raises(OfficialCheckpointError,
                       match='HRNet-W48 checkpoint .*720.* arch w32'):
        convert_official_checkpoint(str(path), arch='w32')
    with pytest.raises(OfficialCheckpointError,
                       match='HRNet-W48 checkpoint .*builds a 480-channel '
                       r'head \(HRNet-W32\)'):
        convert_official_checkpoint(str(path),
                                    config=official_config('w32'))


def test_truncated_file(tmp_path):
    root = require_shared('logocap-parity')
    with open(osp.join(root, 'authors_head_w32.pth'), 'rb') as f:
        data = f.read()
    path = tmp_path / 'logocap-hrnet-w32-coco.pth.tar'
    path.write_bytes(data[:len(data) // 2])
    with pytest.raises(OfficialCheckpointError,
                       match='truncated or corrupt'):
        convert_official_checkpoint(str(path))
