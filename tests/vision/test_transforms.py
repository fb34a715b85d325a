from __future__ import annotations

import pytest
import torch

from vision.data import _one_thread
from vision.transforms import (
    RandomDihedral,
    dihedral,
    eval_transform,
    resize_batch,
    train_transform,
    tta_views,
)

SIZE = 32


def marked_image() -> torch.Tensor:
    """A dark image with one bright blob off every symmetry axis of the square, so each
    of the eight symmetries puts it somewhere else."""
    x = torch.full((3, SIZE, SIZE), 20, dtype=torch.uint8)
    x[:, 4:9, 11:16] = 250  # centre (6, 13)
    return x


def blob_centre(x: torch.Tensor) -> torch.Tensor:
    w = x.float().mean(0)
    w = torch.where(w > w.mean() + 2 * w.std(), w, torch.zeros_like(w))
    rows, cols = torch.meshgrid(
        torch.arange(x.shape[1]).float(),
        torch.arange(x.shape[2]).float(),
        indexing="ij",
    )
    return torch.stack([(w * rows).sum(), (w * cols).sum()]) / w.sum()


REFERENCES = torch.stack([blob_centre(dihedral(marked_image(), k)) for k in range(8)])


def symmetry_of(x: torch.Tensor) -> int:
    """Which of the eight symmetries of marked_image() ``x`` is nearest to."""
    return int((REFERENCES - blob_centre(x)).norm(dim=1).argmin())


def draws(augment: str, n: int = 200) -> set[int]:
    # Crops off (scale 1) so the blob stays in view; rotation and lighting stay on.
    t = train_transform(augment, SIZE, crop_scale=(1.0, 1.0))
    torch.manual_seed(0)
    with _one_thread():
        return {symmetry_of(t(marked_image())) for _ in range(n)}


def test_dihedral_gives_eight_distinct_images_identity_first():
    x = marked_image()
    views = [dihedral(x, k) for k in range(8)]
    assert torch.equal(views[0], x)
    assert len({tuple(v.flatten().tolist()) for v in views}) == 8
    assert torch.equal(dihedral(x, 1), x.flip(-1)) and torch.equal(
        dihedral(x, 2), x.flip(-2)
    )


def test_top_down_uses_all_eight_symmetries():
    assert draws("top-down") == set(range(8))


def test_side_on_flips_horizontally_but_never_vertically():
    # 0 is the identity, 1 the horizontal mirror; anything else turns the image over.
    assert draws("side-on") == {0, 1}


def test_random_dihedral_is_uniform_enough():
    torch.manual_seed(0)
    t = RandomDihedral()
    counts = torch.zeros(8)
    for _ in range(400):
        counts[symmetry_of(t(marked_image()))] += 1
    assert counts.min() > 25  # 50 expected each


@pytest.mark.parametrize("augment", ["side-on", "top-down", None])
def test_presets_give_the_size_and_dtype(augment):
    for dtype in (torch.uint8, torch.float32):
        x = torch.rand(3, 40, 50)
        x = (x * 255).to(dtype) if dtype == torch.uint8 else x
        out = train_transform(augment, 24)(x)
        assert out.shape == (3, 24, 24) and out.dtype == dtype


def test_unknown_preset_raises():
    with pytest.raises(ValueError, match="augment"):
        train_transform("upside-down", 24)


def test_eval_transform_resizes_the_shorter_side_and_centre_crops():
    x = torch.zeros(3, 20, 40, dtype=torch.uint8)
    x[:, :, 10:30] = 200
    out = eval_transform(10)(x)
    assert out.shape == (3, 10, 10) and int(out.min()) > 150  # only the centre is kept
    batch = resize_batch(torch.stack([x, x]), 10)
    assert torch.equal(batch[0], out)
    same = torch.zeros(2, 3, 10, 10)
    assert resize_batch(same, 10) is same


def test_tta_views():
    x = marked_image()[None]
    assert len(tta_views(None)) == 1
    side = tta_views("side-on")
    assert len(side) == 2 and torch.equal(side[1](x), x.flip(-1))
    top = tta_views("top-down")
    assert len(top) == 8 and torch.equal(top[0](x), x)
    assert len({tuple(v(x).flatten().tolist()) for v in top}) == 8
