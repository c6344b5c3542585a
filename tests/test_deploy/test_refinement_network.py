"""The exportable forms of the refinement stages
(``logocap_mmpose.deploy.refinement_export``) in PyTorch, no onnxruntime
needed: the matmul form of the contextual adaptation equals the head's FFT
and grouped-conv implementations, and :class:`RefinementNetwork` equals
``head.refine`` in every test mode."""
import warnings

import pytest
import torch

from logocap_mmpose.deploy import RefinementNetwork, adaptation_by_matmul
from logocap_mmpose.models.adaptation import contextual_adaptation

pytestmark = pytest.mark.float_bound

# float32 rounding of a sum of S*S = 121 products (and of the FFT's sums
# over the window), relative to the range; a missed kernel flip moves the
# maps by a large share of it
ADAPT_RTOL = 2e-5


@pytest.mark.parametrize('a,S', [(49, 11), (97, 11), (9, 5)])
def test_fft_conv_and_matmul_adaptation_agree(a, S):
    gen = torch.Generator().manual_seed(a)
    windows = torch.rand(3, 4, a, a, generator=gen)
    kams = torch.rand(3, 4, S, S, generator=gen)
    kams[..., 0, :] = 0  # asymmetric kernels: a missed flip shows
    conv = contextual_adaptation(windows, kams, 'conv')
    fft = contextual_adaptation(windows, kams, 'fft')
    matmul = adaptation_by_matmul(windows, kams)
    scale = conv.abs().max()
    assert scale > 0
    for other in (fft, matmul):
        assert other.shape == conv.shape
        torch.testing.assert_close(other, conv, rtol=0,
                                   atol=ADAPT_RTOL * scale)


def test_adaptation_moves_mass_with_the_kam():
    """A KAM with all its mass at offset (+2, -1) moves a peak by (+2, -1),
    as the head's true convolution does."""
    a, S = 15, 5
    windows = torch.zeros(1, 1, a, a)
    windows[0, 0, 7, 7] = 1.0
    kams = torch.zeros(1, 1, S, S)
    kams[0, 0, 2 - 1, 2 + 2] = 1.0  # row: y offset -1, column: x offset +2
    out = adaptation_by_matmul(windows, kams)
    torch.testing.assert_close(out, contextual_adaptation(windows, kams,
                                                          'conv'))
    y, x = divmod(int(out.flatten().argmax()), a)
    assert (x - 7, y - 7) == (2, -1)


def random_inputs(model, n, shape=(64, 64), batch=2, seed=0):
    head = model.head
    K = head.num_keypoints
    gen = torch.Generator().manual_seed(seed)
    C = head.embedding_channels
    h, w = shape
    heatmaps = torch.rand(batch, K + 1, h, w, generator=gen)
    embedding = torch.randn(batch, C, h, w, generator=gen)
    # keypoints inside and a little outside the image
    size = torch.tensor([w, h]) * head.stride
    initial = torch.rand(batch, n, K, 2, generator=gen) * size * 1.1 - 4
    return heatmaps, embedding, initial


@pytest.mark.parametrize('mode',
                         ['full', 'baseline', 'kems_only', 'kams_only'])
def test_refinement_network_is_head_refine(seeded_model, mode):
    head = seeded_model.head
    K = head.num_keypoints
    net = RefinementNetwork(head, mode).eval()
    for n, shape in ((3, (64, 64)), (7, (48, 40))):
        heatmaps, embedding, initial = random_inputs(seeded_model, n, shape)
        with torch.no_grad():
            expected = head.refine(mode, heatmaps[:, :K], embedding, initial)
            got = net(heatmaps, embedding, initial)
        for g, e in zip(got, expected):
            assert g.shape == e.shape
        # the adaptation sums in another order: float rounding only
        torch.testing.assert_close(got[1], expected[1], rtol=0, atol=1e-5)
        far = (got[0] - expected[0]).abs().amax(-1) > 1e-3
        assert far.float().mean() <= 0.02, far.sum()


@pytest.mark.parametrize('mode', ['full', 'kams_only'])
def test_authors_sampling_traces_with_free_map_sizes(seeded_model, mode):
    """The authors' sampler (official configs) in the exportable module:
    one trace serves two map sizes, each equal to ``head.refine``."""
    head = seeded_model.head
    K = head.num_keypoints
    head.sampling = 'authors'
    try:
        net = RefinementNetwork(head, mode).eval()
        inputs = random_inputs(seeded_model, 3, (64, 64))
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter('ignore', torch.jit.TracerWarning)
            traced = torch.jit.trace(net, inputs)
        for n, shape in ((3, (64, 64)), (5, (48, 40))):
            heatmaps, embedding, initial = random_inputs(
                seeded_model, n, shape, seed=2)
            with torch.no_grad():
                expected = head.refine(mode, heatmaps[:, :K], embedding,
                                       initial)
                got = traced(heatmaps, embedding, initial)
            torch.testing.assert_close(got[1], expected[1], rtol=0,
                                       atol=1e-5)
            far = (got[0] - expected[0]).abs().amax(-1) > 1e-3
            assert far.float().mean() <= 0.02, far.sum()
    finally:
        head.sampling = 'centred'
    with pytest.raises(ValueError, match='mode'):
        RefinementNetwork(head, 'unknown')
