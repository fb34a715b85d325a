"""Optimizers the domains share beyond ``torch.optim``."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

__all__ = ["SparseAdamW", "adamw_decays"]


class SparseAdamW(torch.optim.AdamW):
    """AdamW that also takes sparse gradients, updating only the rows they touch.

    Dense gradients go through ``torch.optim.AdamW`` unchanged. A parameter whose gradient
    is sparse (an ``nn.Embedding(sparse=True)`` weight) gets a row-wise step: only the rows
    present in the batch are read and written, moments included. With a 100,000-row
    embedding and batches that touch a thousand rows, that is a hundredth of the memory
    traffic of a dense step.

    A purely lazy step (``torch.optim.SparseAdam``, TensorFlow's LazyAdam) is not the same
    optimizer as dense AdamW: while a row is absent, dense AdamW keeps moving it along its
    decaying first moment (a row seen once moves about ten times further in all than the
    lazy step moves it, with beta1 = 0.9) and keeps decaying it. Rare categories are
    therefore under-trained by the lazy step (``benchmarks/tabular_throughput.py``
    measures the difference in held-out loss). With
    ``catch_up=True`` (the default) a row that reappears after ``s`` absent steps first
    receives, in closed form, what dense AdamW would have done to it meanwhile: the
    decoupled decay ``(1 - lr * wd)`` and the move ``lr * beta1^k m / sqrt(beta2^k v)``
    of each absent step k = 1..s (a geometric sum), and the decay of its moments by
    ``beta1^s`` and ``beta2^s``; then the usual step. The catch-up takes the current rate,
    betas and bias correction as constant over the gap (exact for a constant schedule
    once the bias correction has settled), and costs one extra elementwise pass over the
    touched rows. ``catch_up=False`` gives the lazy step.

    Because it is one optimizer whose param groups are the learner's layer groups (each
    dict keeps its ``"layer_group"`` key), schedules, discriminative rates, ``freeze``,
    ``state_dict``/``load_state_dict`` and the learning-rate finder work as with AdamW.

    Parameters are those of ``torch.optim.AdamW``, plus ``catch_up``; ``amsgrad`` is not
    supported with sparse gradients.

    Example
    -------
    >>> emb = torch.nn.Embedding(1000, 8, sparse=True)
    >>> opt = SparseAdamW(emb.parameters(), lr=1e-2)
    >>> emb(torch.tensor([1, 2])).sum().backward()
    >>> opt.step()
    """

    def __init__(
        self, params: Any, *args: Any, catch_up: bool = True, **kw: Any
    ) -> None:
        super().__init__(params, *args, **kw)
        self.defaults["catch_up"] = catch_up
        for group in self.param_groups:
            group.setdefault("catch_up", catch_up)

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
            self._sparse_step(group, p, grad)
        return loss

    def _sparse_step(
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
        if "last_step" not in state:  # the step at which each row was last updated
            state["last_step"] = torch.full(
                (p.shape[0],), float(state["step"]), dtype=torch.float64
            )
        state["step"] += 1
        step = float(state["step"])
        beta1, beta2 = (float(b) for b in group["betas"])
        lr, eps, wd = float(group["lr"]), group["eps"], group["weight_decay"]
        bias1, bias2 = 1 - beta1**step, 1 - beta2**step
        grad = grad.coalesce()  # sums the rows a batch hits more than once
        idx, g = grad.indices()[0], grad.values()
        if group["maximize"]:
            g = -g
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        m = exp_avg.index_select(0, idx)
        v = exp_avg_sq.index_select(0, idx)
        rows = p.index_select(0, idx)
        last = state["last_step"]
        if group.get("catch_up", True):
            gap = (step - 1 - last.index_select(0, idx)).to(p.dtype).unsqueeze(1)
            # Absent step k of s shrinks the row by (1 - lr * wd) and moves it by u_k =
            # lr * r^k * m / sqrt(v) (bias-corrected), r = beta1 / sqrt(beta2); after s
            # steps: row * keep^s - sum_k u_k * keep^(s - k), a geometric sum in q.
            keep = 1 - lr * wd
            r = beta1 / math.sqrt(beta2)
            q = r / keep
            shrink = torch.pow(keep, gap)
            if abs(1 - q) < 1e-12:
                moves = shrink * gap
            else:
                moves = shrink * (q * (1 - torch.pow(q, gap)) / (1 - q))
            denom = v.div(bias2).sqrt_().add_(eps)
            rows.mul_(shrink).addcdiv_(m * moves, denom, value=-lr / bias1)
            m.mul_(torch.pow(beta1, gap))
            v.mul_(torch.pow(beta2, gap))
        last.index_fill_(0, idx, step)
        m.mul_(beta1).add_(g, alpha=1 - beta1)
        v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
        exp_avg.index_copy_(0, idx, m)
        exp_avg_sq.index_copy_(0, idx, v)
        if wd:
            rows.mul_(1 - lr * wd)
        denom = v.div(bias2).sqrt_().add_(eps)
        rows.addcdiv_(m, denom, value=-lr / bias1)
        p.index_copy_(0, idx, rows)


def adamw_decays(
    groups: list[dict[str, Any]], decays: dict[int, float], default: float
) -> torch.optim.Optimizer:
    """AdamW with each of the learner's layer groups split by weight decay: a parameter
    listed in ``decays`` (by ``id``) gets its own, the others ``default``; every part
    keeps its ``layer_group`` so the learner still sets its rate."""
    out = []
    for g in groups:
        by_decay: dict[float, list[torch.nn.Parameter]] = {}
        for p in g["params"]:
            by_decay.setdefault(decays.get(id(p), default), []).append(p)
        out += [{**g, "params": ps, "weight_decay": wd} for wd, ps in by_decay.items()]
    # The fused kernel updates every parameter in one pass: 3x faster than the default
    # (foreach) step on CPU, and the optimizer is a large share of a collab step.
    device = out[0]["params"][0].device.type if out else "cpu"
    fused = True if device in ("cpu", "cuda") else None
    return torch.optim.AdamW(out, betas=(0.9, 0.99), fused=fused)
