"""model-index.yml / configs/logocap/coco/logocap_coco.yml: MMPose's
metafile format, read by mim's own loader; the results are the paper's."""
import os.path as osp
import re

import pytest
from mmengine.config import Config

from tests.conftest import REPO

PAPER = osp.join(osp.dirname(REPO), 'shared', 'docs', 'paper-logocap.txt')


def models():
    from mim.commands.search import load_metadata_from_local
    return load_metadata_from_local('logocap_mmpose').models


def test_every_entry_names_a_config_of_this_package():
    entries = models()
    assert len(entries) == 4
    for model in entries:
        path = osp.join(REPO, model.config)
        assert osp.isfile(path), model.config
        assert model.name == osp.splitext(osp.basename(path))[0]
        cfg = Config.fromfile(path)
        assert cfg.model.head.type == 'LOGOCAPHead'
        assert model.in_collection == 'LOGO-CAP'
        assert model.metadata.data['Results Source'].startswith('paper')
        assert model.weights is None  # the release needs a conversion


def paper_rows():
    """Table 1 of the paper, COCO val2017 columns of the LOGO-CAP rows."""
    if not osp.exists(PAPER):
        pytest.skip(f'needs {PAPER} (the shared docs beside the repository)')
    with open(PAPER) as f:
        lines = f.read().splitlines()
    start = next(i for i, ln in enumerate(lines)
                 if ln.strip().startswith('LOGO-CAP (Ours)'))
    rows = {}
    for line, arch in zip(lines[start:start + 2], ('w32', 'w48')):
        numbers = [float(x) for x in re.findall(r'\d+\.\d', line)]
        rows[arch] = numbers[:5]  # AP AP50 AP75 APM APL on val2017
    return rows


def test_results_are_the_papers():
    rows = paper_rows()
    for model in models():
        arch = 'w32' if 'w32' in model.name else 'w48'
        metrics = model.results[0].metrics
        got = [metrics[k] for k in ('AP', 'AP@0.5', 'AP@0.75', 'AP (M)',
                                    'AP (L)')]
        assert got == pytest.approx([v / 100 for v in rows[arch]]), \
            model.name
