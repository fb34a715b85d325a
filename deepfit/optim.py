"""Optimizers the domains share beyond ``torch.optim``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

__all__ = ["SparseAdamW"]


class SparseAdamW(torch.optim.AdamW):
    """AdamW that also takes sparse gradients, updating only the rows they touch.

    Dense gradients go through ``torch.optim.AdamW`` unchanged. A parameter whose gradient
    is sparse (an ``nn.Embedding(sparse=True)`` weight) gets a *lazy* Adam step, as in
    ``torch.optim.SparseAdam`` and TensorFlow's LazyAdam: the rows present in the batch
    have their moments and weights updated; the others, moments included, are left
    alone. With a 100,000-row embedding and batches that touch a thousand rows, that is
    a hundredth of the memory traffic of a dense step.

    Because it is one optimizer whose param groups are the learner's layer groups (each
    dict keeps its ``"layer_group"`` key), schedules, discriminative rates, ``freeze``,
    ``state_dict``/``load_state_dict`` and the learning-rate finder work as with AdamW.

    Weight decay on sparse rows is decoupled (as in AdamW) and lazy: a row is shrunk by
    ``lr * weight_decay`` at each step where it appears in the batch, not at every step.
    A frequent category is therefore regularised as often as it is trained, and a rare
    one seldom, rather than every row decaying towards zero at every step whether the
    data speak for it or not (what dense AdamW does to an embedding table). The bias
    correction uses the parameter's own step count, as ``SparseAdam`` does.

    Parameters are those of ``torch.optim.AdamW``; ``amsgrad`` is not supported with sparse
    gradients.

    Example
    -------
    >>> emb = torch.nn.Embedding(1000, 8, sparse=True)
    >>> opt = SparseAdamW(emb.parameters(), lr=1e-2)
    >>> emb(torch.tensor([1, 2])).sum().backward()
    >>> opt.step()
    """

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        sparse = []
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None and p.grad.is_sparse:
                    sparse.append((group, p, p.grad))
                    p.grad = None  # hide it from the dense step
        try:
            super().step()
        finally:
            for _, p, grad in sparse:
                p.grad = grad
        for group, p, grad in sparse:
            self._lazy_step(group, p, grad)
        return loss

    def _lazy_step(
        self, group: dict[str, Any], p: torch.Tensor, grad: torch.Tensor
    ) -> None:
        if group["amsgrad"]:
            raise RuntimeError(
                "SparseAdamW does not support amsgrad with sparse gradients"
            )
        state = self.state[p]
        if not state:
            state["step"] = torch.tensor(0.0)
            state["exp_avg"] = torch.zeros_like(p)
            state["exp_avg_sq"] = torch.zeros_like(p)
        state["step"] += 1
        step = float(state["step"])
        beta1, beta2 = (float(b) for b in group["betas"])
        lr, eps, wd = float(group["lr"]), group["eps"], group["weight_decay"]
        grad = grad.coalesce()  # sums the rows a batch hits more than once
        idx, g = grad.indices()[0], grad.values()
        if group["maximize"]:
            g = -g
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        m = exp_avg.index_select(0, idx).mul_(beta1).add_(g, alpha=1 - beta1)
        v = exp_avg_sq.index_select(0, idx).mul_(beta2).addcmul_(g, g, value=1 - beta2)
        exp_avg.index_copy_(0, idx, m)
        exp_avg_sq.index_copy_(0, idx, v)
        bias1, bias2 = 1 - beta1**step, 1 - beta2**step
        denom = v.div_(bias2).sqrt_().add_(eps)
        rows = p.index_select(0, idx)
        if wd:
            rows.mul_(1 - lr * wd)
        rows.addcdiv_(m, denom, value=-lr / bias1)
        p.index_copy_(0, idx, rows)
