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
