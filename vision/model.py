"""Image models: a torchvision backbone cut before its pooling (or the small built-in
residual network) with fastai's concat-pooling head, and the three-group splitter."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from deepfit.layers import AdaptiveConcatPool2d, LinBnDrop

__all__ = [
    "ARCH_ALIASES",
    "BUILTIN_ARCHS",
    "CroppedKernelConv2d",
    "ImageModel",
    "Normalize",
    "SmallResNet",
    "check_arch",
    "create_body",
    "create_head",
    "crop_kernels",
    "load_body_weights",
    "splitter",
]


def _conv_bn(
    n_in: int, n_out: int, ks: int = 3, stride: int = 1, act: bool = True
) -> nn.Sequential:
    # No bias: the BatchNorm right after has its own shift.
    layers: list[nn.Module] = [
        nn.Conv2d(n_in, n_out, ks, stride=stride, padding=ks // 2, bias=False),
        nn.BatchNorm2d(n_out),
    ]
    if act:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class ResBlock(nn.Module):
    """Two 3x3 convolution-batchnorm layers plus the identity, then ReLU. The second
    batchnorm starts at zero scale, so every block starts as the identity (Goyal et al.
    2017, "Accurate, large minibatch SGD")."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.convs = nn.Sequential(_conv_bn(n, n), _conv_bn(n, n, act=False))
        nn.init.zeros_(self.convs[1][1].weight)  # BatchNorm weight: the block's scale
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.convs(x) + x)


class SmallResNet(nn.Sequential):
    """A small residual network for training from scratch on small images on a CPU.

    Following the notes on modern convnets in He et al. 2019 ("Bag of tricks for image
    classification", the ResNet-C/D tweaks) and fastai's xresnet: a wide first
    convolution (5x5, 3 -> ``width`` channels), then ``stages`` stages that each halve the
    resolution with a stride-2 convolution (no max-pooling), the first keeping the width
    and each later one doubling it, followed by ``depth`` residual blocks of two 3x3
    convolutions. Convolutions have no bias and are followed by batchnorm. It ends with
    features, not logits: the classifier head (concat pooling) is added by
    :class:`ImageModel`.

    Parameters
    ----------
    width : int, default=32
        Channels after the first convolution; stage ``i`` (from 0) has ``width * 2**i``.
    depth : int, default=1
        Residual blocks per stage.
    stages : int, default=3
    stem_stride : int, default=1
        Stride of the first convolution; 2 for images much larger than 64 pixels.

    Shape:
        - Input: ``(N, 3, H, W)``
        - Output: ``(N, width * 2**(stages-1), H / (stem_stride * 2**stages), ...)``
    """

    def __init__(
        self, width: int = 32, depth: int = 1, stages: int = 3, stem_stride: int = 1
    ) -> None:
        for name, v, lo in (
            ("width", width, 1),
            ("depth", depth, 0),
            ("stages", stages, 1),
            ("stem_stride", stem_stride, 1),
        ):
            if not isinstance(v, int) or v < lo:
                raise ValueError(
                    f"small_resnet {name} must be an integer >= {lo}, got {v!r}"
                )
        layers: OrderedDict[str, nn.Module] = OrderedDict(
            stem=_conv_bn(3, width, ks=5, stride=stem_stride)
        )
        n = width
        for i in range(stages):
            out = width * 2**i
            blocks = [_conv_bn(n, out, stride=2)] + [
                ResBlock(out) for _ in range(depth)
            ]
            layers[f"stage{i + 1}"] = nn.Sequential(*blocks)
            n = out
        super().__init__(layers)
        self.n_out = n
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")


BUILTIN_ARCHS = {"small_resnet": SmallResNet}
# Short names people use for torchvision's models.
ARCH_ALIASES = {"resnext50": "resnext50_32x4d", "resnext101": "resnext101_32x8d"}


class Normalize(nn.Module):
    """Scale images to [0, 1] (uint8 input) and normalise each channel with the
    backbone's statistics. Living inside the model, it travels with the weights.

    Shape:
        - Input: ``(N, 3, H, W)``, uint8 or float in [0, 1]
        - Output: ``(N, 3, H, W)``, float
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.register_buffer(
            "mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
        )
        self.register_buffer(
            "std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.uint8:
            x = x.float().div_(255)
        # Channels-last activations run convolutions about a third faster on CPUs (and
        # on GPUs under mixed precision); the model's weights are converted to match.
        return ((x - self.mean) / self.std).contiguous(
            memory_format=torch.channels_last
        )


class CroppedKernelConv2d(nn.Conv2d):
    """``nn.Conv2d`` that, when its output is a single position, convolves with only the
    kernel taps that meet the input.

    The other taps only ever see zero padding, so the output is the same, and so is their
    (zero) gradient. That is where a ResNet's last stage runs on 32-pixel images: a 3x3
    stride-1 convolution on a 1x1 map keeps its centre tap, the stride-2 one from 2x2 to
    1x1 its lower-right 2x2 taps. On a CPU, oneDNN's backward pass for the full kernel there
    is 15-20 times slower than for the cropped one (resnet18 at 32 px spent 40% of its
    training step in it). Larger outputs take ``nn.Conv2d``'s path. The parameters and
    state dict are those of the ``nn.Conv2d`` it replaces.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        (kh, kw), (ph, pw) = self.kernel_size, self.padding
        (sh, sw) = self.stride
        single = (h + 2 * ph - kh) // sh == 0 and (w + 2 * pw - kw) // sw == 0
        if not (single and ph + h <= kh and pw + w <= kw) or (h, w) == (kh, kw):
            return super().forward(x)
        # The one output position sees input rows -ph .. kh-1-ph: all h of them.
        weight = self.weight[:, :, ph : ph + h, pw : pw + w]
        return F.conv2d(x, weight, self.bias, 1, 0, 1, self.groups)

    @staticmethod
    def applies(conv: nn.Module) -> bool:
        """Whether ``conv`` is a plain ``nn.Conv2d`` with numeric zero padding, no
        dilation and a kernel larger than 1x1 (so there is something to crop)."""
        return (
            type(conv) is nn.Conv2d
            and isinstance(conv.padding, tuple)
            and conv.padding_mode == "zeros"
            and conv.dilation == (1, 1)
            and conv.kernel_size != (1, 1)
        )


def crop_kernels(model: nn.Module) -> nn.Module:
    """Swap, in place, every convolution of ``model`` for which
    :meth:`CroppedKernelConv2d.applies` into a :class:`CroppedKernelConv2d` holding the
    same parameters (same state dict keys and values). Returns ``model``."""
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if CroppedKernelConv2d.applies(child):
                new = CroppedKernelConv2d(
                    child.in_channels,
                    child.out_channels,
                    child.kernel_size,
                    stride=child.stride,
                    padding=child.padding,
                    groups=child.groups,
                    bias=child.bias is not None,
                    device="meta",
                )
                new.weight, new.bias = child.weight, child.bias
                new.train(child.training)
                setattr(parent, name, new)
    return model


def _children(model: nn.Module) -> list[tuple[str, nn.Module]]:
    # Auxiliary classifiers (GoogLeNet, Inception) hang off the trunk; they are not in it.
    return [
        (n, c)
        for n, c in model.named_children()
        if c is not None and "Aux" not in type(c).__name__
    ]


_CLASSIFIER_NAMES = ("classifier", "fc", "head", "heads", "last_linear")


def _has_conv(m: nn.Module) -> bool:
    return any(isinstance(s, nn.Conv2d) for s in m.modules())


def check_arch(arch: str) -> None:
    """Raise naming ``arch`` unless it is a built-in body or a torchvision
    classification model (or an alias of one)."""
    if arch in BUILTIN_ARCHS:
        return
    from torchvision import models

    if ARCH_ALIASES.get(arch, arch) not in models.list_models(module=models):
        raise ValueError(
            f"unknown arch {arch!r}: use 'small_resnet' or a torchvision "
            "classification model name such as 'resnet34'"
        )


def create_body(
    arch: str, arch_kwargs: dict[str, Any] | None = None, weights: Any = None
) -> nn.Sequential:
    """The convolutional body of ``arch``: randomly initialised, or with torchvision's
    ``weights`` (an enum member; torchvision downloads them unless cached).

    For a torchvision model, its children up to (not including) its last adaptive
    average pooling; for models that pool in ``forward`` instead, its children up to the
    last one holding a convolution. The children keep their names, so the body's state
    dict uses torchvision's keys (``conv1.weight``, ``layer1.0.bn1.running_mean``...)
    and a torchvision state dict loads into it.
    """
    kwargs = dict(arch_kwargs or {})
    arch = ARCH_ALIASES.get(arch, arch)
    if arch in BUILTIN_ARCHS:
        if weights is not None:
            raise ValueError(f"arch {arch!r} has no registry weights")
        try:
            body = BUILTIN_ARCHS[arch](**kwargs)
        except TypeError as err:
            raise ValueError(
                f"arch_kwargs {kwargs} do not fit arch {arch!r}: {err}"
            ) from None
        return crop_kernels(body)
    from torchvision import models

    names = models.list_models(module=models)
    if arch not in names:
        raise ValueError(
            f"unknown arch {arch!r}: use one of {sorted(BUILTIN_ARCHS)} or a torchvision "
            f"classification model such as 'resnet34' (all: "
            "torchvision.models.list_models(module=torchvision.models))"
        )
    if arch in ("googlenet", "inception_v3") and weights is None:
        kwargs.setdefault("init_weights", True)
    try:
        full = models.get_model(arch, weights=weights, **kwargs)
    except TypeError as err:
        raise ValueError(
            f"arch_kwargs {kwargs} do not fit arch {arch!r}: {err}"
        ) from None
    children = _children(full)
    pools = [
        i for i, (_, c) in enumerate(children) if isinstance(c, nn.AdaptiveAvgPool2d)
    ]
    if pools:
        cut = pools[-1]
    else:
        # Pooled in forward(): keep the convolutional children, stopping at the
        # classifier (SqueezeNet's classifier is itself a convolution).
        heads = [i for i, (n, _) in enumerate(children) if n in _CLASSIFIER_NAMES]
        convs = [i for i, (_, c) in enumerate(children) if _has_conv(c)]
        cut = heads[0] if heads else (convs[-1] + 1 if convs else 0)
    kept = children[:cut]
    if not kept or any(isinstance(c, nn.ModuleList) for _, c in kept):
        raise ValueError(
            f"arch {arch!r} cannot be cut into a convolutional body before its pooling; "
            "use a convolutional classification model (resnet, resnext, efficientnet, "
            "convnext, regnet, densenet, mobilenet...)"
        )
    return crop_kernels(nn.Sequential(OrderedDict(kept)))


def body_features(body: nn.Module) -> int:
    """Channels of the body's output, by running a small dummy batch through it."""
    n_out = getattr(body, "n_out", None)
    if isinstance(n_out, int):
        return n_out
    was_training = body.training
    body.eval()
    try:
        with torch.no_grad():
            try:
                out = body(torch.zeros(1, 3, 64, 64))
            except RuntimeError:  # a few bodies (Inception) need larger inputs
                out = body(torch.zeros(1, 3, 160, 160))
    finally:
        body.train(was_training)
    if out.dim() != 4:
        raise ValueError(
            f"the body's output has shape {tuple(out.shape)}; a (N, C, H, W) feature map "
            "is needed for the pooling head"
        )
    return out.shape[1]


def create_head(
    n_in: int, n_out: int, dropout: float = 0.5, hidden: int = 512
) -> nn.Sequential:
    """fastai's head: concat pooling -> flatten -> batchnorm -> dropout(p/2) -> linear ->
    ReLU -> batchnorm -> dropout(p) -> linear.

    Shape:
        - Input: ``(N, n_in, H, W)``
        - Output: ``(N, n_out)``
    """
    return nn.Sequential(
        AdaptiveConcatPool2d(1),
        nn.Flatten(),
        LinBnDrop(2 * n_in, hidden, p=dropout / 2, act=nn.ReLU(inplace=True)),
        LinBnDrop(hidden, n_out, p=dropout),
    )


class ImageModel(nn.Module):
    """Normalisation, a convolutional body and a classification head.

    Shape:
        - Input: ``(N, 3, H, W)``, uint8 or float in [0, 1]; any H, W the body accepts
          (the head pools globally, which is what lets progressive resizing change the
          size between stages)
        - Output: ``(N, n_out)`` logits
    """

    def __init__(
        self,
        body: nn.Module,
        head: nn.Module,
        mean: Sequence[float],
        std: Sequence[float],
    ) -> None:
        super().__init__()
        self.normalize = Normalize(mean, std)
        self.body = body
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(self.normalize(x)))


def _flat_body(body: nn.Module) -> list[nn.Module]:
    children = list(body.children())
    # A body that is one container ("features") splits along that container's children.
    while len(children) == 1 and len(list(children[0].children())) > 1:
        children = list(children[0].children())
    return children


def splitter(model: ImageModel) -> list[list[nn.Module]]:
    """Three layer groups: early body, late body, head (plus the parameter-free
    normalisation). The body is cut three quarters of the way through its top-level
    children: a torchvision ResNet splits before ``layer3``, as in fastai."""
    children = _flat_body(model.body)
    if len(children) < 2:
        return [[model.normalize, model.body], [model.head]]
    cut = max(1, min(len(children) - 1, round(len(children) * 3 / 4)))
    return [children[:cut], children[cut:], [model.normalize, model.head]]


def _strip_prefix(state: dict[str, Any]) -> dict[str, Any]:
    for prefix in ("module.", "body."):
        if state and all(k.startswith(prefix) for k in state):
            state = {k[len(prefix) :]: v for k, v in state.items()}
    return state


def load_body_weights(body: nn.Module, path: str | Path, arch: str) -> None:
    """Load a state dict file into ``body``: a file written by
    ``ImageClassifier.save_body`` or a whole torchvision model's state dict (its
    classifier's keys are ignored). Read with ``torch.load(weights_only=True)``, so a file
    cannot run code. A file for another architecture raises, naming the first layer that
    does not fit."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ValueError(f"cannot load weights file {str(path)!r}: {err}") from err
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        raise ValueError(f"weights file {str(path)!r} does not hold a state dict")
    if "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    state = _strip_prefix(state)
    own = body.state_dict()
    roots = {k.split(".")[0] for k in own}
    for key, value in own.items():
        if key not in state:
            raise ValueError(
                f"weights file {str(path)!r} does not fit arch {arch!r}: it has no "
                f"{key!r} (shape {tuple(value.shape)})"
            )
        if tuple(state[key].shape) != tuple(value.shape):
            raise ValueError(
                f"weights file {str(path)!r} does not fit arch {arch!r}: layer {key!r} "
                f"has shape {tuple(state[key].shape)} in the file but "
                f"{tuple(value.shape)} in the model"
            )
    extra = [k for k in state if k.split(".")[0] in roots and k not in own]
    if extra:
        raise ValueError(
            f"weights file {str(path)!r} does not fit arch {arch!r}: layer {extra[0]!r} "
            "is in the file but not in the model"
        )
    body.load_state_dict({k: state[k] for k in own})
