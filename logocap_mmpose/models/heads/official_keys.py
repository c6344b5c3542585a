"""Names of the authors' LOGO-CAP parameters in this package.

Every learned layer of the authors' model maps one-to-one, with the same
shape, onto :class:`LOGOCAPHead` (prefix ``head.`` inside a
``BottomupPoseEstimator``); the authors' HRNet (HigherHRNet / DEKR flavour)
names its layers exactly as MMPose's ``HRNet`` does, so ``backbone.*`` keys
keep their names. One value conversion is needed, recorded in
:data:`VALUE_NOTES`: the authors' offsets are ``centre - keypoint``, ours
are ``keypoint - cell`` (MMPose's convention), so ``final_layer_reg`` is
negated.

The authors' sampling conventions are not a weight matter: their code reads
the embedding at ``p / 4`` and decodes centres and keypoint windows on the
4x upsampled heatmaps. The head's ``sampling='authors'`` and the codec's
``decode_on_input=True`` reproduce that (the ``*_official_*`` configs);
``utils/official_checkpoint.py`` converts whole checkpoints.
"""
import re
from typing import Optional

# (authors' prefix, our prefix); first match wins
PREFIXES = (
    ('transition_cls.', 'heatmap_layers.'),
    ('final_layer_cls.', 'heatmap_layers.3.'),
    ('transition_reg.', 'offset_layers.'),
    ('final_layer_reg.', 'offset_layers.3.'),
    ('transition_embedding.', 'embedding_layers.'),
)
# Attentive Norm inside joints_mlp.<i>
ATTENTIVE_NORM = (
    (r'weight_$', 'weight'),
    (r'bias_$', 'bias'),
    (r'attn_weights\.attention\.0\.weight$', 'attention.weight'),
    (r'(running_mean|running_var|num_batches_tracked)$', r'norm.\1'),
)
VALUE_NOTES = {'offset_layers.3.': 'negate (offset sign convention)'}


def official_head_key(key: str) -> Optional[str]:
    """Our head parameter name for one authors' key, None for the backbone.

    Args:
        key (str): e.g. ``'joints_mlp.4.weight_'``.

    Returns:
        str | None: e.g. ``'cmp.layers.4.weight'``.
    """
    if key.startswith('backbone.'):
        return None
    for theirs, ours in PREFIXES:
        if key.startswith(theirs):
            return ours + key[len(theirs):]
    match = re.match(r'joints_mlp\.(\d+)\.(.+)$', key)
    if match is None:
        raise KeyError(f'unknown LOGO-CAP parameter {key!r}')
    index, rest = match.groups()
    for pattern, replacement in ATTENTIVE_NORM:
        if re.search(pattern, rest) and index == '4':
            return f'cmp.layers.{index}.' + re.sub(pattern, replacement,
                                                    rest)
    return f'cmp.layers.{index}.{rest}'


def official_model_key(key: str) -> str:
    """Our ``BottomupPoseEstimator`` key for one key of the authors' model.

    Args:
        key (str): e.g. ``'backbone.stage4.0.fuse_layers.0.1.0.weight'`` or
            ``'final_layer_reg.bias'``.

    Returns:
        str: the same name for ``backbone.*`` keys, ``'head.'`` plus
        :func:`official_head_key` otherwise.
    """
    if key.startswith('backbone.'):
        return key
    return 'head.' + official_head_key(key)
