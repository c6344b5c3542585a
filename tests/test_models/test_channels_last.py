"""``test_cfg.channels_last``: the estimator puts its weights in the
channels-last memory format once, for a model that only predicts, converts
the inputs per batch, and gives the contiguous model's poses within the
ONNX / fusion tolerances; turning it off, or training, restores the
contiguous format. (Speed: ``tools/benchmark_inference.py``, whose speed
change table adds it as a row.)"""
import copy

import pytest
import torch

from tests.test_deploy.conftest import seeded_cpu_model
from tests.test_deploy.test_onnx_export import (MAX_TIE_SHARE, POSE_TOL_PX,
                                                SCORE_TOL, assert_same_poses,
                                                synthetic_batch)

pytestmark = pytest.mark.float_bound


def conv_weights_format(model):
    """{True}: every conv weight of the backbone and head is channels-last
    (only); {False}: every one is contiguous (weights with one input
    channel or a 1x1 kernel are both, and left out)."""
    weights = [w for w in model.state_dict().values()
               if w.dim() == 4 and w.shape[1] > 1 and w.shape[-1] > 1]
    assert len(weights) >= 3  # the stem and the message passing convs
    return {w.is_contiguous(memory_format=torch.channels_last)
            and not w.is_contiguous() for w in weights}


@pytest.fixture(scope='module')
def models():
    torch.manual_seed(0)
    model = seeded_cpu_model()
    return model, copy.deepcopy(model)


def test_channels_last_gives_the_same_poses(models):
    plain, fast = models
    plain.test_cfg['channels_last'] = False
    fast.test_cfg['channels_last'] = True
    shapes = [(256, 320), (320, 256)]
    with torch.no_grad():
        expected = plain.test_step(synthetic_batch(plain, shapes, seed=5))
        got = fast.test_step(synthetic_batch(fast, shapes, seed=5))
    assert conv_weights_format(fast) == {True}
    assert conv_weights_format(plain) == {False}
    assert sum(len(s.pred_instances.keypoints) for s in expected) >= 4
    assert_same_poses(got, expected, POSE_TOL_PX, SCORE_TOL, MAX_TIE_SHARE)


def test_the_format_follows_the_setting_and_training(models):
    _, fast = models
    fast.test_cfg['channels_last'] = True
    data = synthetic_batch(fast, [(256, 256)], seed=1)
    with torch.no_grad():
        fast.test_step(copy.deepcopy(data))
    assert conv_weights_format(fast) == {True}
    fast.test_cfg['channels_last'] = False
    with torch.no_grad():
        fast.test_step(copy.deepcopy(data))
    assert conv_weights_format(fast) == {False}


def test_a_model_that_trains_stays_contiguous():
    model = seeded_cpu_model()
    model.test_cfg.update(channels_last=True, fuse_conv_bn=False)
    model.train()
    model.eval()  # e.g. validation during training
    with torch.no_grad():
        model.test_step(synthetic_batch(model, [(256, 256)], seed=1))
    assert conv_weights_format(model) == {False}
