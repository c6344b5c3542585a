"""The torch-free runner (``logocap_runtime``): its resize equals the test
pipeline's, and in a process where importing torch, MMCV, MMEngine or MMPose
raises it reads coco-mini images and returns ``model.test_step``'s poses
(seeded CPU config, the ONNX tolerances of ``test_onnx_export.py``). Also:
the official W32 config exports whole and gives PyTorch's official-mode
poses, and its maps-to-poses graph gives the authors' poses of
``../shared/data/logocap-parity``. Skipped without onnx / onnxruntime.
"""
import json
import os
import os.path as osp
import subprocess
import sys
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch
from mmengine.dataset import Compose

from logocap_runtime import PoseRunner, expand_warp, resize_image, canvas_warp
from tests.conftest import REPO, require_shared
from tests.float_audit import assert_below
from tests.test_deploy.conftest import require_onnx, seeded_cpu_model

pytestmark = pytest.mark.float_bound

require_onnx()

from logocap_mmpose.deploy import (ONNXOneGraph,  # noqa: E402
                                   export_one_graph, one_graph_inference,
                                   preprocess_from_config)
from tests.test_deploy.test_onnx_export import (  # noqa: E402
    MAX_TIE_SHARE, POSE_TOL_PX, SCORE_TOL, assert_same_poses, by_score,
    synthetic_batch)

#: landscape and portrait coco-mini images
IMAGES = ('000000000632.jpg', '000000000724.jpg', '000000001296.jpg')
#: keypoints of the random W32 model allowed at near-ties of the decoding
#: (0 measured natively and under the avx2 and sse41 variants; 2.6% with 30
#: proposals instead of 10)
OFFICIAL_TIE_SHARE = 0.05
#: a process in which the training stack cannot be imported
BLOCKER = '''
import importlib.abc, sys
BLOCKED = ('torch', 'mmcv', 'mmengine', 'mmpose', 'mmdet', 'logocap_mmpose')
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in BLOCKED:
            raise ImportError(f'{name} is blocked in this process')
sys.meta_path.insert(0, Block())
import runpy
sys.argv = ['logocap_runtime'] + sys.argv[1:]
runpy.run_module('logocap_runtime', run_name='__main__')
assert not any(m.split('.')[0] in BLOCKED for m in sys.modules)
'''


@pytest.mark.parametrize('size', [(640, 480), (427, 640), (500, 333),
                                  (333, 500), (640, 427)])
def test_resize_is_the_test_pipelines(size):
    """Canvas pixels and meta equal MMPose's BottomupResize (expand)."""
    from mmpose.registry import TRANSFORMS
    w, h = size
    img = np.random.default_rng(w * h).integers(0, 255, (h, w, 3), np.uint8)
    spec = dict(type='BottomupResize', input_size=(256, 256), size_factor=64,
                resize_mode='expand')
    expected = TRANSFORMS.build(spec)(dict(img=img, ori_shape=(h, w)))
    canvas, meta = resize_image(img, spec)
    np.testing.assert_array_equal(canvas, expected['img'])
    assert tuple(meta['input_size']) == tuple(expected['input_size'])
    np.testing.assert_array_equal(meta['input_center'],
                                  expected['input_center'])
    np.testing.assert_array_equal(meta['input_scale'],
                                  expected['input_scale'])
    assert expand_warp(w, h, (256, 256), 64)['input_size'] == canvas.shape[
        1::-1]


def test_resizes_it_cannot_replay_are_refused():
    with pytest.raises(ValueError, match="resize_mode='expand'"):
        canvas_warp(dict(type='BottomupResize', input_size=(256, 256),
                       resize_mode='fit'), 640, 480)
    with pytest.raises(ValueError, match='unknown test resize'):
        canvas_warp(dict(type='Resize', scale=(256, 256)), 640, 480)


@pytest.fixture(scope='module')
def exported(tmp_path_factory):
    model = seeded_cpu_model()
    path = str(tmp_path_factory.mktemp('runtime') / 'whole.onnx')
    export_one_graph(model, path, (256, 320),
                     preprocess=preprocess_from_config(model.cfg))
    return model, path


def test_runner_without_the_training_stack(exported):
    """``python -m logocap_runtime`` in a process that cannot import torch,
    MMCV, MMEngine, MMPose or this package gives test_step's poses."""
    model, path = exported
    root = require_shared('coco-mini', 'val2017')
    files = [osp.join(root, name) for name in IMAGES]
    run = subprocess.run(
        [sys.executable, '-c', BLOCKER, path, *files, '--threads', '1'],
        capture_output=True, text=True, cwd=REPO, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    assert [line['image'] for line in lines] == files
    pipeline = Compose(model.cfg.test_dataloader.dataset.pipeline)
    from mmengine.dataset import pseudo_collate
    items = []
    for f in files:
        info = dict(img_path=f)
        info.update(model.dataset_meta)
        items.append(pipeline(info))
    shapes = {tuple(i['inputs'].shape[-2:]) for i in items}
    assert len(shapes) == 2  # landscape and portrait canvases
    with torch.no_grad():
        expected = [model.test_step(pseudo_collate([i]))[0] for i in items]
    got = [
        SimpleNamespace(pred_instances=SimpleNamespace(
            keypoints=np.array(line['keypoints'], np.float32).reshape(
                -1, 17, 2),
            keypoint_scores=np.array(line['keypoint_scores'],
                                     np.float32).reshape(-1, 17)))
        for line in lines
    ]
    assert sum(len(s.pred_instances.keypoints) for s in expected) >= 6
    assert_same_poses(got, by_score(expected), POSE_TOL_PX, SCORE_TOL,
                      MAX_TIE_SHARE)


def test_runner_errors(exported, tmp_path):
    _, path = exported
    runner = PoseRunner(path)
    with pytest.raises(FileNotFoundError, match='no image file at'):
        runner(str(tmp_path / 'missing.jpg'))
    corrupt = tmp_path / 'corrupt.jpg'
    corrupt.write_bytes(b'not a jpeg')
    with pytest.raises(ValueError, match='could not be decoded'):
        runner(str(corrupt))
    with pytest.raises(ValueError, match=r'\(h, w, 3\) uint8'):
        runner(np.zeros((64, 64), np.uint8))
    with pytest.raises(FileNotFoundError, match='no ONNX file'):
        PoseRunner(str(tmp_path / 'missing.onnx'))
    # a person-free image: no pose, empty arrays of the right shapes
    blank = runner(np.zeros((240, 320, 3), np.uint8))
    assert blank['keypoints'].shape[1:] == (17, 2)


def official_w32_model(input_size: int):
    """The official W32 config (the authors' inference), random weights and
    a biased head (clear centre peaks), tested at a smaller canvas."""
    from mmengine.config import Config
    from mmpose.apis import init_model

    from logocap_mmpose.utils.official_checkpoint import official_config
    cfg = Config.fromfile(official_config('w32'))
    cfg.model.backbone.init_cfg = None
    cfg.model.test_cfg.max_proposals = 10  # the strongest centres only
    for step in cfg.test_dataloader.dataset.pipeline:
        if step['type'] == 'LOGOCAPTestResize':
            step['input_size'] = input_size
    torch.manual_seed(3)
    model = init_model(cfg, None, device='cpu')
    for m in model.head.modules():
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.normal_(m.weight, 0, 0.05)
    with torch.no_grad():
        model.head.heatmap_layers[-1].bias.fill_(0.5)
    return model.eval()


def test_official_w32_exports_whole(tmp_path):
    """The official W32 config (authors' sampler, decoding on the input,
    proposal-order NMS, flip) as one graph gives PyTorch's official-mode
    poses (best first)."""
    model = official_w32_model(256)
    assert model.head.sampling == 'authors'
    graph = ONNXOneGraph(export_one_graph(
        model, str(tmp_path / 'w32.onnx'), (256, 256),
        preprocess=preprocess_from_config(model.cfg)))
    assert graph.resize['type'] == 'LOGOCAPTestResize'
    shapes = [(256, 384)]
    with torch.no_grad():
        expected = model.test_step(synthetic_batch(model, shapes, seed=5))
    got = one_graph_inference(model, graph,
                              synthetic_batch(model, shapes, seed=5))
    (e, ), (g, ) = by_score(expected), got
    e, g = e.pred_instances, g.pred_instances
    assert len(e.keypoints) >= 5 and g.keypoints.shape == e.keypoints.shape
    # random HRNet features give flat adapted maps: a few keypoints meet
    # near-ties of the top-2 decoding (keypoint and score move together)
    apart = (np.abs(g.keypoints - e.keypoints).max(-1) > POSE_TOL_PX) | (
        np.abs(g.keypoint_scores - e.keypoint_scores) > SCORE_TOL)
    assert_below(float(apart.mean()), OFFICIAL_TIE_SHARE,
                 'share of keypoints at near-ties')
    np.testing.assert_allclose(g.bbox_scores, e.bbox_scores, rtol=0,
                               atol=1e-3)


def test_openvino_gives_onnxruntimes_poses(exported):
    """The same graph in OpenVINO (f32): onnxruntime's poses, up to the
    order of exactly tied cells in the top-2 decoding (OpenVINO's TopK
    orders ties otherwise; the second cell then lies on the other side of
    the first, a shift of 0.25 * 2 = 0.5 px with the same score)."""
    pytest.importorskip('openvino', reason='openvino is not installed '
                        "(optional: pip install -e '.[openvino]')")
    if os.environ.get('DNNL_MAX_CPU_ISA'):
        pytest.skip('OpenVINO refuses a capped oneDNN ISA (DNNL_MAX_CPU_ISA '
                    'of the CPU-variant runs)')
    from logocap_runtime import PoseGraph
    _, path = exported
    rng = np.random.default_rng(4)
    coarse = rng.uniform(0, 255, (2, 3, 17, 21)).astype(np.float32)
    x = np.kron(coarse, np.ones((1, 1, 16, 16), np.float32))[..., :256, :320]
    ort_out = PoseGraph(path, threads=1)(x)
    ov_out = PoseGraph(path, threads=1, runtime='openvino')(x)
    np.testing.assert_array_equal(ov_out['num_people'],
                                  ort_out['num_people'])
    assert ort_out['num_people'].sum() >= 4
    for b, n in enumerate(ort_out['num_people']):
        np.testing.assert_allclose(ov_out['keypoint_scores'][b, :n],
                                   ort_out['keypoint_scores'][b, :n],
                                   rtol=0, atol=SCORE_TOL)
        shift = np.abs(ov_out['keypoints'][b, :n] -
                       ort_out['keypoints'][b, :n]).max(-1)
        tie = np.abs(shift - 0.5) <= POSE_TOL_PX
        assert ((shift <= POSE_TOL_PX) | tie).all(), shift.max()
    with pytest.raises(ValueError, match='runtime must be one of'):
        PoseGraph(path, runtime='tensorrt')
