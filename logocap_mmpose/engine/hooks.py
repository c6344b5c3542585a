"""Two training hooks the LOGO-CAP configs add (``custom_hooks``).

- :class:`OKSGateMonitorHook`: says in the log when no proposal has passed
  the OKS gate for a while, and why the refinement losses are then zero.
  The message passing (CMP) learns only from proposals whose best OKS with
  a person reaches ``model.train_cfg.oks_threshold``; until the initial poses
  (centre + offsets) get there, ``loss_kam`` and ``loss_refine`` are zeros
  and ``oks_gate_ratio`` is 0, which looks like a bug unless the log says so.
- :class:`EpochSeedHook`: seeds Python's, NumPy's and torch's generators
  from the run's seed and the epoch before every training epoch, so that a
  run resumed from a checkpoint (``--resume``) draws the same augmentation
  as the uninterrupted run. MMEngine restores weights, optimizer, schedulers
  and the sampler's epoch, but not the generators' state; without this hook
  a resumed run's augmentation (drawn in the main process with
  ``num_workers=0``) differs from the uninterrupted one from the first
  resumed epoch on.
"""
from typing import Optional

from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.runner import set_random_seed

from mmpose.registry import HOOKS


def _train_cfg(runner) -> dict:
    model = getattr(runner.model, 'module', runner.model)  # DDP wrapper
    return dict(getattr(model, 'train_cfg', None) or {})


@HOOKS.register_module()
class OKSGateMonitorHook(Hook):
    """Warns once the OKS gate has stayed shut for ``patience`` iterations,
    says when it opens again, and sums the shut iterations at the end.

    Reads the ``oks_gate_ratio`` that ``LOGOCAPHead.loss`` logs; does
    nothing for a model that does not log it.

    Args:
        patience (int): consecutive training iterations with no gated
            proposal before the warning. Default: 50.
    """

    priority = 'LOW'  # after the runtime info hook has stored the scalars

    def __init__(self, patience: int = 50) -> None:
        if patience < 1:
            raise ValueError(f'patience must be >= 1, got {patience}')
        self.patience = patience
        self.shut_since: Optional[int] = None
        self.shut_total = 0
        self.iterations = 0
        self.warned = False

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs: Optional[dict] = None) -> None:
        if not outputs or 'oks_gate_ratio' not in outputs:
            return
        self.iterations += 1
        iteration = runner.iter + 1  # runner.iter counts from 0
        if float(outputs['oks_gate_ratio']) > 0:
            if self.warned:
                runner.logger.info(
                    f'OKS gate open again at iteration {iteration} after '
                    f'{iteration - self.shut_since} iterations with no gated '
                    'proposal; the refinement losses train the CMP again')
            self.shut_since, self.warned = None, False
            return
        self.shut_total += 1
        if self.shut_since is None:
            self.shut_since = iteration
        shut = iteration - self.shut_since + 1
        if shut >= self.patience and not self.warned:
            self.warned = True
            threshold = _train_cfg(runner).get('oks_threshold', 0.5)
            runner.logger.warning(
                f'no proposal passed the OKS gate in {shut} iterations '
                f'(since iteration {self.shut_since}): no initial pose '
                f'reached OKS {threshold} (model.train_cfg.oks_threshold) '
                'with a labelled person, so loss_kam and loss_refine are 0 '
                'and the message passing does not learn. Expected early in '
                'a run from scratch, until the centre and offset branches '
                'give poses near the persons; if it lasts, check that the '
                'training persons have keypoints (not only crowd regions), '
                'lower oks_threshold, or set '
                'model.train_cfg.inject_gt_proposals=True')

    def after_train(self, runner) -> None:
        if self.iterations:
            runner.logger.info(
                f'OKS gate: {self.shut_total} of {self.iterations} training '
                'iterations had no gated proposal (zero refinement losses)')


@HOOKS.register_module()
class EpochSeedHook(Hook):
    """Seeds the generators with ``seed + epoch`` before every epoch.

    ``seed`` is the run's (``randomness.seed``; MMEngine draws one when the
    config sets none and stores it in the checkpoints). With
    ``randomness.diff_rank_seed`` each process adds its rank, as MMEngine
    does. Augmentation drawn in persistent data workers keeps its own
    generator state (seeded once per worker), which a resume does not
    restore: an exact resume needs ``num_workers=0`` or non-persistent
    workers.
    """

    priority = 'VERY_HIGH'

    def before_train_epoch(self, runner) -> None:
        seed = runner.seed + 1_000_003 * (runner.epoch + 1)
        if runner.cfg.get('randomness', {}).get('diff_rank_seed', False):
            seed += get_rank()
        set_random_seed(seed % 2**31)
