"""The training loop: a model, a loss, an optimizer and the model's layer groups.

Everything that trains goes through :meth:`Learner._one_batch` and everything that
evaluates or predicts through :meth:`Learner._evaluate`, so a feature added there
(clipping, mixed precision, distributed training, streamed data) reaches every recipe,
the learning-rate finder and every estimator.
"""

from __future__ import annotations

import contextlib
import math
import signal
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import partial
from typing import Any

import torch
from torch import nn

import deepfit.distributed as distributed
from deepfit.callbacks import EVENTS, Callback, CancelFit
from deepfit.data import to_device
from deepfit.lr_finder import LRFinderResult, lr_find
from deepfit.params import warn
from deepfit.schedules import Schedule, get_schedule

__all__ = ["FitInterrupted", "Learner", "LrSpec", "discriminative_lrs"]

LrSpec = float | Sequence[float] | slice
# stage_lr(stage, n_frozen) -> the rates of one stage of Learner.fine_tune.
StageLr = Callable[[int, int], LrSpec]


class FitInterrupted(UserWarning):
    """Warned when Ctrl-C (KeyboardInterrupt) ends a fit early."""


def discriminative_lrs(lr: float, n_groups: int, ratio: float) -> list[float]:
    """One rate per layer group: ``lr`` for the last group, each earlier group ``ratio``
    times lower (ULMFiT's discriminative fine-tuning)."""
    return [lr / ratio ** (n_groups - 1 - i) for i in range(n_groups)]


def _overrides(cb: Callback, event: str) -> bool:
    return getattr(type(cb), event, None) is not getattr(Callback, event)


def _first(out: Any) -> Any:
    """A model may return a tuple whose first item is the prediction and the rest extra
    outputs for the loss (a language model's AR/TAR activations)."""
    return out[0] if isinstance(out, (tuple, list)) else out


def _cat(outs: list[Any]) -> Any:
    """Concatenate per-batch outputs (tensors, or tuples of tensors item by item) on
    the CPU; floating outputs as float32."""
    if isinstance(outs[0], (tuple, list)):
        return tuple(_cat([o[j] for o in outs]) for j in range(len(outs[0])))
    out = torch.cat(outs)
    return (out.float() if out.is_floating_point() else out).cpu()


class Learner:
    """Train a model with layer groups, schedules, callbacks and differential rates.

    Parameters
    ----------
    model : nn.Module
        Called as ``model(xb)``, or ``model(*xb)`` when a batch's inputs are a tuple. It
        may return a tuple: its first item is the prediction, the others reach the loss.
    loss_func : callable or None
        ``loss_func(pred, *targets) -> scalar tensor``; the targets are everything after
        the inputs in a batch, so a batch ``(x, y, w)`` gives ``loss_func(pred, y, w)``.
        ``None`` for a learner that only predicts.
    layer_groups : sequence, optional
        The model's parameters cut into groups, earliest layers first. Each group is a
        module, a list of modules or a list of parameters. Default: one group.
    splitter : callable, optional
        ``splitter(model) -> layer_groups``; an alternative to ``layer_groups``.
    opt_func : callable, default=AdamW(betas=(0.9, 0.99), weight_decay=0.01)
        ``opt_func(param_groups) -> torch.optim.Optimizer``. Each param group dict carries
        a ``"layer_group"`` key that the learner uses to set its rate.
    metrics : dict of str to callable or sequence of callables, optional
        ``metric(pred, target) -> float`` on the whole validation set.
    callbacks : iterable of Callback, optional
        Callbacks of every ``fit`` of this learner, the finder's sweep included (say
        gradient clipping, or a recurrent model's state reset); ``fit`` takes more.
    device : str or torch.device, optional
        Where batches are moved if they are not there yet. Default: the model's device.
    amp : bool, default=False
        bfloat16 autocast on CUDA (ignored elsewhere).

    Attributes
    ----------
    opt : torch.optim.Optimizer or None
        Created on the first ``fit`` and kept across fits (so fitting again continues).
    n_frozen : int
        How many leading layer groups are frozen.
    interrupted : bool
        Whether the last fit was ended by Ctrl-C.
    tags : dict
        The ``tags`` of the current ``fit`` (its stage, say); :class:`History` adds them
        to each row.
    """

    def __init__(
        self,
        model: nn.Module,
        loss_func: Callable[..., torch.Tensor] | None,
        layer_groups: Sequence[Any] | None = None,
        splitter: Callable[[nn.Module], Sequence[Any]] | None = None,
        opt_func: Callable[[list[dict[str, Any]]], torch.optim.Optimizer] | None = None,
        metrics: dict[str, Callable] | Sequence[Callable] | None = None,
        callbacks: Iterable[Callback] = (),
        device: str | torch.device | None = None,
        amp: bool = False,
    ) -> None:
        if layer_groups is not None and splitter is not None:
            raise ValueError("pass layer_groups or splitter, not both")
        self.model, self.loss_func = model, loss_func
        groups = splitter(model) if splitter is not None else layer_groups
        self._set_groups([model] if groups is None else groups)
        self.opt_func = opt_func or partial(
            torch.optim.AdamW, betas=(0.9, 0.99), weight_decay=0.01
        )
        if metrics is None:
            metrics = {}
        elif not isinstance(metrics, dict):
            metrics = {
                getattr(m, "__name__", f"metric_{i}"): m for i, m in enumerate(metrics)
            }
        self.metrics_funcs: dict[str, Callable] = dict(metrics)
        self.callbacks = list(callbacks)
        if device is None:
            first = next(model.parameters(), None)
            device = first.device if first is not None else "cpu"
        self.device = torch.device(device)
        self.amp = amp
        self.opt: torch.optim.Optimizer | None = None
        self.n_frozen = 0
        self.interrupted = False
        self.diverged = False
        self.train_loss: float = math.nan
        self.valid_loss: float | None = None
        self.metrics: dict[str, float] = {}
        self.lrs: list[float] = []
        self.tags: dict[str, Any] = {}
        self.extra_loss: torch.Tensor | None = None
        self._train_model: nn.Module = model
        self._stop_requested = False
        self._set_hooks(())

    # ---- layer groups and freezing -------------------------------------------------

    def _set_groups(self, groups: Sequence[Any]) -> None:
        params: list[list[nn.Parameter]] = []
        modules: list[list[nn.Module]] = []
        seen: set[int] = set()
        named = list(
            self.model.named_parameters()
        )  # walked once: prediction is latency-bound
        for i, group in enumerate(groups):
            items = (
                [group] if isinstance(group, (nn.Module, nn.Parameter)) else list(group)
            )
            ps, ms = [], []
            for item in items:
                if isinstance(item, nn.Module):
                    ms.append(item)
                    if item is self.model:
                        ps.extend(p for _, p in named)
                    else:
                        ps.extend(item.parameters())
                elif isinstance(item, torch.Tensor):
                    ps.append(item)
                else:
                    raise TypeError(
                        f"layer group {i} holds a {type(item).__name__}; expected modules "
                        "or parameters"
                    )
            unique = []
            for p in ps:
                if id(p) in seen:
                    if any(p is q for q in unique):
                        continue
                    raise ValueError(
                        f"a parameter appears in more than one layer group ({i})"
                    )
                seen.add(id(p))
                unique.append(p)
            params.append(unique)
            modules.append(ms)
        missing = [n for n, p in named if p.requires_grad and id(p) not in seen]
        if missing:
            raise ValueError(
                f"trainable parameters in no layer group: {missing[:5]}"
                + (" ..." if len(missing) > 5 else "")
            )
        self.layer_groups = params
        self._group_modules = modules
        # Parameters frozen by the user before we saw the model stay frozen for good.
        self._fixed = {id(p) for g in params for p in g if not p.requires_grad}

    @property
    def n_groups(self) -> int:
        return len(self.layer_groups)

    def freeze_to(self, n: int) -> None:
        """Freeze the first ``n`` layer groups (negative counts from the end, as in
        slicing) and unfreeze the rest."""
        n = n % self.n_groups if n < 0 else min(n, self.n_groups)
        for i, group in enumerate(self.layer_groups):
            for p in group:
                p.requires_grad_(i >= n and id(p) not in self._fixed)
        self.n_frozen = n
        frozen_ids = {id(p) for g in self.layer_groups[:n] for p in g}
        bns: dict[int, nn.Module] = {}
        for ms in self._group_modules[:n]:
            for m in ms:
                for sub in m.modules():
                    if isinstance(sub, nn.modules.batchnorm._BatchNorm):
                        bns[id(sub)] = sub
        for sub in self.model.modules():
            if isinstance(sub, nn.modules.batchnorm._BatchNorm):
                ps = list(sub.parameters(recurse=False))
                if ps and all(id(p) in frozen_ids for p in ps):
                    bns[id(sub)] = sub
        self._frozen_bn = list(bns.values())

    def freeze(self) -> None:
        """Train only the last layer group."""
        self.freeze_to(-1)

    def unfreeze(self) -> None:
        """Train every layer group."""
        self.freeze_to(0)

    def train_mode(self) -> None:
        """``model.train()``, except BatchNorm layers of frozen groups, which stay in eval
        mode so their running statistics are left untouched."""
        self.model.train()
        for bn in getattr(self, "_frozen_bn", ()):
            bn.eval()

    # ---- optimizer and hyper-parameters --------------------------------------------

    def create_opt(self) -> None:
        groups = [
            {"params": ps, "layer_group": i}
            for i, ps in enumerate(self.layer_groups)
            if ps
        ]
        self.opt = self.opt_func(groups)

    def lrs_per_group(self, lr: LrSpec) -> list[float]:
        """Expand ``lr`` into one rate per layer group.

        A number applies to every group; a sequence gives each group its own; a
        ``slice(lo, hi)`` spreads rates geometrically from ``lo`` (first group) to ``hi``
        (last group), and ``slice(None, hi)`` gives ``hi / 10`` to every group but the last.
        """
        n = self.n_groups
        if isinstance(lr, slice):
            if lr.step is not None:
                raise ValueError("a learning-rate slice takes no step")
            hi = lr.stop
            if lr.start is None:
                return [hi / 10] * (n - 1) + [hi]
            lo = lr.start
            if n == 1:
                return [hi]
            return [lo * (hi / lo) ** (i / (n - 1)) for i in range(n)]
        if isinstance(lr, (int, float)):
            return [float(lr)] * n
        lrs = [float(x) for x in lr]
        if len(lrs) != n:
            raise ValueError(f"got {len(lrs)} learning rates for {n} layer groups")
        return lrs

    def set_hyper(self, lrs: Sequence[float], momentum: float | None = None) -> None:
        """Set each param group's rate from its layer group (and beta1 / momentum)."""
        assert self.opt is not None
        for g in self.opt.param_groups:
            g["lr"] = lrs[g.get("layer_group", 0)]
            if momentum is not None:
                if "betas" in g:
                    g["betas"] = (momentum, g["betas"][1])
                elif "momentum" in g:
                    g["momentum"] = momentum
        self.lrs = list(lrs)

    # ---- one batch, one prediction path ----------------------------------------------

    def autocast(self) -> contextlib.AbstractContextManager:
        """bfloat16 autocast when ``amp`` is on and the device is CUDA, else nothing."""
        if self.amp and self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def forward(self, xb: Any) -> Any:
        """The model on a batch's inputs: ``model(*xb)`` for a tuple, else
        ``model(xb)``."""
        return self.model(*xb) if isinstance(xb, (tuple, list)) else self.model(xb)

    def _one_batch(self, batch: Sequence[Any]) -> int:
        """The one training step: forward, loss, backward, optimizer step, with the
        callbacks' hooks in between. Returns the batch's number of rows.

        In a distributed fit the forward runs through ``DistributedDataParallel``, which
        averages the gradients over the ranks during the backward. A callback that adds
        a term to what is minimised (adversarial training, activation regularisation)
        adds it to ``extra_loss`` in ``after_loss``: one backward then takes them all,
        as ``DistributedDataParallel`` needs; ``train_loss`` is the loss function's
        alone."""
        xb, *yb = to_device(batch, self.device)
        self.xb, self.yb = xb, yb
        self._call("before_batch")
        with self.autocast():
            m = self._train_model
            self.pred = (
                m(*self.xb) if isinstance(self.xb, (tuple, list)) else m(self.xb)
            )
            self.loss = self.loss_func(self.pred, *self.yb)
        self._call("after_loss")
        total = self.loss if self.extra_loss is None else self.loss + self.extra_loss
        self.extra_loss = None
        total.backward()
        self._call("before_step")
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        first = self.yb[0] if self.yb else self.xb
        while isinstance(first, (tuple, list)):
            first = first[0]
        return len(first)

    def _evaluate(
        self, batches: Iterable, step: Callable[[Any, list[Any]], None]
    ) -> None:
        """The one inference loop: eval mode, no autograd, autocast, each batch moved to
        the device and handed to ``step(inputs, targets)``."""
        self.model.eval()
        with torch.inference_mode(), self.autocast():
            for batch in batches:
                if not isinstance(batch, (tuple, list)):
                    batch = (batch,)
                xb, *yb = to_device(batch, self.device)
                step(xb, yb)

    def predict(
        self,
        batches: Iterable,
        transform: Callable[[Callable[[Any], Any], Any], Any] | None = None,
    ) -> Any:
        """The model's outputs on ``batches`` (inputs first in each batch), in eval mode,
        concatenated on the CPU (floating outputs as float32).

        ``transform(forward, inputs)`` replaces the plain ``forward(inputs)`` of each
        batch: test-time augmentation averages ``forward`` over views of the inputs, a
        recommender ranks the scores it gets. It may return a tensor or a tuple of
        tensors (concatenated item by item).
        """
        outs: list[Any] = []

        def step(xb: Any, yb: list[Any]) -> None:
            if transform is None:
                outs.append(_first(self.forward(xb)))
            else:
                outs.append(transform(self.forward, xb))

        self._evaluate(batches, step)
        if not outs:
            raise ValueError("batches is empty: nothing to predict")
        return _cat(outs)

    def validate(self, batches: Iterable, callbacks: Iterable[Callback] = ()) -> float:
        """The loss on ``batches`` (mean over rows, or over whatever a batch's first
        target counts) and the metrics (in ``metrics``), as after each epoch of ``fit``;
        the learner's callbacks (and ``callbacks``) see ``before_validate`` and
        ``after_validate``."""
        self._set_hooks(callbacks)
        self._validate(batches)
        assert self.valid_loss is not None
        return self.valid_loss

    def _validate(self, valid: Iterable) -> None:
        was_training = self.model.training
        self._call("before_validate")
        losses, sizes, preds, targets = [], [], [], []

        def step(xb: Any, yb: list[Any]) -> None:
            pred = self.forward(xb)
            losses.append(self.loss_func(pred, *yb).float())
            sizes.append(len(yb[0]))
            if self.metrics_funcs:
                preds.append(_first(pred))
                targets.append(yb[0])

        self._evaluate(valid, step)
        if not losses:
            raise ValueError("the validation batches are empty")
        w = torch.tensor(sizes, dtype=torch.float32, device=losses[0].device)
        self.valid_loss = float((torch.stack(losses) * w).sum() / w.sum())
        if self.metrics_funcs:
            p, t = torch.cat(preds).float(), torch.cat(targets)
            self.metrics = {k: float(f(p, t)) for k, f in self.metrics_funcs.items()}
        if was_training:
            self.train_mode()
        self._call("after_validate")

    # ---- the loop -------------------------------------------------------------------

    def _set_hooks(self, callbacks: Iterable[Callback]) -> None:
        cbs = sorted([*self.callbacks, *callbacks], key=lambda cb: cb.order)
        self._hooks = {
            e: [getattr(cb, e) for cb in cbs if _overrides(cb, e)] for e in EVENTS
        }

    def _call(self, event: str) -> None:
        for hook in self._hooks[event]:
            hook(self)

    def fit(
        self,
        batches: Iterable,
        epochs: int = 1,
        lr: LrSpec = 1e-3,
        schedule: str | Schedule | None = "one_cycle",
        callbacks: Iterable[Callback] = (),
        valid: Iterable | None = None,
        tags: dict[str, Any] | None = None,
    ) -> Learner:
        """Train for ``epochs`` passes over ``batches``.

        ``batches`` is re-iterated every epoch and must have a length; each batch is
        ``(inputs, target, ...)``. ``valid`` (optional) gives validation batches evaluated
        after every epoch. ``tags`` (say ``{"stage": "frozen"}``) label this fit's rows of
        the :class:`History`. Ctrl-C stops at the end of the current batch: the fit
        returns normally (with a :class:`FitInterrupted` warning), callbacks' ``after_fit``
        runs (early stopping puts the best weights back), and ``interrupted`` is set.
        """
        if not hasattr(batches, "__len__"):
            raise TypeError(
                "batches must have a length (a TensorBatches, a DataLoader...)"
            )
        batches = distributed.shard_batches(batches)  # this rank's rows of each batch
        n_batches = len(batches)
        if n_batches == 0:
            raise ValueError("batches is empty")
        self.batches, self.valid_batches = batches, valid
        self.n_epochs = epochs
        self.base_lrs = self.lrs_per_group(lr)
        self.tags = dict(tags or {})
        sched = get_schedule(schedule)
        self._set_hooks(callbacks)
        if self.opt is None:
            self.create_opt()
        total = epochs * n_batches
        # The run state is this fit's: a learner fitted again starts clean.
        self.interrupted, self._stop_requested, self.diverged = False, False, False
        self.epoch, self.iter, self.pos = 0, 0, 0.0
        self.valid_loss, self.metrics = None, {}
        with (
            self._sigint_deferred(),
            distributed.sync_batchnorm(self.model),
            distributed.quiet(),
        ):
            self._train_model = (
                distributed.data_parallel(self.model, self.device)
                if distributed.is_active()
                else self.model
            )
            try:
                self._call("before_fit")
                good = self._snapshot()
                for epoch in range(epochs):
                    self.epoch = epoch
                    self._train_epoch(sched, epoch * n_batches, total)
                    if not math.isfinite(self.train_loss):
                        self._diverge(good, epoch)
                        break
                    # A copy of the weights for a later epoch to fall back on; none
                    # after the last (a model with large embedding tables holds one
                    # copy less while it validates and early stopping keeps its best).
                    good = self._snapshot() if epoch < epochs - 1 else None
                    if valid is not None:
                        self._validate(valid)
                    self._call("after_epoch")
            except CancelFit:
                pass
            except KeyboardInterrupt:
                self._interrupt()
            finally:
                self._call("after_fit")
                self._train_model = self.model
        return self

    def _snapshot(self) -> dict[str, torch.Tensor]:
        """A copy of the weights (and buffers) as they stand."""
        return {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    def _diverge(self, good: dict[str, torch.Tensor], epoch: int) -> None:
        """A non-finite training loss: put back the weights of the last epoch that
        ended finite (or of the fit's start), drop the optimizer's state, say so."""
        self.model.load_state_dict(good)
        self.opt = None
        self.diverged = True
        warn(
            f"training loss is {self.train_loss} at epoch {epoch + 1}; stopped and put "
            "back the weights of the last finite epoch (try a lower learning rate)",
            RuntimeWarning,
        )

    def _interrupt(self) -> None:
        self.interrupted = True
        warn(
            f"fit interrupted at epoch {self.epoch + 1}, batch {self.iter + 1}; the model "
            "keeps the weights of the last completed step (or the best ones with early "
            "stopping)",
            FitInterrupted,
        )

    @contextlib.contextmanager
    def _sigint_deferred(self) -> Iterator[None]:
        """Turn the first Ctrl-C into a request to stop after the current batch, so the
        optimizer never stops half-way through updating the weights. A second Ctrl-C
        interrupts at once."""
        if (
            threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
        ):
            yield
            return

        def handler(signum: int, frame: Any) -> None:
            if self._stop_requested:
                signal.signal(signal.SIGINT, signal.default_int_handler)
                raise KeyboardInterrupt
            self._stop_requested = True

        signal.signal(signal.SIGINT, handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, signal.default_int_handler)

    def _train_epoch(self, sched: Schedule, start: int, total: int) -> None:
        self.train_mode()
        self._call("before_epoch")
        losses, sizes = [], []
        for i, batch in enumerate(self.batches):
            self.iter = i
            self.pos = (start + i) / total
            mult = sched.lr(self.pos, self.n_epochs)
            self.set_hyper(
                [b * mult for b in self.base_lrs],
                sched.momentum(self.pos, self.n_epochs),
            )
            bs = self._one_batch(batch)
            losses.append(self.loss.detach())
            sizes.append(bs)
            self._call("after_batch")
            if self._stop_requested:
                raise KeyboardInterrupt
        w = torch.tensor(sizes, dtype=torch.float32, device=losses[0].device)
        # Over every rank's rows in a distributed fit: the same on every rank, so is
        # what it decides (divergence, a monitor of the training loss).
        total = distributed.all_sum(
            torch.stack([(torch.stack(losses).float() * w).sum(), w.sum()])
        )
        self.train_loss = float(total[0] / total[1])

    def batch_loss(self) -> float:
        """This step's training loss; in a distributed fit, its mean over the ranks
        (what the finder records, so every rank reads the same curve)."""
        loss = self.loss.detach().float()
        if distributed.is_active():
            loss = distributed.all_sum(loss) / distributed.world_size()
        return float(loss)

    # ---- recipes --------------------------------------------------------------------

    def lr_find(self, batches: Iterable, **kwargs: Any) -> LRFinderResult:
        """Run the learning-rate finder (see :func:`deepfit.lr_finder.lr_find`)."""
        return lr_find(self, batches, **kwargs)

    def fine_tune(
        self,
        batches: Iterable,
        epochs: int,
        lr: LrSpec,
        freeze_epochs: int = 1,
        lr_ratio: float = 3.0,
        gradual: bool = False,
        schedule: str | Schedule | None = "one_cycle",
        freeze_schedule: str | Schedule | None = None,
        callbacks: Iterable[Callback] = (),
        valid: Iterable | None = None,
        stage_lr: StageLr | None = None,
        tags: dict[str, Any] | None = None,
    ) -> Learner:
        """The transfer-learning recipe: train the last group with the rest frozen, then
        unfreeze and train everything with discriminative rates, each group ``lr_ratio``
        times lower than the next.

        With ``gradual=True`` (ULMFiT's gradual unfreezing) one more group is unfrozen per
        ``freeze_epochs`` stage, last groups first, before the final all-unfrozen stage.
        ``freeze_epochs=0`` skips straight to the unfrozen stage (say for a model with
        nothing pretrained to protect, or a later size of progressive resizing).

        ``stage_lr(stage, n_frozen)`` gives each stage's rates (anything ``fit`` takes),
        from the stage's index (0 first) and how many leading groups it freezes (0 in the
        final stage). By default a stage training only the last group gets ``lr``, the
        others ``discriminative_lrs(lr, n_groups, lr_ratio)``. ``callbacks`` apply to every
        stage; ``freeze_schedule`` (default: ``schedule``) to the frozen ones. History
        rows carry ``stage`` ("frozen" or "unfrozen") and ``tags``.
        """
        n = self.n_groups
        if stage_lr is None:

            def stage_lr(k: int, n_frozen: int) -> LrSpec:
                if (n_frozen == n - 1 and n > 1) or not isinstance(lr, (int, float)):
                    return lr
                return discriminative_lrs(float(lr), n, lr_ratio)

        frozen = range(n - 1, 0, -1) if gradual else ([n - 1] if n > 1 else [])
        stages = list(frozen) if freeze_epochs > 0 else []
        for k, n_frozen in enumerate(stages):
            self.freeze_to(n_frozen)
            self.fit(
                batches,
                freeze_epochs,
                stage_lr(k, n_frozen),
                schedule if freeze_schedule is None else freeze_schedule,
                callbacks,
                valid,
                tags={**(tags or {}), "stage": "frozen"},
            )
            if self.interrupted:
                return self
        self.unfreeze()
        if epochs > 0:
            self.fit(
                batches,
                epochs,
                stage_lr(len(stages), 0),
                schedule,
                callbacks,
                valid,
                tags={**(tags or {}), "stage": "unfrozen"},
            )
        return self
