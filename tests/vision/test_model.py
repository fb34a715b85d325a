from __future__ import annotations

import pytest
import torch
from torch import nn
from torchvision import models

from deepfit import AdaptiveConcatPool2d, Learner
from deepfit.layers import Dropout
from vision.model import (
    CroppedKernelConv2d,
    ImageModel,
    Normalize,
    SmallResNet,
    body_features,
    create_body,
    create_head,
    crop_kernels,
    load_body_weights,
    splitter,
)


def image_model(arch: str, n_out: int = 3, **kw) -> ImageModel:
    body = create_body(arch, kw)
    head = create_head(body_features(body), n_out)
    return ImageModel(body, head, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))


def test_small_resnet_follows_the_modern_convnet_notes():
    net = SmallResNet(width=8, depth=2, stages=3)
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert convs[0].kernel_size == (5, 5) and convs[0].out_channels == 8
    assert all(c.bias is None for c in convs)  # batchnorm follows every convolution
    assert not any(isinstance(m, nn.MaxPool2d) for m in net.modules())
    downs = [c for c in convs if c.stride == (2, 2)]
    assert len(downs) == 3 and [c.out_channels for c in downs] == [8, 16, 32]
    out = net(torch.randn(2, 3, 28, 28))
    assert out.shape == (2, 32, 4, 4) and net.n_out == 32
    # Residual blocks start as the identity (zero-initialised last batchnorm scale).
    blocks = [m for m in net.modules() if type(m).__name__ == "ResBlock"]
    assert len(blocks) == 6 and all(
        not b.convs[1][1].weight.detach().any() for b in blocks
    )


def test_small_resnet_rejects_bad_sizes():
    with pytest.raises(ValueError, match="width"):
        SmallResNet(width=0)


def test_head_is_concat_pool_bn_dropout_linear_twice():
    head = create_head(16, 5, dropout=0.4)
    flat = [
        type(m)
        for m in head.modules()
        if not isinstance(
            m, (nn.Sequential, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)
        )
    ]
    assert flat == [
        AdaptiveConcatPool2d,
        nn.Flatten,
        nn.BatchNorm1d,
        Dropout,
        nn.Linear,
        nn.ReLU,
        nn.BatchNorm1d,
        Dropout,
        nn.Linear,
    ]
    drops = [m.p for m in head.modules() if isinstance(m, nn.Dropout)]
    assert drops == [0.2, 0.4]
    assert head(torch.randn(4, 16, 3, 3)).shape == (4, 5)


def test_resnet_body_is_cut_before_pooling_with_torchvision_keys():
    body = create_body("resnet18")
    assert list(dict(body.named_children())) == [
        "conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4"
    ]  # fmt: skip
    tv = models.resnet18()
    missing, unexpected = tv.load_state_dict(body.state_dict(), strict=False)
    assert missing == ["fc.weight", "fc.bias"] and unexpected == []
    assert body_features(body) == 512


def test_resnext50_body_and_groups():
    model = image_model("resnext50", n_out=2)  # the alias of resnext50_32x4d
    assert body_features(model.body) == 2048
    groups = splitter(model)
    assert len(groups) == 3
    Learner(
        model, nn.functional.cross_entropy, layer_groups=groups
    )  # covers every parameter
    assert model(torch.randint(0, 255, (2, 3, 32, 32), dtype=torch.uint8)).shape == (
        2,
        2,
    )


def test_splitter_cuts_a_resnet_before_layer3_like_fastai():
    model = image_model("resnet18")
    early, late, head = splitter(model)
    assert early[-1] is model.body.layer2 and late == [
        model.body.layer3,
        model.body.layer4,
    ]
    assert model.head in head
    ids = {id(p) for g in (early, late, head) for m in g for p in m.parameters()}
    assert ids == {id(p) for p in model.parameters()}


@pytest.mark.parametrize(
    "arch",
    [
        "efficientnet_b0",
        "mobilenet_v2",
        pytest.param("densenet121", marks=pytest.mark.slow),
    ],
)
def test_other_torchvision_families_cut_and_split(arch):
    model = image_model(arch, n_out=2)
    assert len(splitter(model)) == 3
    model.eval()
    assert model(torch.zeros(1, 3, 64, 64)).shape == (1, 2)


def test_unknown_or_uncuttable_arch():
    with pytest.raises(ValueError, match="unknown arch 'resnet35'"):
        create_body("resnet35")
    with pytest.raises(ValueError, match="cannot be cut"):
        create_body("maxvit_t")


def test_normalize_scales_uint8_and_uses_the_statistics():
    norm = Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    x = torch.tensor([0, 255], dtype=torch.uint8).view(1, 1, 1, 2).expand(1, 3, 1, 2)
    assert norm(x)[0, :, 0].tolist() == [[-1.0, 1.0]] * 3
    assert torch.equal(norm(x.float() / 255), norm(x))


def test_load_body_weights_from_torchvision_state_dict_and_wrong_arch(tmp_path):
    tv = models.resnet18()
    path = tmp_path / "r18.pth"
    torch.save(tv.state_dict(), path)  # a whole model's state dict, classifier included
    body = create_body("resnet18")
    load_body_weights(body, path, "resnet18")
    assert torch.equal(body.layer4[1].conv2.weight, tv.layer4[1].conv2.weight)
    with pytest.raises(ValueError, match=r"'layer1\.2\.conv1\.weight'"):
        load_body_weights(create_body("resnet34"), path, "resnet34")  # r18 lacks blocks
    torch.save(models.resnet34().state_dict(), path)
    with pytest.raises(ValueError, match=r"'layer1\.2\.conv1\.weight' is in the file"):
        load_body_weights(create_body("resnet18"), path, "resnet18")
    torch.save(SmallResNet(width=8).state_dict(), path)
    with pytest.raises(
        ValueError, match=r"'stem\.0\.weight' has shape \(8, 3, 5, 5\) in the file"
    ):
        load_body_weights(SmallResNet(width=16), path, "small_resnet")
    path.write_bytes(b"garbage")
    with pytest.raises(ValueError, match="cannot load weights file"):
        load_body_weights(SmallResNet(width=8), path, "small_resnet")


@pytest.mark.parametrize(
    "kw",
    [
        {"kernel_size": 3, "padding": 1, "bias": False},
        {"kernel_size": 3, "padding": 1, "stride": 2, "bias": False},
        {"kernel_size": 5, "padding": 2, "bias": True},
        {"kernel_size": 3, "padding": 1, "bias": False, "groups": 4},
        {"kernel_size": (3, 5), "padding": (1, 2), "stride": (2, 1), "bias": True},
    ],
)
def test_cropped_kernel_conv_matches_conv2d(kw):
    torch.manual_seed(0)
    conv = nn.Conv2d(8, 8, **kw)
    (crop,) = crop_kernels(nn.Sequential(conv))
    assert isinstance(crop, CroppedKernelConv2d) and crop.weight is conv.weight
    for hw in (1, 2, 3, 5):
        x = torch.randn(4, 8, hw, hw)
        expected = nn.Conv2d.forward(conv, x)
        (grad_conv,) = torch.autograd.grad(expected.square().sum(), conv.weight)
        got = crop(x)
        (grad_crop,) = torch.autograd.grad(got.square().sum(), crop.weight)
        torch.testing.assert_close(got, expected)
        torch.testing.assert_close(grad_crop, grad_conv)


def test_cropped_kernel_conv_uses_only_the_taps_that_meet_the_input(monkeypatch):
    import vision.model

    kernels = []
    conv2d = vision.model.F.conv2d

    def spy(x, weight, *args):
        kernels.append(tuple(weight.shape[-2:]))
        return conv2d(x, weight, *args)

    monkeypatch.setattr(vision.model.F, "conv2d", spy)
    conv = nn.Conv2d(4, 4, 3, padding=1, stride=2)
    (crop,) = crop_kernels(nn.Sequential(conv))
    for hw, used in ((1, (slice(1, 2), slice(1, 2))), (2, (slice(1, 3), slice(1, 3)))):
        out = crop(torch.randn(2, 4, hw, hw))
        assert out.shape[-2:] == (1, 1)
        assert kernels[-1] == (hw, hw)  # the cropped kernel ran, not the 3x3 one
        (g,) = torch.autograd.grad(out.sum(), crop.weight)
        assert g[:, :, used[0], used[1]].abs().sum() > 0
        g[:, :, used[0], used[1]] = 0
        assert g.abs().sum() == 0


def test_cropped_kernels_leave_the_state_dict_and_other_layers_alone():
    body = create_body("resnet18")
    crops = {n for n, m in body.named_modules() if isinstance(m, CroppedKernelConv2d)}
    # Every convolution but the 1x1 downsamples: the 7x7 stem and the 16 3x3 ones.
    assert len(crops) == 17 and "conv1" in crops and "layer4.1.conv2" in crops
    assert "layer4.0.downsample.0" not in crops
    tv = models.resnet18()
    assert list(body.state_dict()) == [
        k for k in tv.state_dict() if not k.startswith("fc.")
    ]
    for other in (
        nn.Conv2d(2, 2, 3, padding=2, dilation=2),
        nn.Conv2d(2, 2, 1),
        nn.Conv2d(2, 2, 3, padding=1, padding_mode="reflect"),
        nn.Conv2d(2, 2, 3, padding="same"),
    ):
        assert not CroppedKernelConv2d.applies(other)
