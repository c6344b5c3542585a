"""What a training step does when a loss is NaN or infinite.

MMEngine's ``BaseModel.train_step`` back-propagates whatever loss it gets:
one NaN loss makes NaN gradients, and Adam turns every weight it touches into
NaN with no message. ``LOGOCAPPoseEstimator`` checks the loss terms of each
training step before the update (one host synchronisation per step, which
MMEngine's logging makes anyway) and follows ``model.train_cfg.nonfinite_loss``:

- ``'raise'`` (default): ``FloatingPointError`` naming the iteration and the
  loss terms that are not finite, before the update: the weights are those
  of the last good step (the BatchNorm statistics have seen the bad batch).
- ``'skip'``: a warning naming them, and the step changes nothing: no
  backward, no optimizer step (Adam's moments untouched), the BatchNorm
  statistics its forward pass moved put back; its losses are not logged. Under MMEngine's DDP wrapper, which calls the model's
  ``parse_losses`` but not its ``train_step``, the step runs with a zero
  gradient instead, on every process alike (Adam's moments still decay).
"""
from typing import Dict, List, Optional

import torch
from mmengine.logging import MessageHub
from torch import Tensor, nn

NONFINITE_POLICIES = ('raise', 'skip')


def check_policy(policy: str) -> str:
    """``policy`` if it is one of :data:`NONFINITE_POLICIES`.

    Raises:
        ValueError: another value.
    """
    if policy not in NONFINITE_POLICIES:
        raise ValueError(f'model.train_cfg.nonfinite_loss={policy!r}; '
                         f'expected one of {NONFINITE_POLICIES}')
    return policy


def nonfinite_loss_keys(log_vars: Dict[str, Tensor]) -> List[str]:
    """The keys holding ``'loss'`` whose value is NaN or infinite.

    Args:
        log_vars (dict): ``parse_losses``'s logged values (scalar tensors).

    Returns:
        list[str]: in ``log_vars`` order; empty when all are finite.
    """
    keys = [k for k, v in log_vars.items()
            if 'loss' in k and isinstance(v, Tensor)]
    if not keys:
        return []
    finite = torch.stack([log_vars[k].detach().float().reshape(())
                          for k in keys]).isfinite().tolist()
    return [k for k, ok in zip(keys, finite) if not ok]


def current_iteration() -> Optional[int]:
    """The runner's 0-based training iteration, or None outside a runner."""
    return MessageHub.get_current_instance().get_info('iter')


def nonfinite_message(keys: List[str], log_vars: Dict[str, Tensor]) -> str:
    """One line naming the iteration and the non-finite loss terms."""
    iteration = current_iteration()
    where = ('training iteration ' + str(iteration + 1)
             if iteration is not None else 'a training step')
    terms = [k for k in keys if k != 'loss'] or keys  # the total follows
    values = ', '.join(f'{k}={float(log_vars[k])}' for k in terms)
    return f'non-finite loss at {where}: {values}'


def zero_gradient_loss(model: nn.Module) -> Tensor:
    """A zero that reaches every trainable parameter with a zero gradient
    (the DDP wrapper's all-reduce then sees every parameter)."""
    params = [p for p in model.parameters() if p.requires_grad]
    return sum(p.sum() for p in params) * 0.0
