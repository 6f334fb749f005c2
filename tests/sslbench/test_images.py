"""Decoding image files (sslbench.images): whatever their mode, RGB with 8 bits per channel."""


def test_16_bit_and_float_greyscale_keep_their_values(tmp_path):
    import numpy as np
    from PIL import Image

    from sslbench.images import decode_file
    ramp = np.linspace(0, 65535, 32 * 32).reshape(32, 32).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "deep.png")               # 16-bit greyscale PNG
    assert Image.open(tmp_path / "deep.png").mode.startswith("I")
    x = decode_file(str(tmp_path / "deep.png"), 32).float()
    assert x.min() < 5 and x.max() > 250 and 100 < x.mean() < 155     # a ramp, not white
    Image.fromarray((ramp / 65535).astype(np.float32)).save(tmp_path / "float.tif")
    y = decode_file(str(tmp_path / "float.tif"), 32).float()
    assert (x - y).abs().max() <= 1


def test_exif_orientation_is_applied(tmp_path):
    """A phone stores a portrait photo sideways with an orientation tag: decoded upright, as
    any viewer shows it (for a rotation task, anything else corrupts inputs and targets)."""
    import numpy as np
    from PIL import Image

    from sslbench.images import decode_file
    upright = np.zeros((40, 40, 3), np.uint8)
    upright[:10] = 255                                   # white at the top, seen upright
    stored = Image.fromarray(upright).transpose(Image.Transpose.ROTATE_90)   # as the camera
    exif = Image.Exif()
    exif[0x0112] = 6                                     # "rotate 90 degrees clockwise to view"
    stored.save(tmp_path / "phone.jpg", exif=exif, quality=95)
    stored.save(tmp_path / "no-tag.jpg", quality=95)     # the control: no tag, as stored
    x = decode_file(str(tmp_path / "phone.jpg"), 20).float().mean(0)
    assert x[:2].mean() > 200 and x[-2:].mean() < 50     # white on top: upright
    y = decode_file(str(tmp_path / "no-tag.jpg"), 20).float().mean(0)
    assert y[:2].mean() < 200                            # without the tag it is sideways


def test_a_decompression_bomb_is_one_line_naming_it(tmp_path):
    """A small PNG that claims 20000 x 20000 pixels: named, never decoded (it would take
    1.2 GB), whether read alone or through a data set's duplicate check."""
    import pytest
    from PIL import Image

    from sslbench.errors import SSLBenchError
    from sslbench.images import decode_file
    Image.new("L", (20000, 20000)).save(tmp_path / "bomb.png", optimize=True)
    assert (tmp_path / "bomb.png").stat().st_size < 2_000_000
    with pytest.raises(SSLBenchError, match="bomb.png.*decompression bomb"):
        decode_file(str(tmp_path / "bomb.png"), 32)
