"""The three conv branches against the authors' code (``case_network.pth``
of ``../shared/data/logocap-parity``): the head weights converted from
``authors_head_w32.pth`` by the checkpoint converter, the fixture's random
features in, heatmaps / offsets / embedding out (tolerance 1e-4: 1.3e-6
measured; a wrong conversion of a weight moves them by far more)."""
import pytest
import torch

from logocap_mmpose.utils.official_checkpoint import convert_state_dict
from mmpose.registry import MODELS

from tests.conftest import COCO_SIGMAS, require_shared

pytestmark = pytest.mark.float_bound


def converted_head(weights, input_size: int = 512, **kwargs):
    """A W32 LOGOCAPHead loaded (strictly) with the converted authors'
    head weights."""
    head = MODELS.build(
        dict(type='LOGOCAPHead', in_channels=480, keypoint_sigmas=COCO_SIGMAS,
             decoder=dict(type='LOGOCAPLabel',
                          input_size=(input_size, input_size),
                          heatmap_size=(input_size // 4, input_size // 4)),
             **kwargs))
    state = {
        key[len('head.'):]: value
        for key, value in convert_state_dict(weights).items()
    }
    head.load_state_dict(state, strict=True)
    return head.eval()


@pytest.mark.parametrize('memory_format',
                         [torch.contiguous_format, torch.channels_last])
def test_conv_branches_equal_the_authors(memory_format):
    """Also with weights and features channels-last
    (``test_cfg.channels_last``)."""
    root = require_shared('logocap-parity')
    case = torch.load(f'{root}/case_network.pth')
    head = converted_head(torch.load(f'{root}/authors_head_w32.pth'))
    head.to(memory_format=memory_format)
    features = case['features'].contiguous(memory_format=memory_format)
    with torch.no_grad():
        heatmaps, displacements, embedding = head.forward([features])
    tol = dict(atol=1e-4, rtol=0)
    torch.testing.assert_close(heatmaps, case['heatmaps'], **tol)
    # converted weights give displacements = minus the authors' offsets
    torch.testing.assert_close(displacements, -case['offsets'], **tol)
    torch.testing.assert_close(embedding, case['embedding'], **tol)
