from __future__ import annotations

import copy
from functools import partial

import pytest
import torch
from torch import nn

from deepfit import Learner, SparseAdamW, TensorBatches


def _pair(rows=6, width=3, seed=0):
    torch.manual_seed(seed)
    dense = nn.Embedding(rows, width)
    sparse = nn.Embedding(rows, width, sparse=True)
    sparse.weight.data.copy_(dense.weight.data)
    return dense, sparse


@pytest.mark.parametrize("wd", [0.0, 0.1])
def test_sparse_step_matches_adamw_when_every_row_is_touched(wd):
    dense, sparse = _pair()
    kw = dict(lr=0.05, betas=(0.9, 0.99), weight_decay=wd)
    ref = torch.optim.AdamW(dense.parameters(), **kw)
    opt = SparseAdamW(sparse.parameters(), **kw)
    g = torch.Generator().manual_seed(1)
    for _ in range(5):
        # Every row at least once, some twice (the sparse gradient sums duplicates).
        idx = torch.cat([torch.arange(6), torch.randint(0, 6, (4,), generator=g)])
        target = torch.randn(len(idx), 3, generator=g)
        for emb, o in ((dense, ref), (sparse, opt)):
            nn.functional.mse_loss(emb(idx), target).backward()
            o.step()
            o.zero_grad(set_to_none=True)
    torch.testing.assert_close(sparse.weight, dense.weight)


@pytest.mark.parametrize("catch_up", [True, False])
def test_rows_absent_from_the_batch_are_left_alone(catch_up):
    _, sparse = _pair()
    opt = SparseAdamW(sparse.parameters(), lr=0.1, weight_decay=0.5, catch_up=catch_up)
    before = sparse.weight.detach().clone()
    sparse(torch.tensor([1, 3])).sum().backward()
    opt.step()
    changed = (sparse.weight != before).any(dim=1)
    assert changed.tolist() == [False, True, False, True, False, False]
    assert opt.state[sparse.weight]["exp_avg"][[0, 2, 4, 5]].abs().sum() == 0


def _run(emb, opt, schedule, linear=False, seed=1):
    g = torch.Generator().manual_seed(seed)
    for idx in schedule:
        target = torch.randn(len(idx), 3, generator=g)
        out = emb(idx)
        loss = (out * target).mean() if linear else nn.functional.mse_loss(out, target)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)


ABSENT = [torch.arange(6)] * 300 + [torch.arange(3)] * 20 + [torch.arange(6)]
ADAM = dict(lr=0.01, betas=(0.9, 0.95), weight_decay=0.1)


def test_catch_up_equals_dense_adamw_when_gradients_do_not_depend_on_weights():
    # 300 steps touching every row (the bias correction settles), then rows 3-5 sit out
    # 20 steps, then every row again. With a loss linear in the weights the gradients do
    # not depend on where the rows are, so the catch-up must land exactly where dense
    # AdamW's per-step moves did.
    dense, sparse = _pair()
    _run(dense, torch.optim.AdamW(dense.parameters(), **ADAM), ABSENT, linear=True)
    _run(sparse, SparseAdamW(sparse.parameters(), **ADAM), ABSENT, linear=True)
    torch.testing.assert_close(sparse.weight, dense.weight)


def test_catch_up_stays_close_to_dense_adamw_where_lazy_falls_behind():
    # With a real loss the returning rows' gradient is taken before the catch-up (at
    # stale weights), so the match is close, not exact; the lazy step is far off.
    dense, sparse = _pair()
    _, lazy = _pair()
    _run(dense, torch.optim.AdamW(dense.parameters(), **ADAM), ABSENT)
    _run(sparse, SparseAdamW(sparse.parameters(), **ADAM), ABSENT)
    _run(lazy, SparseAdamW(lazy.parameters(), catch_up=False, **ADAM), ABSENT)
    caught_up = (sparse.weight - dense.weight)[3:].abs().max()
    behind = (lazy.weight - dense.weight)[3:].abs().max()
    assert caught_up < 1e-3 and behind > 20 * caught_up
    for w in (sparse.weight, lazy.weight):  # rows present throughout: identical
        torch.testing.assert_close(w[:3], dense.weight[:3])


def test_catch_up_is_kept_in_the_state_dict():
    _, sparse = _pair()
    opt = SparseAdamW(sparse.parameters(), lr=0.1, catch_up=False)
    sparse(torch.tensor([1])).sum().backward()
    opt.step()
    twin = SparseAdamW(sparse.parameters(), lr=0.1)
    twin.load_state_dict(opt.state_dict())
    assert twin.param_groups[0]["catch_up"] is False
    assert twin.state[sparse.weight]["last_step"].tolist() == [0, 1, 0, 0, 0, 0]


def test_dense_parameters_get_plain_adamw():
    torch.manual_seed(0)
    lin = nn.Linear(3, 2)
    twin = copy.deepcopy(lin)
    a = SparseAdamW(lin.parameters(), lr=0.01)
    b = torch.optim.AdamW(twin.parameters(), lr=0.01)
    x = torch.randn(8, 3)
    for m, o in ((lin, a), (twin, b)):
        m(x).pow(2).mean().backward()
        o.step()
    torch.testing.assert_close(lin.weight, twin.weight, rtol=0, atol=0)


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(50, 4, sparse=True)
        self.lin = nn.Linear(4, 1)

    def forward(self, x):
        return self.lin(self.emb(x)).squeeze(1)


def test_learner_rates_freeze_and_finder_restore():
    torch.manual_seed(0)
    net = _Net()
    x = torch.randint(0, 50, (256,))
    y = (x % 2).float()
    learn = Learner(
        net,
        nn.functional.mse_loss,
        layer_groups=[net.emb, net.lin],
        opt_func=partial(SparseAdamW, weight_decay=0.01),
    )
    batches = TensorBatches(x, y, batch_size=32, shuffle=True)
    before = copy.deepcopy(net.state_dict())
    learn.lr_find(batches, num_it=20)
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k])
    learn.fit(batches, 15, lr=slice(3e-2, 3e-2))
    assert learn.train_loss < 0.1  # from about 0.5: it learns through the sparse rows
    groups = learn.opt.param_groups
    assert [g["layer_group"] for g in groups] == [0, 1]
    assert isinstance(learn.opt, SparseAdamW)
    # The finder on a fitted learner puts the sparse moments back too.
    state = copy.deepcopy(learn.opt.state_dict())
    learn.lr_find(batches, num_it=10)
    restored = learn.opt.state_dict()["state"]
    for k, s in state["state"].items():
        torch.testing.assert_close(restored[k]["exp_avg"], s["exp_avg"])
    learn.freeze()
    w = net.emb.weight.detach().clone()
    learn.fit(batches, 1, lr=1e-2)
    assert torch.equal(net.emb.weight, w)


def test_amsgrad_with_sparse_gradients_is_refused():
    _, sparse = _pair()
    opt = SparseAdamW(sparse.parameters(), amsgrad=True)
    sparse(torch.tensor([0])).sum().backward()
    with pytest.raises(RuntimeError, match="amsgrad"):
        opt.step()


def test_docstring_example_runs():
    import doctest

    import deepfit.optim

    result = doctest.testmod(deepfit.optim)
    assert result.attempted > 0 and result.failed == 0
