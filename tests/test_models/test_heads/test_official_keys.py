"""Every head layer of the authors' W32 checkpoint maps one-to-one onto
LOGOCAPHead with the same shape."""
import ast
import os.path as osp


from logocap_mmpose.models.heads.official_keys import official_head_key
from mmpose.registry import MODELS

from tests.conftest import COCO_SIGMAS, SHARED_DATA, require_shared


def test_authors_w32_head_keys_map_with_equal_shapes():
    require_shared()
    doc = osp.join(osp.dirname(SHARED_DATA), 'docs',
                   'official-state-dict-w32.txt')
    theirs = {}
    for line in open(doc):
        if line.startswith('#') or not line.strip():
            continue
        key, shape = line.rstrip('\n').split('\t')
        theirs[key] = tuple(ast.literal_eval(shape))
    head = MODELS.build(
        dict(type='LOGOCAPHead', in_channels=480, keypoint_sigmas=COCO_SIGMAS,
             decoder=dict(type='LOGOCAPLabel', input_size=(512, 512),
                          heatmap_size=(128, 128))))
    ours = {k: tuple(v.shape) for k, v in head.state_dict().items()}
    mapped = {}
    for key, shape in theirs.items():
        name = official_head_key(key)
        if name is None:
            continue
        assert name in ours, (key, name)
        assert ours[name] == shape, (key, name, ours[name], shape)
        mapped[name] = key
    assert set(mapped) == set(ours)  # one-to-one, nothing left over
    n_params = sum(p.numel() for p in head.parameters())
    # reference: W32 total 35.99 M, backbone 29.31 M -> head about 6.68 M
    assert abs(n_params / 1e6 - (35.99 - 29.31)) < 0.02
