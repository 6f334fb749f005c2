"""timm backbones (sslbench_plugins.backbones.timm_backbones)."""

from sslbench._core.plugins import PluginHost


def test_resnet_stem_is_adapted_for_small_images_only():
    host = PluginHost.from_environment()
    small, large = host.backbone("resnet18").create(32), host.backbone("resnet18").create(128)
    assert small.stem_adapted and small.net.conv1.stride == (1, 1)
    assert not large.stem_adapted and large.net.conv1.stride == (2, 2)
