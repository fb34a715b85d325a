"""``ImageClassifier``: the scikit-learn face of image fine-tuning."""

from __future__ import annotations

import numbers
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from sklearn.base import ClassifierMixin
from sklearn.utils.validation import check_is_fitted
from torch import nn

from deepfit import (
    SGDR,
    Callback,
    FitData,
    History,
    Learner,
    NeuralEstimator,
    TensorBatches,
    discriminative_lrs,
    get_schedule,
)
from deepfit.data import check_sample_weight
from deepfit.files import save_torch
from deepfit.params import InstanceOf, Interval, Options, SequenceOf, warn
from deepfit.schedules import Schedule
from deepfit.targets import (
    accuracy,
    encode_targets,
    hits,
    label_set_accuracy,
    labels_from_hits,
    weighted_cross_entropy,
)
from vision.data import (
    ImageDataset,
    Images,
    as_images,
    check_readable,
    default_workers,
    make_loader,
)
from vision.model import (
    ARCH_ALIASES,
    BUILTIN_ARCHS,
    ImageModel,
    body_features,
    check_arch,
    create_body,
    create_head,
    load_body_weights,
    splitter,
)
from vision.targets import fbeta
from vision.transforms import (
    AUGMENT_PRESETS,
    IMAGENET_MEAN,
    IMAGENET_STD,
    eval_transform,
    presize,
    resize_batch,
    resized,
    train_transform,
    tta_views,
)

__all__ = ["ImageClassifier"]

# The finder's sweep for images: short, on small batches of images decoded once at the
# first (smallest) size, so that it costs a small fraction of the fit (a sweep of 100
# full batches can take as long as the fit on a small image set); a short sweep is read
# by the engine's zero-lag rule, within a range where Adam trains these networks.
FINDER_ITERS = 40
FINDER_BATCH = 16
FINDER_IMAGES = 512
FINDER_START, FINDER_END = 1e-5, 1.0
FINDER_RANGE = (1e-4, 1e-2)
FALLBACK_LR = 1e-3


@dataclass
class _ImageData(FitData):
    """The images and targets of a fit, for the recipe's batches at each size."""

    images: dict[str, Any] = field(default_factory=dict)


class ImageClassifier(ClassifierMixin, NeuralEstimator):
    """Image classification by fine-tuning a convolutional network.

    A torchvision backbone (``resnet34`` by default; any convolutional torchvision
    classification model by name) or the built-in ``"small_resnet"`` is cut before its
    pooling and given fastai's head (concat pooling, then batchnorm-dropout-linear twice).
    ``fit`` runs the transfer-learning recipe (Howard & Ruder 2018, "ULMFiT"; Howard &
    Gugger 2020, "fastai"): with pretrained ``weights``, the head is trained with the body
    frozen (its BatchNorm statistics untouched) for ``freeze_epochs``, then everything is
    trained with discriminative learning rates, each of the three layer groups (early
    body, late body, head) ``lr_ratio`` times slower than the next. Rates follow cosine
    annealing with warm restarts (Loshchilov & Hutter 2017, "SGDR"); the training size
    can grow between stages (progressive resizing, ``sizes=(64, 128, 224)``).

    Parameters
    ----------
    arch : str, default="resnet34"
        A torchvision classification model name (``"resnet18"``, ``"resnet34"``,
        ``"resnext50_32x4d"`` (or ``"resnext50"``), ``"efficientnet_b0"``...) or
        ``"small_resnet"``, a small residual network for training from scratch on small
        images on a CPU (:class:`vision.model.SmallResNet`; set its ``width``, ``depth``,
        ``stages`` and ``stem_stride`` through ``arch_kwargs``).
    weights : None, str or path, default=None
        ``None``: random initialisation. A path: a state dict file (read with
        ``torch.load(weights_only=True)``): one written by :meth:`save_body`, or a whole
        torchvision model's (its classifier is ignored); a file for another architecture
        raises, naming the layer that does not fit. ``"DEFAULT"`` or a torchvision weights
        name (``"IMAGENET1K_V1"``): torchvision's registry, which downloads them unless
        they are cached (never done unless asked).
    augment : {"side-on", "top-down"} or None, default="side-on"
        Augmentation preset (:mod:`vision.transforms`): ``"side-on"`` for photos (crops,
        horizontal flips, small rotations, lighting; never vertical flips), ``"top-down"``
        for satellite and microscope images (all eight flips/rotations of the square,
        crops, lighting), ``None`` for none. Also sets the views of test-time
        augmentation.
    sizes : int or sequence of int, default=(224,)
        Square training sizes in pixels. Several sizes train the same model at each in
        turn (progressive resizing), splitting ``epochs`` between them (earlier sizes get
        the remainder). Prediction uses the last size.
    freeze_epochs : int, default=1
        Epochs of head-only training before unfreezing, when ``weights`` are given
        (random weights have nothing to protect, so training starts unfrozen).
    lr_ratio : float, default=3
        Ratio between the rates of consecutive layer groups once unfrozen (10 suits data
        far from the pretraining domain). Used with ``weights`` only.
    cycle_len : float or None, default=None
        With ``schedule="sgdr"``: epochs in the first cosine cycle; ``None``: one cycle per
        stage (each size and the frozen stage restart the cosine).
    cycle_mult : float, default=1
        With ``schedule="sgdr"``: growth of each following cycle.
    dropout : float, default=0.5
        Dropout before the head's last linear layer (half of it before the first).
    threshold : float, default=0.5
        Multi-label: probability from which a label is predicted.
    arch_kwargs : dict or None, default=None
        Keyword arguments of the architecture (``small_resnet``: ``width``, ``depth``,
        ``stages``, ``stem_stride``; torchvision: the model builder's).
    path_col : str or None, default=None
        The column of image paths when ``X`` is a DataFrame with several columns.
    root : str, path or None, default=None
        Folder that relative image paths are read from.
    num_workers : int or None, default=None
        DataLoader worker processes that decode image files (``None``: the CPU count, at
        most 8). Images given as arrays are augmented in the main process (0) unless set.
    epochs : int, default=5
        Training epochs once unfrozen, split across ``sizes``.
    lr : float, sequence, slice or None, default=None
        Peak rate of the head. The unfrozen stage uses ``lr / 2`` for the head and
        ``lr_ratio`` times less for each earlier group (a slice or one rate per group sets
        them directly). ``None``: the learning-rate finder chooses it from a short sweep
        on small batches at the first size, costing a small fraction of the fit (read
        by :func:`deepfit.lr_finder.suggest_zero_lag`); an unreliable sweep falls back
        to ``1e-3`` with a warning (``lr_find_`` holds the curve).
    schedule : {"sgdr", "one_cycle", "constant"} or Schedule, default="sgdr"
    batch_size : int, default=64
    validation_fraction, early_stopping, random_state, device, verbose, warm_start, amp,
    callbacks
        See :class:`deepfit.NeuralEstimator`. With ``warm_start=True`` a second ``fit``
        continues unfrozen from the fitted weights.

    Attributes
    ----------
    classes_ : ndarray
        Class labels (multi-label: label names, or column indices of an indicator ``y``).
    multilabel_ : bool
        Whether ``y`` had several labels per image; then ``predict`` returns, per image,
        the list of labels whose probability reaches ``threshold`` (an object array of
        lists) when ``y`` was label lists, or a 0/1 indicator matrix when ``y`` was one.
    module_ : ImageModel
    history_ : DataFrame
        One row per epoch, with the ``size`` and ``stage`` ("frozen" or "unfrozen").
    lr_, lr_find_, n_epochs_, interrupted_
        See :class:`deepfit.NeuralEstimator`.

    Example
    -------
    >>> from vision import ImageClassifier, image_folder
    >>> paths, labels = image_folder("data/mnist-tiny/train")  # doctest: +SKIP
    >>> clf = ImageClassifier("small_resnet", sizes=28, augment=None)  # doctest: +SKIP
    >>> clf.fit(paths, labels).predict(paths[:3])  # doctest: +SKIP
    """

    _fitted_attributes: ClassVar[tuple[str, ...]] = (
        *NeuralEstimator._fitted_attributes,
        "classes_",
        "multilabel_",
        "pretrained_",
        "sizes_",
    )

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **NeuralEstimator._parameter_constraints,
        "arch": [InstanceOf(str, "a model name")],
        "weights": [InstanceOf((str, os.PathLike), "a path or a weights name"), None],
        "augment": [Options(*AUGMENT_PRESETS), None],
        "sizes": [
            Interval(numbers.Integral, 8, None),
            SequenceOf(Interval(numbers.Integral, 8, None)),
        ],
        "freeze_epochs": [Interval(numbers.Integral, 0, None)],
        "lr_ratio": [Interval(numbers.Real, 0, None, closed="neither")],
        "cycle_len": [Interval(numbers.Real, 0, None, closed="neither"), None],
        "cycle_mult": [Interval(numbers.Real, 1, None)],
        "dropout": [Interval(numbers.Real, 0, 1, closed="left")],
        "threshold": [Interval(numbers.Real, 0, 1, closed="neither")],
        "arch_kwargs": [InstanceOf(dict, "a dict"), None],
        "path_col": [InstanceOf(str, "a column name"), None],
        "root": [InstanceOf((str, os.PathLike), "a folder"), None],
        "num_workers": [Interval(numbers.Integral, 0, None), None],
    }

    def __init__(
        self,
        arch: str = "resnet34",
        weights: str | os.PathLike | None = None,
        *,
        augment: str | None = "side-on",
        sizes: int | Sequence[int] = (224,),
        freeze_epochs: int = 1,
        lr_ratio: float = 3.0,
        cycle_len: float | None = None,
        cycle_mult: float = 1.0,
        dropout: float = 0.5,
        threshold: float = 0.5,
        arch_kwargs: dict[str, Any] | None = None,
        path_col: str | None = None,
        root: str | os.PathLike | None = None,
        num_workers: int | None = None,
        epochs: int = 5,
        lr: float | None = None,
        schedule: str | Schedule = "sgdr",
        batch_size: int = 64,
        validation_fraction: float | None = None,
        early_stopping: bool | int = False,
        random_state: int | np.random.RandomState | None = None,
        device: str = "auto",
        verbose: int = 1,
        warm_start: bool = False,
        amp: bool = False,
        callbacks: list[Callback] | None = None,
    ) -> None:
        super().__init__(
            epochs=epochs,
            lr=lr,
            schedule=schedule,
            batch_size=batch_size,
            validation_fraction=validation_fraction,
            early_stopping=early_stopping,
            random_state=random_state,
            device=device,
            verbose=verbose,
            warm_start=warm_start,
            amp=amp,
            callbacks=callbacks,
        )
        self.arch = arch
        self.weights = weights
        self.augment = augment
        self.sizes = sizes
        self.freeze_epochs = freeze_epochs
        self.lr_ratio = lr_ratio
        self.cycle_len = cycle_len
        self.cycle_mult = cycle_mult
        self.dropout = dropout
        self.threshold = threshold
        self.arch_kwargs = arch_kwargs
        self.path_col = path_col
        self.root = root
        self.num_workers = num_workers

    # ---- parameters -----------------------------------------------------------------

    def _sizes(self) -> tuple[int, ...]:
        sizes = (
            (self.sizes,) if isinstance(self.sizes, numbers.Integral) else self.sizes
        )
        return tuple(int(s) for s in sizes)

    def _weights_spec(self) -> tuple[str, Any]:
        """("none", None), ("file", Path) or ("registry", torchvision weights enum)."""
        w = self.weights
        if w is None:
            return "none", None
        if isinstance(w, os.PathLike) or (
            isinstance(w, str)
            and (
                os.path.exists(w)
                or os.sep in w
                or "/" in w
                or Path(w).suffix in (".pt", ".pth", ".bin")
            )
        ):
            path = Path(w)
            if not path.is_file():
                raise FileNotFoundError(f"weights file not found: {str(path)!r}")
            return "file", path
        if not isinstance(w, str):
            raise TypeError(f"weights must be None, a path or a name, got {w!r}")
        if self.arch in BUILTIN_ARCHS:
            raise ValueError(
                f"arch {self.arch!r} has no registry weights; pass None or a file written "
                "by save_body"
            )
        from torchvision import models

        enum = models.get_model_weights(ARCH_ALIASES.get(self.arch, self.arch))
        name = w.split(".")[-1]
        if name == "DEFAULT":
            return "registry", enum.DEFAULT
        if name not in enum.__members__:
            raise ValueError(
                f"unknown weights {w!r} for arch {self.arch!r}: use None, a file path, "
                f"'DEFAULT' or one of {list(enum.__members__)}"
            )
        return "registry", enum[name]

    def _check_params(self) -> None:
        check_arch(self.arch)
        sizes = self._sizes()
        if self.epochs < len(sizes):
            raise ValueError(
                f"epochs ({self.epochs}) must be at least the number of sizes "
                f"({len(sizes)}): each size trains for at least one epoch"
            )
        self._weights_spec()

    # ---- targets --------------------------------------------------------------------

    def _encode_y(self, y: Any, n: int, reset: bool) -> torch.Tensor:
        fitted = None if reset else (self.classes_, self.label_format_)
        kind, classes, targets = encode_targets(
            y, n, fitted, who=type(self).__name__, rows="images"
        )
        if reset:
            self.multilabel_ = kind != "single"
            self.label_format_ = kind
            self.classes_ = classes
        return targets

    # ---- the engine's hooks ---------------------------------------------------------

    def _build_module(self) -> nn.Module:
        kind, spec = self._weights_spec()
        mean, std = IMAGENET_MEAN, IMAGENET_STD
        if kind == "registry":
            body = create_body(self.arch, self.arch_kwargs, weights=spec)
            t = spec.transforms()
            mean, std = tuple(getattr(t, "mean", mean)), tuple(getattr(t, "std", std))
        else:
            body = create_body(self.arch, self.arch_kwargs)
            if kind == "file":
                load_body_weights(body, spec, self.arch)
        head = create_head(body_features(body), len(self.classes_), float(self.dropout))
        return ImageModel(body, head, mean, std).to(memory_format=torch.channels_last)

    def _loss_func(self) -> Any:
        return partial(weighted_cross_entropy, multilabel=self.multilabel_)

    def _layer_groups(self, module: nn.Module) -> list[Any]:
        return splitter(module)

    def _opt_func(self, module: nn.Module) -> Any:
        # AdamW with its fused kernel where torch has one: on a CPU it steps resnet-sized
        # models 3-4 times faster (the step dominates a small batch, the finder's).
        fused = True if self._device().type in ("cpu", "cuda") else None
        return partial(
            torch.optim.AdamW, betas=(0.9, 0.99), weight_decay=0.01, fused=fused
        )

    def _metrics(self) -> dict[str, Any]:
        if self.multilabel_:
            return {"fbeta": partial(fbeta, beta=2.0, threshold=float(self.threshold))}
        return {"accuracy": accuracy}

    # ---- batches --------------------------------------------------------------------

    def _workers(self, images: Images) -> int:
        if self.num_workers is not None:
            return int(self.num_workers)
        return 0 if images.in_memory else default_workers()

    def _train_batches(
        self,
        images: Images,
        targets: torch.Tensor,
        size: int,
        weights: torch.Tensor | None = None,
        cache: dict[Any, torch.Tensor] | None = None,
    ) -> Iterable:
        gen = self._generator(offset=size)
        if images.in_memory and self.augment is None:
            return TensorBatches(
                resized(images.tensor, size, cache=cache),
                targets,
                weights,
                batch_size=self.batch_size,
                shuffle=True,
                drop_last=True,
                generator=gen,
            )
        if images.in_memory:
            images = Images(tensor=resized(images.tensor, size, True, cache))
        ds = ImageDataset(
            images,
            train_transform(self.augment, size),
            targets,
            presize(size),
            weights=weights,
        )
        return make_loader(
            ds,
            self.batch_size,
            shuffle=True,
            drop_last=True,
            num_workers=self._workers(images),
            generator=gen,
            pin_memory=self._device().type == "cuda",
            persistent=True,
        )

    def _eval_batches(
        self,
        images: Images,
        size: int,
        targets: torch.Tensor | None = None,
        persistent: bool = False,
        cache: dict[Any, torch.Tensor] | None = None,
    ) -> Iterable:
        bs = max(self.batch_size, 64)
        if images.in_memory:
            x = resized(images.tensor, size, cache=cache)
            return TensorBatches(x, targets, batch_size=bs)
        ds = ImageDataset(images, eval_transform(size), targets, size)
        return make_loader(
            ds,
            bs,
            num_workers=self._workers(images),
            pin_memory=self._device().type == "cuda",
            persistent=persistent,
        )

    def _prepare(
        self, X: Any, y: Any, eval_set: Any, reset: bool, sample_weight: Any = None
    ) -> dict[str, Any]:
        images = as_images(X, self.path_col, self.root)
        targets = self._encode_y(y, len(images), reset)
        w = check_sample_weight(sample_weight, len(images))
        weights = None if w is None else torch.as_tensor(w, dtype=torch.float32)
        if len(images) < 2:
            raise ValueError(f"need at least 2 images to train, got {len(images)}")
        if eval_set is not None:
            X_valid, y_valid = eval_set
            valid = as_images(X_valid, self.path_col, self.root)
            valid_targets = self._encode_y(y_valid, len(valid), reset=False)
            train, train_targets, train_weights = images, targets, weights
        else:
            stratify = None if self.multilabel_ else targets.numpy()
            train_idx, valid_idx = self._validation_split(len(images), stratify)
            train, train_targets = images.subset(train_idx), targets[train_idx]
            train_weights = None if weights is None else weights[train_idx]
            valid = valid_targets = None
            if valid_idx is not None:
                valid, valid_targets = images.subset(valid_idx), targets[valid_idx]
        for part in (train, valid):
            if part is not None and not part.in_memory:
                check_readable(part.paths)
        return {
            "train": train,
            "y": train_targets,
            "w": train_weights,
            "valid": valid,
            "y_valid": valid_targets,
        }

    def _fit_data(
        self, X: Any, y: Any, eval_set: Any, reset: bool, sample_weight: Any = None
    ) -> _ImageData:
        """The images and targets, and batches at the first size (the engine's
        hook)."""
        data = self._prepare(X, y, eval_set, reset, sample_weight)
        data["cache"] = {}  # the resized images of this fit
        size = self._sizes()[0]
        valid = None
        if data["valid"] is not None:
            valid = self._eval_batches(
                data["valid"], size, data["y_valid"], True, data["cache"]
            )
        return _ImageData(
            train=self._train_batches(
                data["train"], data["y"], size, data["w"], data["cache"]
            ),
            valid=valid,
            finder=partial(self._finder_batches, data),
            images=data,
        )

    # ---- the recipe -----------------------------------------------------------------

    def _schedule(self, epochs: int) -> Schedule:
        if isinstance(self.schedule, str) and self.schedule == "sgdr":
            return SGDR(cycle_len=self.cycle_len or epochs, cycle_mult=self.cycle_mult)
        return get_schedule(self.schedule)

    def _finder_batches(self, data: dict[str, Any]) -> TensorBatches:
        """A few hundred training images decoded once at the first size (no
        augmentation), in small batches: what the finder sweeps over."""
        train, y = data["train"], data["y"]
        n = min(len(train), FINDER_IMAGES)
        idx = torch.randperm(len(train), generator=self._generator(offset=-1))[
            :n
        ].numpy()
        sub = train.subset(np.sort(idx))
        size = self._sizes()[0]
        if sub.in_memory:
            x = resize_batch(sub.tensor, size)
        else:
            x = torch.cat([b[0] for b in self._eval_batches(sub, size)])
        return TensorBatches(
            x,
            y[torch.as_tensor(np.sort(idx))],
            batch_size=min(self.batch_size, FINDER_BATCH),
            shuffle=True,
            drop_last=True,
            generator=self._generator(offset=-2),
        )

    def _finder_params(self) -> dict[str, Any]:
        return {
            "start_lr": FINDER_START,
            "end_lr": FINDER_END,
            "num_it": FINDER_ITERS,
            "beta": 0.8,  # only for stopping at divergence; the rule reads raw losses
            "suggest": "zero_lag",
            "bounds": FINDER_RANGE,
            "fallback": FALLBACK_LR,
        }

    def _epochs_per_size(self) -> list[tuple[int, int]]:
        sizes = self._sizes()
        base, extra = divmod(int(self.epochs), len(sizes))
        return [(s, base + (i < extra)) for i, s in enumerate(sizes)]

    def _recipe(self, learner: Learner, data: _ImageData, history: History) -> Any:
        """The engine's ``fine_tune`` once per size: at the first, with pretrained
        weights, the head alone for ``freeze_epochs`` (at the head's rate), then every
        size unfrozen with discriminative rates."""
        if data.reset:
            self.pretrained_ = self.weights is not None
        frozen_stage = data.reset and self.pretrained_ and self.freeze_epochs > 0
        if frozen_stage:
            learner.freeze()
        lr = self._resolve_lr(learner, data.finder_batches)
        head_lr = lr if isinstance(lr, numbers.Real) else learner.lrs_per_group(lr)[-1]
        unfrozen = lr
        if isinstance(lr, numbers.Real):
            unfrozen = float(lr)
            if self.pretrained_:
                unfrozen = discriminative_lrs(
                    float(lr) / 2, learner.n_groups, float(self.lr_ratio)
                )

        def stage_lr(stage: int, n_frozen: int) -> Any:
            return head_lr if n_frozen else unfrozen

        images = data.images
        for i, (size, n_epochs) in enumerate(self._epochs_per_size()):
            train, valid = data.train, data.valid
            if i > 0:
                train = self._train_batches(
                    images["train"], images["y"], size, images["w"], images["cache"]
                )
                valid = None
                if images["valid"] is not None:
                    valid = self._eval_batches(
                        images["valid"], size, images["y_valid"], True, images["cache"]
                    )
            freeze_epochs = int(self.freeze_epochs) if i == 0 and frozen_stage else 0
            learner.fine_tune(
                train,
                n_epochs,
                lr,
                freeze_epochs=freeze_epochs,
                schedule=self._schedule(n_epochs),
                freeze_schedule=self._schedule(max(freeze_epochs, 1)),
                callbacks=self._fit_callbacks(history, valid),
                valid=valid,
                stage_lr=stage_lr,
                tags={"size": size},
            )
            del train, valid  # ends the size's worker processes
            data.train = data.valid = None
            if learner.interrupted:
                break
        self.sizes_ = self._sizes()
        return lr

    def fit(
        self,
        X: Any,
        y: Any = None,
        *,
        eval_set: tuple[Any, Any] | None = None,
        sample_weight: Any = None,
    ) -> ImageClassifier:
        """Fit on images ``X`` (paths, a DataFrame with a path column, or an array
        ``(N, H, W[, C])``) and labels ``y`` (one per image, label lists, or an indicator
        matrix for multi-label). ``eval_set=(X_valid, y_valid)`` gives a validation set
        (otherwise ``validation_fraction``); ``sample_weight`` weighs each image in the
        loss. Returns ``self``."""
        return self._fit(X, y, eval_set=eval_set, sample_weight=sample_weight)

    # ---- prediction -----------------------------------------------------------------

    def _outputs(self, X: Any, tta: bool) -> torch.Tensor:
        check_is_fitted(self)
        images = as_images(X, self.path_col, self.root)
        if not images.in_memory:
            check_readable(images.paths, decode=False)
        views = tta_views(self.augment) if tta else tta_views(None)
        if tta and len(views) == 1:
            warn(
                "tta=True with augment=None: no augmentation is known to keep the labels, "
                "so only the original view is used",
                UserWarning,
            )
        act: Callable[[torch.Tensor], torch.Tensor] = (
            torch.sigmoid if self.multilabel_ else partial(torch.softmax, dim=1)
        )

        def averaged(forward: Callable, xb: torch.Tensor) -> torch.Tensor:
            return torch.stack([act(forward(view(xb)).float()) for view in views]).mean(
                0
            )

        batches = self._eval_batches(images, self.sizes_[-1])
        return self._predict_outputs(batches, transform=averaged)

    def predict_proba(self, X: Any, tta: bool = False) -> np.ndarray:
        """Class probabilities ``(n_images, n_classes)`` (softmax; multi-label: each
        label's sigmoid). ``tta=True`` averages them over the augmentation preset's views
        (the image and its mirror for "side-on", the eight symmetries for "top-down")."""
        proba = self._outputs(X, tta).numpy().astype(np.float64)
        if self.multilabel_:
            return proba
        # Rows sum to 1 in float64, as scikit-learn's metrics check (float32 does not).
        return proba / proba.sum(1, keepdims=True)

    def predict(self, X: Any, tta: bool = False) -> np.ndarray | list:
        """Predicted labels: one per image; multi-label: per image the labels whose
        probability reaches ``threshold``, as an object array of lists (``y`` given as
        label lists) or a 0/1 indicator matrix (``y`` given as one)."""
        proba = self.predict_proba(X, tta=tta)
        if not self.multilabel_:
            return self.classes_[proba.argmax(1)]
        return labels_from_hits(
            hits(proba, self.threshold), self.classes_, self.label_format_
        )

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Accuracy (multi-label: the share of images whose whole label set is right)."""
        from sklearn.metrics import accuracy_score

        if not getattr(self, "multilabel_", False):
            return float(
                accuracy_score(y, self.predict(X), sample_weight=sample_weight)
            )
        truth = self._encode_y(y, len(y), reset=False)
        hit = hits(self.predict_proba(X), self.threshold)
        return label_set_accuracy(truth, hit, sample_weight)

    def save_body(self, path: str | os.PathLike) -> None:
        """Write the fitted body (backbone) as a state dict, with torchvision's key
        names, that another ``ImageClassifier(arch=..., weights=path)`` starts from."""
        check_is_fitted(self)
        state = {k: v.detach().cpu() for k, v in self.module_.body.state_dict().items()}
        save_torch(state, path, "the body's weights")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.three_d_array = True  # (N, H, W) grey images, (N, H, W, C)
        tags.input_tags.string = True  # file paths
        tags.classifier_tags.multi_label = True  # label lists or a 0/1 matrix
        tags.target_tags.multi_output = True
        tags.non_deterministic = False
        return tags
