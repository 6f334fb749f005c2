import pytest
import torch

from sslbench._core.plugins import PluginHost


@pytest.mark.parametrize("name, resolution", [("smallcnn", 32), ("resnet18", 32),
                                              ("resnet18", 96)])
def test_backbone_exposes_pooled_features_per_stage(name, resolution):
    backbone = PluginHost.from_environment().backbone(name).create(resolution)
    x = torch.rand(2, 3, resolution, resolution)
    stages = backbone.forward_stages(x)
    assert [f.shape for f in stages] == [(2, d) for d in backbone.stage_dims]
    assert backbone(x).shape == (2, backbone.feature_dim)
    assert torch.allclose(backbone(x), stages[-1], atol=1e-5)


def test_input_statistics_travel_with_the_state_dict():
    host = PluginHost.from_environment()
    a = host.backbone("smallcnn").create(16)
    a.set_input_stats(torch.tensor([0.1, 0.2, 0.3]), torch.tensor([0.5, 0.5, 0.5]))
    b = host.backbone("smallcnn").create(16)
    b.load_state_dict(a.state_dict())
    assert torch.allclose(b.input_mean.flatten(), torch.tensor([0.1, 0.2, 0.3]))
