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
EXPORT_DECISIONS = {
    # the runner flips the input and fuses the maps with the head's
    # flip_fuse; image and flip run through the graph as one batch, so
    # flip_in_one_pass changes PyTorch's poses by float rounding only.
    # The graph holds the network as exported: folding BatchNorm and the
    # memory format are float rounding. multiscale_size_divisor has no
    # effect at one scale. The refinement graph is exported in the config's
    # mode (a graph of another mode is refused). Decoding, centre scores and
    # pose NMS are head.predict_from_maps.
    **dict.fromkeys(
        ('flip_test', 'flip_in_one_pass', 'fuse_conv_bn', 'channels_last',
         'multiscale_size_divisor', 'mode', 'max_proposals',
         'nms_before_refine', 'output_heatmaps', 'nms_dist_thr',
         'nms_joints_thr', 'max_num_people', 'nms_order'), HONOURED),
    # a dense graph has one input size: one scale only; the refinement
    # graph returns no KAMs and no quality (the PyTorch refinement behind an
    # ONNX dense graph honours kam_score and pose_score)
    **dict.fromkeys(
        ('scales', 'multiscale_test', 'kam_score', 'pose_score'), REFUSED),
}


def check_test_cfg(test_cfg: dict, refinement=None) -> None:
    """Refuse the test settings the deployed model cannot honour.

    Args:
        test_cfg (dict): ``model.test_cfg``.
        refinement (ONNXRefinement, optional): the exported refinement
            graph (anything with a ``mode``), or None when the refinement
            runs in PyTorch.

    Raises:
        ValueError: more than one scale (``scales``, ``multiscale_test``);
            with ``refinement``: a graph of another ``mode``, a
            ``kam_score`` or a ``pose_score`` other than 'heatmap'.
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
    if test_cfg.get('pose_score', 'heatmap') != 'heatmap':
        raise ValueError(
            f"test_cfg.pose_score={test_cfg['pose_score']!r} scores poses "
            "by the head's quality head, which the exported refinement "
            "graph does not run: set pose_score='heatmap', or refine in "
            'PyTorch (no ONNX refinement)')
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
    # graph. The refinement returns its KAMs inside the graph, and the
    # quality head runs there too: honoured
    kam_score=HONOURED,
    pose_score=HONOURED,
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
