"""What the ONNX deployment does with each ``model.test_cfg`` key.

A key that changes PyTorch's poses is never silently ignored by the
deployed model: each key of the package's one list of test settings
(``models/heads/head_config.py``, ``TEST_CFG``) has a decision here, and
``tests/test_deploy/test_export_settings.py`` checks every one of them (a
new key without a decision fails that test):

- :data:`HONOURED`: the deployed model (:func:`~.onnx_export.onnx_inference`
  with the dense graph, and the refinement graph if given) gives PyTorch's
  poses for every value, within the ONNX tolerances. Decoding,
  ``nms_before_refine``, the centre scores and the pose NMS are the head's
  own code (``head.predict_from_maps``); the flip is fused by the head's
  function; the refinement graph is a trace of PyTorch's refinement in the
  config's ``mode``.
- :data:`REFUSED`: a value that would change PyTorch's poses stops
  :func:`check_test_cfg` with a ``ValueError`` that names the key and the
  fix.

The whole model as one graph (``one_graph.py``) has its own decisions,
:data:`ONE_GRAPH_DECISIONS`, checked by :func:`check_one_graph_cfg` at
export and, against the settings fixed in the graph, when it runs.
"""
from typing import Optional

from ..models.heads.head_config import TEST_CFG
from ..models.inference import check_scales
from ..models.pose_nms import check_nms_order

HONOURED = 'honoured'
REFUSED = 'refused'

#: decision per ``TEST_CFG`` key, and why
EXPORT_DECISIONS = dict(
    # the runner flips the input and fuses the maps with the head's
    # flip_fuse; image and flip run through the graph as one batch, so
    # flip_in_one_pass changes PyTorch's poses by float rounding only
    flip_test=HONOURED,
    flip_in_one_pass=HONOURED,
    # the graph holds the network as exported; folding and the memory
    # format are float rounding
    fuse_conv_bn=HONOURED,
    channels_last=HONOURED,
    # a dense graph has one input size: one scale only
    scales=REFUSED,
    multiscale_test=REFUSED,
    multiscale_size_divisor=HONOURED,  # no effect at one scale
    # the refinement graph is exported in the config's mode; a graph of
    # another mode is refused
    mode=HONOURED,
    # decoding, centre scores and pose NMS: head.predict_from_maps
    max_proposals=HONOURED,
    nms_before_refine=HONOURED,
    output_heatmaps=HONOURED,
    nms_dist_thr=HONOURED,
    nms_joints_thr=HONOURED,
    max_num_people=HONOURED,
    nms_order=HONOURED,
    # the refinement graph returns no KAMs (the PyTorch refinement behind
    # an ONNX dense graph honours it)
    kam_score=REFUSED,
)


def check_test_cfg(test_cfg: dict, refinement=None) -> None:
    """Refuse the test settings the deployed model cannot honour.

    Args:
        test_cfg (dict): ``model.test_cfg``.
        refinement (ONNXRefinement, optional): the exported refinement
            graph (anything with a ``mode``), or None when the refinement
            runs in PyTorch.

    Raises:
        ValueError: more than one scale (``scales``, ``multiscale_test``);
            with ``refinement``: a graph of another ``mode``, or a
            ``kam_score``.
    """
    scales = check_scales(test_cfg.get('scales'))
    if scales != [1.0]:
        raise ValueError(
            f'test_cfg.scales={scales}: the ONNX model runs one scale (a '
            'dense graph has one fixed input size); set test_cfg.scales='
            'None, or test in PyTorch')
    if test_cfg.get('multiscale_test', False):
        raise ValueError(
            "test_cfg.multiscale_test=True (MMPose's multi-scale test): "
            'the ONNX model runs one scale; set it to False, or test in '
            'PyTorch')
    if refinement is None:
        return
    mode = test_cfg.get('mode', TEST_CFG['mode'])
    if mode != refinement.mode:
        raise ValueError(f'test_cfg.mode is {mode!r} but the refinement '
                         f'graph computes {refinement.mode!r}: export it '
                         f'with that mode')
    if test_cfg.get('kam_score') is not None:
        raise ValueError(
            f"test_cfg.kam_score={test_cfg['kam_score']!r} scores poses by "
            f'their KAMs, which the exported refinement graph does not '
            f'return: set kam_score=None, or refine in PyTorch (no ONNX '
            f'refinement)')



#: decision per ``TEST_CFG`` key for the whole model as one graph
#: (``one_graph.py``): the settings that shape the poses are fixed in the
#: graph at export (its metadata) and must equal the model's ``test_cfg``
#: when it runs
ONE_GRAPH_DECISIONS = dict(
    EXPORT_DECISIONS,
    # flip: inside the graph, image and flip as one batch
    # (flip_in_one_pass=False changes PyTorch's poses by float rounding);
    # decoding, nms_before_refine and the pose NMS are tensor code in the
    # graph. The refinement returns its KAMs inside the graph: honoured
    kam_score=HONOURED,
    # the graph returns poses only, no maps
    output_heatmaps=REFUSED,
)


def check_one_graph_cfg(test_cfg: dict,
                        settings: Optional[dict] = None) -> None:
    """Refuse the test settings the one graph cannot honour.

    Args:
        test_cfg (dict): ``model.test_cfg``.
        settings (dict, optional): the settings fixed in an exported graph
            (``one_graph.graph_settings``); each must equal ``test_cfg``'s.

    Raises:
        ValueError: more than one scale (``scales``, ``multiscale_test``),
            ``output_heatmaps``, an unknown ``nms_order``, or a setting
            that differs from the graph's.
    """
    check_test_cfg(test_cfg)
    if test_cfg.get('output_heatmaps', False):
        raise ValueError(
            'test_cfg.output_heatmaps=True: the one graph returns poses, '
            'not the fused maps; set it to False, or use the dense graph '
            '(onnx_inference)')
    check_nms_order(test_cfg.get('nms_order', TEST_CFG['nms_order']))
    if settings is None:
        return
    for key, fixed in settings.items():
        value = test_cfg.get(key, TEST_CFG[key])
        if isinstance(value, tuple):
            value = list(value)
        if value != fixed:
            raise ValueError(
                f'test_cfg.{key} is {value!r} but the one graph was '
                f'exported with {fixed!r}: export it again with this '
                'test_cfg')
