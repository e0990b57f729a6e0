import numpy as np
import pytest
import torch
from torch import nn

from course_utils import torch as cu


def tiny_model():
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))


def tiny_data(n=60, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = np.zeros((n, 8, 8), np.uint8)
    for i, label in enumerate(y):  # a bright bar whose row tells the class: learnable
        x[i, 1 + 2 * label] = 255
    return x, y


def test_get_device_is_cpu_here_and_can_be_forced(monkeypatch):
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert cu.get_device().type in (expected, "mps")
    monkeypatch.setenv("COURSE_DEVICE", "cpu")
    assert cu.get_device() == torch.device("cpu")
    assert "PyTorch" in cu.device_report()


def test_seed_everything_makes_runs_repeatable():
    cu.seed_everything(3)
    a = torch.rand(3), np.random.rand(3)
    cu.seed_everything(3)
    b = torch.rand(3), np.random.rand(3)
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def test_seed_everything_leaves_deterministic_kernels_to_an_opt_in():
    try:
        cu.seed_everything(0, deterministic=True)
        assert torch.are_deterministic_algorithms_enabled()
        cu.seed_everything(0)  # PyTorch repeats its CPU numbers without them (cheaper)
        assert not torch.are_deterministic_algorithms_enabled()
        cu.seed_everything(0, deterministic=True)
        cu.seed_everything(0, deterministic=False)
        assert not torch.are_deterministic_algorithms_enabled()
    finally:
        torch.use_deterministic_algorithms(False)


def test_cpu_threads_leave_one_core_free_unless_chosen(monkeypatch):
    saved = torch.get_num_threads()
    try:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
        monkeypatch.delenv("COURSE_TORCH_THREADS", raising=False)
        for before, after in ((4, 3), (1, 1)):
            torch.set_num_threads(before)
            monkeypatch.setattr(cu, "_cpu_threads_set", False)
            cu._leave_a_core_free()
            cu._leave_a_core_free()  # once per process: a second call changes nothing
            assert torch.get_num_threads() == after
        monkeypatch.setenv("OMP_NUM_THREADS", "2")
        monkeypatch.setattr(cu, "_cpu_threads_set", False)
        torch.set_num_threads(2)
        cu._leave_a_core_free()
        assert torch.get_num_threads() == 2
        monkeypatch.setenv("COURSE_TORCH_THREADS", "3")
        monkeypatch.setattr(cu, "_cpu_threads_set", False)
        cu._leave_a_core_free()
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(saved)


@pytest.mark.parametrize("shuffle", [True, False])
def test_cpu_loader_gives_the_batches_and_seeded_order_of_a_plain_dataloader(shuffle):
    from torch.utils.data import DataLoader, TensorDataset

    x, y = tiny_data(23)
    loader = cu.make_loader(x, y, batch_size=5, shuffle=shuffle, seed=7, device="cpu")
    plain = DataLoader(TensorDataset(cu.to_tensor_images(x), torch.as_tensor(y)), batch_size=5, shuffle=shuffle,
                       generator=torch.Generator().manual_seed(7))
    assert len(loader) == len(plain) == 5 and len(loader.dataset) == 23
    for _ in range(3):  # a new order each epoch, the same as the plain loader's
        ours, theirs = list(loader), list(plain)
        assert [len(b[1]) for b in ours] == [5, 5, 5, 5, 3]
        for (xa, ya), (xb, yb) in zip(ours, theirs, strict=True):
            assert xa.shape == xb.shape and xa.dtype == xb.dtype and ya.dtype == yb.dtype
            assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_cpu_affine_grid_matches_pytorchs():
    torch.manual_seed(0)
    theta = torch.randn(6, 2, 3)
    for height, width in ((28, 28), (32, 20), (1, 5)):
        expected = torch.nn.functional.affine_grid(theta, [6, 1, height, width], align_corners=False)
        torch.testing.assert_close(cu._affine_grid_cpu(theta, height, width), expected, rtol=0, atol=1e-6)


def test_make_loader_scales_adds_channel_and_checks_lengths():
    x, y = tiny_data(10)
    xb, yb = next(iter(cu.make_loader(x, y, batch_size=4)))
    assert xb.shape == (4, 1, 8, 8) and xb.dtype == torch.float32 and float(xb.max()) == 1.0
    assert yb.dtype == torch.int64
    assert len(cu.make_loader(x, y, batch_size=4)) == 3
    with pytest.raises(ValueError, match="10 images, 9 labels"):
        cu.make_loader(x, y[:9])


def test_shuffle_is_seeded():
    x, y = tiny_data(20)
    first = [b[1].tolist() for b in cu.make_loader(x, y, batch_size=5, shuffle=True, seed=1)]
    again = [b[1].tolist() for b in cu.make_loader(x, y, batch_size=5, shuffle=True, seed=1)]
    other = [b[1].tolist() for b in cu.make_loader(x, y, batch_size=5, shuffle=True, seed=2)]
    assert first == again and first != other


def test_random_affine_moves_each_image_differently_and_keeps_shape():
    torch.manual_seed(0)
    x = torch.zeros(8, 1, 28, 28)
    x[:, :, 10:18, 12:16] = 1.0
    out = cu.random_affine(degrees=10, shift=0.1, scale=0.1)(x)
    assert out.shape == x.shape
    assert not torch.allclose(out[0], out[1])  # per-image parameters
    assert torch.allclose(cu.random_affine(0, 0, 0)(x), x, atol=1e-5)  # no change asked: none made


def test_train_returns_keras_style_history_and_learns():
    cu.seed_everything(0)
    x, y = tiny_data(120)
    model = tiny_model()
    history = cu.train(model, cu.make_loader(x, y, 16, shuffle=True), cu.make_loader(x, y, 64), epochs=8,
                       optimizer=torch.optim.Adam(model.parameters(), 1e-2), verbose=False)
    assert set(history) == {"loss", "accuracy", "val_loss", "val_accuracy", "epoch_time"}
    assert all(len(v) == 8 for v in history.values())
    assert history["loss"][-1] < history["loss"][0] / 2
    assert cu.evaluate(model, cu.make_loader(x, y, 64))["accuracy"] > 0.9


def test_train_steps_the_scheduler_and_clips():
    cu.seed_everything(0)
    x, y = tiny_data(32)
    model = tiny_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.5)
    cu.train(model, cu.make_loader(x, y, 8), epochs=3, optimizer=optimizer, scheduler=scheduler, clip_norm=0.1,
             verbose=False)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.125)


def test_predict_feature_maps_filters_and_count():
    model = tiny_model()
    x, _ = tiny_data(5)
    probabilities = cu.predict(model, x)
    assert probabilities.shape == (5, 3) and np.allclose(probabilities.sum(axis=1), 1, atol=1e-5)
    maps = cu.feature_maps(model, model[1], x)
    assert maps.shape == (5, 4, 6, 6) and maps.min() >= 0
    assert cu.conv_filters(model[0]).shape == (4, 1, 3, 3)
    assert cu.count_params(model) == 4 * 9 + 4 + 144 * 3 + 3
    model[0].weight.requires_grad_(False)
    assert cu.count_params(model, trainable_only=True) == 4 + 144 * 3 + 3


def test_feature_maps_of_an_unused_layer_is_an_error():
    model = tiny_model()
    with pytest.raises(ValueError, match="was not called"):
        cu.feature_maps(model, nn.Conv2d(1, 1, 1), tiny_data(2)[0])


def test_predict_gives_probabilities_from_logits_or_from_a_softmax_model():
    model = tiny_model()
    x, _ = tiny_data(5)
    logits = model(cu.to_tensor_images(x)).detach()
    np.testing.assert_allclose(cu.predict(model, x), torch.softmax(logits, 1).numpy(), rtol=1e-5, atol=1e-7)
    with_softmax = nn.Sequential(*model, nn.Softmax(dim=1))
    np.testing.assert_allclose(cu.predict(with_softmax, x), cu.predict(model, x), rtol=1e-5, atol=1e-7)


def test_to_tensor_images_and_make_loader_take_colour():
    from course_utils import data

    rng = np.random.default_rng(0)
    colour = rng.integers(0, 256, (6, 28, 28, 3), dtype=np.uint8)
    x = cu.to_tensor_images(colour)
    assert x.shape == (6, 3, 28, 28) and x.dtype == torch.float32 and float(x.max()) <= 1
    np.testing.assert_allclose(x.permute(0, 2, 3, 1).numpy() * 255, colour, rtol=1e-6)
    big = data.to_rgb(data.pad_or_resize(tiny_data(6)[0], 32))  # what VGG16 needs: 3 channels, 32x32
    xb, yb = next(iter(cu.make_loader(big, np.arange(6) % 3, batch_size=4)))
    assert xb.shape == (4, 3, 32, 32) and yb.dtype == torch.int64
    assert cu.to_tensor_images(np.zeros((2, 5, 5), np.float32)).shape == (2, 1, 5, 5)
    with pytest.raises(ValueError, match=r"C 1 or 3"):
        cu.to_tensor_images(np.zeros((2, 5, 5, 4), np.uint8))
    with pytest.raises(ValueError, match=r"float images should be \(N, C, H, W\)"):
        cu.to_tensor_images(np.zeros((5, 5), np.float32))


def test_numpy_resize_matches_pytorch_bilinear():
    from course_utils import data

    images = np.random.default_rng(1).random((2, 9, 7, 3)).astype(np.float32)
    for size in ((32, 32), (4, 5)):
        ours = data.pad_or_resize(images, size)
        theirs = nn.functional.interpolate(torch.from_numpy(images).permute(0, 3, 1, 2), size=size, mode="bilinear",
                                           align_corners=False).permute(0, 2, 3, 1).numpy()
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


def test_tf32_is_allowed_only_inside_training():
    flags = lambda: (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)  # noqa: E731
    before = flags()
    seen = []

    def loss_fn(logits, y):
        seen.append(flags())
        return nn.functional.cross_entropy(logits, y)

    cu.get_device()
    assert flags() == before  # choosing the device does not turn TF32 on
    x, y = tiny_data(8)
    model = tiny_model()
    cu.train(model, cu.make_loader(x, y, 4), epochs=1, loss_fn=loss_fn, verbose=False)
    assert seen and all(s == (True, True) for s in seen) and flags() == before
    with pytest.raises(RuntimeError):
        with cu.tf32(True):
            raise RuntimeError("restored even on error")
    assert flags() == before
    with cu.tf32(False):
        assert flags() == (False, False)
    assert flags() == before
