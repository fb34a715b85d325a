from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from tests.vision.images import colour_classes, write_pngs
from vision import image_folder, load_images, read_image
from vision.data import Images, _array_to_tensor, as_images, check_readable


def save(img: Image.Image, path, **kw) -> str:
    img.save(path, **kw)
    return str(path)


# ---- files: colour modes -----------------------------------------------------------


def test_grey_file_is_repeated_over_three_channels(tmp_path):
    grey = np.arange(64, dtype=np.uint8).reshape(8, 8) * 3
    x = read_image(save(Image.fromarray(grey, "L"), tmp_path / "g.png"))
    assert x.shape == (3, 8, 8) and x.dtype == torch.uint8
    for c in range(3):
        assert np.array_equal(x[c].numpy(), grey)


def test_sixteen_bit_grey_is_scaled_to_eight_bits(tmp_path):
    grey = np.full((4, 4), 65535, dtype=np.uint16)
    grey[0, 0] = 0
    path = save(Image.fromarray(grey), tmp_path / "g16.png")
    x = read_image(path)
    assert x.shape == (3, 4, 4) and int(x[0, 1, 1]) == 255 and int(x[0, 0, 0]) == 0
    # A dark 16-bit image stays dark: scaled by the bit depth, not by its own maximum.
    dark = save(Image.fromarray(np.full((4, 4), 200, np.uint16)), tmp_path / "d.png")
    assert read_image(dark).max() <= 1
    mid = save(Image.fromarray(np.full((4, 4), 32768, np.uint16)), tmp_path / "m.png")
    assert read_image(mid).unique().tolist() == [128]


def test_cmyk_is_converted_to_rgb(tmp_path):
    cmyk = np.zeros((4, 6, 4), dtype=np.uint8)
    cmyk[:, :3] = (0, 255, 255, 0)  # red
    cmyk[:, 3:] = (255, 0, 255, 0)  # green
    path = save(Image.fromarray(cmyk, "CMYK"), tmp_path / "c.tiff")
    x = read_image(path)
    assert x[:, 0, 0].tolist() == [255, 0, 0]
    assert x[:, 0, 5].tolist() == [0, 255, 0]


def test_cmyk_jpeg_is_converted_to_rgb(tmp_path):
    cmyk = np.zeros((16, 16, 4), dtype=np.uint8)
    cmyk[...] = (0, 255, 255, 0)
    path = save(Image.fromarray(cmyk, "CMYK"), tmp_path / "c.jpg", quality=100)
    r, g, b = read_image(path)[:, 8, 8].tolist()
    assert r > 240 and g < 15 and b < 15


def test_palette_goes_through_its_palette(tmp_path):
    img = Image.new("P", (4, 2))
    img.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)  # index 0 red, 1 blue
    img.putdata([0, 0, 1, 1, 1, 0, 0, 1])
    x = read_image(save(img, tmp_path / "p.png"))
    assert x[:, 0, 0].tolist() == [255, 0, 0]
    assert x[:, 0, 2].tolist() == [0, 0, 255]


def test_palette_transparency_and_rgba_composite_over_white(tmp_path):
    img = Image.new("P", (2, 1))
    img.putpalette([0, 0, 0, 0, 255, 0] + [0] * 762)
    img.putdata([0, 1])
    img.info["transparency"] = 0  # index 0 (black) is transparent
    x = read_image(save(img, tmp_path / "pt.png", transparency=0))
    assert x[:, 0, 0].tolist() == [255, 255, 255]
    assert x[:, 0, 1].tolist() == [0, 255, 0]
    rgba = np.zeros((1, 3, 4), dtype=np.uint8)
    rgba[0, 0] = (0, 0, 255, 255)  # opaque blue
    rgba[0, 1] = (0, 0, 0, 0)  # fully transparent black
    rgba[0, 2] = (0, 0, 0, 128)  # half-transparent black
    x = read_image(save(Image.fromarray(rgba, "RGBA"), tmp_path / "a.png"))
    assert x[:, 0, 0].tolist() == [0, 0, 255]
    assert x[:, 0, 1].tolist() == [255, 255, 255]
    assert all(126 <= v <= 128 for v in x[:, 0, 2].tolist())


def test_grey_with_alpha(tmp_path):
    la = np.array([[[10, 255], [10, 0]]], dtype=np.uint8)
    x = read_image(save(Image.fromarray(la, "LA"), tmp_path / "la.png"))
    assert x[:, 0, 0].tolist() == [10, 10, 10] and x[:, 0, 1].tolist() == [255] * 3


def test_jpeg_draft_decoding_keeps_at_least_the_asked_size(tmp_path):
    X, _ = colour_classes(1, size=200)
    path = save(Image.fromarray(X[0]).resize((400, 300)), tmp_path / "big.jpg")
    x = read_image(path, min_size=64)
    assert min(x.shape[1:]) >= 64 and x.shape[1:] != (300, 400)


def test_missing_and_corrupt_files_name_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.png"):
        read_image(tmp_path / "nope.png")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(ValueError, match=r"bad\.png"):
        read_image(bad)
    with pytest.raises(ValueError, match=r"bad\.png"):
        check_readable([str(bad)])
    with pytest.raises(ValueError, match=r"gone\.png"):
        check_readable([str(tmp_path / "gone.png")])


# ---- arrays ------------------------------------------------------------------------


def test_grey_arrays_are_repeated_and_not_modified():
    X = np.random.default_rng(0).integers(0, 256, size=(5, 7, 9), dtype=np.uint8)
    before = X.copy()
    t = _array_to_tensor(X)
    assert t.shape == (5, 3, 7, 9) and t.dtype == torch.uint8
    assert all(torch.equal(t[:, c], torch.from_numpy(X)) for c in range(3))
    assert np.array_equal(X, before)
    assert _array_to_tensor(X[..., None]).shape == (5, 3, 7, 9)


def test_float_arrays_stay_float_and_must_lie_in_unit_range():
    X = np.random.default_rng(0).random((2, 4, 4, 3)).astype(np.float64)
    t = _array_to_tensor(X)
    assert t.dtype == torch.float32 and torch.allclose(
        t, torch.from_numpy(X).permute(0, 3, 1, 2).float()
    )
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        _array_to_tensor(X * 255)
    with pytest.raises(ValueError, match="NaN"):
        _array_to_tensor(np.full((1, 2, 2), np.nan))


def test_integer_arrays_in_byte_range_are_accepted_others_rejected():
    assert (
        _array_to_tensor(np.full((1, 2, 2), 200, dtype=np.int64)).dtype == torch.uint8
    )
    with pytest.raises(ValueError, match="0-255"):
        _array_to_tensor(np.full((1, 2, 2), 300, dtype=np.int64))
    # uint16 in range (torch has no uint16 ops) and a flipped view (negative strides)
    X = np.arange(2 * 3 * 5, dtype=np.uint16).reshape(2, 3, 5)
    assert _array_to_tensor(X)[:, 0].tolist() == X.tolist()
    assert _array_to_tensor(X[:, ::-1])[:, 0].tolist() == X[:, ::-1].tolist()
    with pytest.raises(ValueError, match=r"0-255.*uint16"):
        _array_to_tensor(X * 300)


def test_one_colour_image_is_not_read_as_many_grey_ones():
    img = np.zeros((28, 28, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match=r"\(28, 28, 3\).*X\[None\]"):
        _array_to_tensor(img)
    assert _array_to_tensor(img[None]).shape == (1, 3, 28, 28)
    assert _array_to_tensor(np.zeros((5, 8, 3), np.uint8)[..., None]).shape == (
        5,
        3,
        8,
        3,
    )


def test_alpha_channels_of_arrays_composite_over_white():
    rgba = np.zeros((1, 1, 2, 4), dtype=np.uint8)
    rgba[0, 0, 0] = (0, 0, 255, 255)
    t = _array_to_tensor(rgba)
    assert t[0, :, 0, 0].tolist() == [0, 0, 255] and t[0, :, 0, 1].tolist() == [255] * 3
    la = np.array([[[[10, 255], [10, 0]]]], dtype=np.uint8)
    t = _array_to_tensor(la)
    assert t[0, :, 0, 0].tolist() == [10] * 3 and t[0, :, 0, 1].tolist() == [255] * 3


@pytest.mark.parametrize(
    "shape, match",
    [((4, 4), "shape"), ((2, 3, 8, 8), "moveaxis"), ((2, 8, 8, 5), "C in 1..4")],
)
def test_bad_array_shapes(shape, match):
    with pytest.raises(ValueError, match=match):
        _array_to_tensor(np.zeros(shape, dtype=np.uint8))


# ---- paths, DataFrames, folders ------------------------------------------------------


def test_image_folder_and_dataframe_inputs(tmp_path):
    X, y = colour_classes(6, size=8)
    write_pngs(X, tmp_path / "train", labels=y)
    (tmp_path / "train" / "notes.txt").write_text("not an image")
    paths, labels = image_folder(tmp_path / "train")
    assert len(paths) == 6 and sorted(labels) == sorted(y.tolist())
    assert all(p.endswith(".png") for p in paths)
    rel = [str(p).replace(str(tmp_path) + "/", "") for p in paths]
    df = pd.DataFrame({"file": rel, "label": labels})
    images = as_images(df, path_col="file", root=tmp_path)
    assert images.paths == paths
    assert as_images(df[["file"]], root=tmp_path).paths == paths
    with pytest.raises(ValueError, match="path_col"):
        as_images(df)
    with pytest.raises(ValueError, match="'nope' is not a column"):
        as_images(df, path_col="nope")
    with pytest.raises(TypeError, match="image_folder"):
        as_images(str(tmp_path))
    with pytest.raises(TypeError, match=r"X\[1\]"):
        as_images([paths[0], None])
    with pytest.raises(FileNotFoundError):
        image_folder(tmp_path / "missing")
    (tmp_path / "empty" / "a").mkdir(parents=True)
    with pytest.raises(ValueError, match="no images"):
        image_folder(tmp_path / "empty")


def test_load_images_decodes_and_resizes_once(tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    for i, (h, w) in enumerate([(20, 30), (40, 16), (24, 24)]):  # mixed sizes
        img = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
        paths.append(save(Image.fromarray(img), tmp_path / f"{i}.png"))
    X = load_images(paths, 12, num_workers=0)
    assert X.shape == (3, 12, 12, 3) and X.dtype == np.uint8
    assert np.array_equal(load_images(paths, 12, num_workers=2), X)
    arr = load_images(np.zeros((2, 30, 20), dtype=np.uint8), 10)
    assert arr.shape == (2, 10, 10, 3)


def test_images_subset_keeps_kind():
    t = torch.zeros(4, 3, 2, 2, dtype=torch.uint8)
    assert Images(tensor=t).subset(np.array([0, 2])).tensor.shape[0] == 2
    assert Images(paths=["a", "b", "c"]).subset(np.array([2])).paths == ["c"]
