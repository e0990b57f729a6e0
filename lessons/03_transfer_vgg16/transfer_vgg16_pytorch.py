# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lesson 03 · Transfer learning with VGG16 (PyTorch)
#
# A network trained on one large task has learned features (edges, textures, shapes) that
# are useful for other tasks. **Transfer learning** reuses them: keep the trained
# convolutional base, put a new classifier (a *head*) on top, and train only what must be
# learned anew. In this lesson you will
#
# 1. build the lesson text's model, VGG16 with a new head, and count where its 40.7 million
#    parameters are,
# 2. preprocess images the way VGG16 expects,
# 3. freeze a base, extract features with it, and fine-tune its top block,
# 4. measure when transfer pays: digits with 10, 100 and 700 labels per class, from scratch
#    against a frozen base against fine-tuning,
# 5. see why VGG stops near 19 layers, and the residual connection that goes deeper.
#
# The TensorFlow notebook of this lesson has the same headings, data, seeds and exercises.
#
# **Exercises** are marked *Exercise*. Each answer cell holds a function's first line and
# docstring, then `# YOUR CODE HERE` and `raise NotImplementedError()`: replace those two
# lines with your code (keep the function's name and arguments), run the test cell below
# it, and press *Validate* in the toolbar before you submit. The visible tests are a first
# check; the grader runs more, on other inputs.

# %% [markdown]
# ## Set-up
# *Helper cell*: imports, library versions, the run profile and the device. On a CPU the
# notebook pins PyTorch to one thread (`COURSE_TORCH_THREADS` changes it): on a shared
# 2-core machine one thread runs steadily where two contend.

# %%
import copy
import os
import time
from collections import OrderedDict

import matplotlib.pyplot as plt
import numpy as np
import torch
import torchvision
from torch import nn
from torch.nn import functional as F

from course_utils import plots
from course_utils import torch as cu
from course_utils.checks import check_close, check_equal, check_shape, to_numpy
from course_utils.data import load_fashion_mnist, load_mnist, pad_or_resize, to_rgb
from course_utils.guards import check_from_scratch
from course_utils.profiles import current_profile, pick
from course_utils.weights import WeightsError, find_weights

assert tuple(int(v) for v in torch.__version__.split(".")[:2]) >= (2, 4), "this lesson needs PyTorch 2.4 or newer"
assert tuple(int(v) for v in torchvision.__version__.split(".")[:2]) >= (0, 19), "this lesson needs torchvision 0.19+"
assert tuple(int(v) for v in np.__version__.split(".")[:2]) >= (1, 26), "this lesson needs numpy 1.26 or newer"

SEED = 42
cu.seed_everything(SEED)
if cu.get_device().type == "cpu":
    torch.set_num_threads(int(os.environ.get("COURSE_TORCH_THREADS", "1")))
PROFILE = current_profile()
print(f"profile: {PROFILE}")
print(cu.device_report())

# %% [markdown]
# ## 1. What transfer learning is, and when it helps
# The lesson text's claims: a model pre-trained on a large data set such as ImageNet has
# learned features useful for a wide range of vision tasks; reusing it saves time and
# improves accuracy, *particularly when the new task has little data*. Two ways to reuse it:
#
# * **Feature extraction**: freeze the whole base and train only a new head. The base is a
#   fixed function, so its features can even be computed once and cached.
# * **Fine-tuning**: after the head has learned, unfreeze the top of the base (the most
#   task-specific layers) and train it too, with a *lower* learning rate so that the
#   pre-trained weights move a little instead of being overwritten.
#
# Section 7 checks these claims with a measurement, and finds where they hold.
#
# ## 2. VGG16: blocks, receptive field, parameters
# VGG16 (Simonyan and Zisserman, 2014) is five blocks of 3×3 convolutions ("same" padding,
# ReLU), each ending in 2×2 max pooling, then three dense layers: 13 + 3 = 16 layers with
# weights. torchvision's `vgg16().features` is the convolutional base (Keras'
# `include_top=False`).
#
# **The weights.** ImageNet weights are 528 MB and nothing may be downloaded while this
# notebook runs, so they are used only if the file is already on this machine
# (`$TORCH_HOME/hub/checkpoints/vgg16-397923af.pth` or `$COURSE_WEIGHTS_DIR`); the check
# below says which path it took. Otherwise the base is randomly initialised: the right
# architecture and parameter counts, not the learned features.

# %%
try:
    imagenet = find_weights("vgg16_imagenet_torchvision")
    print("ImageNet weights:", imagenet.describe())
except WeightsError as missing:
    imagenet = None
    print(f"No ImageNet weights on this machine, so VGG16 is built with weights=None.\n({missing})")

vgg = torchvision.models.vgg16(weights=None)  # never a download: weights are loaded from the found file
if imagenet is not None:
    vgg.load_state_dict(torch.load(imagenet.path, map_location="cpu", weights_only=True))
print(f"VGG16 with its classifier: {cu.count_params(vgg):,} parameters")
vgg_base = vgg.features
vgg_top = vgg.classifier
del vgg

# %% [markdown]
# Each convolution sees a 3×3 window of the layer below; each pooling doubles the step
# between neighbouring units. The **receptive field** (the input pixels one unit depends
# on) grows by $(k - 1) \times \text{jump}$ per layer, where jump is the product of the
# strides so far. Two stacked 3×3 convolutions see 5×5, three see 7×7, with fewer
# parameters and more non-linearities than one large kernel: VGG's design idea.

# %%
rf, jump, block, rows = 1, 1, 1, []
params_in_block, shape = 0, (3, 224, 224)
for layer in vgg_base:
    if isinstance(layer, nn.Conv2d):
        rf += (layer.kernel_size[0] - 1) * jump
        params_in_block += sum(p.numel() for p in layer.parameters())
        shape = (layer.out_channels, shape[1], shape[2])
    elif isinstance(layer, nn.MaxPool2d):
        rf += (layer.kernel_size - 1) * jump
        jump *= layer.stride
        shape = (shape[0], shape[1] // 2, shape[2] // 2)
        rows.append((f"block{block}", shape, rf, params_in_block))
        block, params_in_block = block + 1, 0
print(f"{'block':<8}{'output (C, H, W)':<20}{'receptive field':>16}{'parameters':>14}")
for name, out, field, count in rows:
    print(f"{name:<8}{str(out):<20}{field:>13}x{field:<3}{count:>13,}")
print(f"{'base':<8}{'':<20}{'':>16}{cu.count_params(vgg_base):>14,}")
print(f"{'top':<8}{'3 dense layers':<20}{'':>16}{cu.count_params(vgg_top):>14,}")
del vgg_top

# %% [markdown]
# The 13 convolutions hold 14.7 million parameters; the three dense layers of the original
# classifier hold 123.6 million, 89% of the network. The parameters are in the dense
# layers, the computation in the convolutions.
#
# The lesson text replaces that classifier with its own head: `Flatten -> Dense(1024, relu)
# -> Dense(256, relu) -> Dense(10, softmax)`. In PyTorch the head returns **logits** and
# `nn.CrossEntropyLoss` applies the softmax (as in lesson 01); a softmax inside the model
# *and* in the loss would squash the scores twice.

# %% [markdown]
# ### Exercise 1: the lesson text's head (2 points)
# Write `build_head(feature_shape, num_classes=10)` returning an `nn.Module` that maps the
# base's output, a batch of shape `(N, *feature_shape)` with `feature_shape = (C, H, W)`,
# to `(N, num_classes)` logits: flatten, `nn.Linear` to 1,024 units with ReLU, `nn.Linear`
# to 256 units with ReLU, `nn.Linear` to `num_classes` units with no activation (no
# softmax). Every layer has a bias, and every parameter is trainable.

# %% nbgrader={"grade": false, "grade_id": "build_head", "locked": false, "schema_version": 3, "solution": true, "task": false}
def build_head(feature_shape, num_classes=10):
    """The lesson text's head: (N, C, H, W) features -> (N, num_classes) logits."""
    ### BEGIN SOLUTION
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(int(np.prod(feature_shape)), 1024),
        nn.ReLU(),
        nn.Linear(1024, 256),
        nn.ReLU(),
        nn.Linear(256, num_classes),
    )
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "build_head_tests", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false} course={"judged": true}
torch.manual_seed(0)
# (on VGG16's (512, 7, 7) features the head has 25,956,106 parameters: section 2 counts them)
head = build_head((512, 2, 2))
check_equal(cu.count_params(head), 2_363_146, name="the parameters of the head on (512, 2, 2) features")
check_shape(build_head((64, 4, 4))(torch.rand(3, 64, 4, 4)), (3, 10), name="the head's output for 3 feature maps")
### BEGIN HIDDEN TESTS
torch.manual_seed(1)
head = build_head((3, 2, 5), num_classes=4)
assert isinstance(head, nn.Module), "build_head should return an nn.Module"
linears = [m for m in head.modules() if isinstance(m, nn.Linear)]
assert len(linears) == 3, f"the head should have three Linear layers, found {len(linears)}"
for layer, shape in zip(linears, [(1024, 30), (256, 1024), (4, 256)]):
    check_equal(tuple(layer.weight.shape), shape, name="a Linear weight's shape (out, in)")
    assert layer.bias is not None, "every Linear layer should have a bias"
assert all(p.requires_grad for p in head.parameters()), "every parameter of the head should be trainable"
x = torch.randn(6, 3, 2, 5) * 3  # values far below 0 and above 6: another activation shows
with torch.no_grad():
    for p in head.parameters():  # random weights, whatever the head's initialisation (a zero last layer hides a lot)
        p.normal_(0, p[0].numel() ** -0.5)  # LeCun's scale: 1 / sqrt(fan-in) for a weight, 1 for a bias
    expected = []
    for flat in (x.flatten(1), x.permute(0, 2, 3, 1).flatten(1)):  # either flatten order is the same head
        h = F.relu(F.linear(flat, linears[0].weight, linears[0].bias))
        h = F.relu(F.linear(h, linears[1].weight, linears[1].bias))
        expected.append(F.linear(h, linears[2].weight, linears[2].bias))
    outputs = {"eval": head.eval()(x), "train": head.train()(x)}  # train mode too: no dropout or other extra layer
for mode, got in outputs.items():
    check_shape(got, (6, 4), name=f"build_head((3, 2, 5), num_classes=4) on 6 feature maps ({mode} mode)")
    assert not torch.allclose(got.sum(dim=1), torch.ones(6), atol=1e-3), \
        "the head should return logits: nn.CrossEntropyLoss applies the softmax itself"
    error = min(float((got - e).abs().max()) for e in expected)
    assert error < 1e-4, (f"the head's output in {mode} mode differs from flatten, Linear, ReLU, Linear, ReLU, Linear "
                          f"on its own weights by {error:.3g}: check the activations and that there is no other layer")
check_equal(cu.count_params(build_head((1, 1, 8), num_classes=3)), 8 * 1024 + 1024 + 1024 * 256 + 256 + 256 * 3 + 3,
            name="the parameters of build_head((1, 1, 8), num_classes=3)")
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 2: freeze a base (1 point)
# Write `freeze_base(base)`: make every parameter of the module `base` untrainable (so that
# no gradient is computed for it and no optimizer can update it) and return `base` itself.
# Change nothing outside `base`.

# %% nbgrader={"grade": false, "grade_id": "freeze_base", "locked": false, "schema_version": 3, "solution": true, "task": false}
def freeze_base(base):
    """Freeze every parameter of base (requires_grad False); return base."""
    ### BEGIN SOLUTION
    for parameter in base.parameters():
        parameter.requires_grad = False
    return base
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "freeze_base_tests", "locked": true, "points": 1, "schema_version": 3, "solution": false, "task": false} course={"judged": true}
small = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3))
assert freeze_base(small) is small, "freeze_base should return the base it froze"
check_equal(cu.count_params(small, trainable_only=True), 0, name="trainable parameters left in the frozen base")
### BEGIN HIDDEN TESTS
base = nn.Sequential(OrderedDict(block1=nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU()),
                                 block2=nn.Sequential(nn.Conv2d(8, 8, 3), nn.ReLU()), pool=nn.AdaptiveAvgPool2d(1),
                                 flatten=nn.Flatten()))  # nested blocks, as in the course's network
head = nn.Linear(8, 2)
model = nn.Sequential(base, head)
assert freeze_base(model[0]) is base, "freeze_base should return the base it froze"
frozen = [name for name, p in base.named_parameters() if p.requires_grad]
assert frozen == [], f"these parameters of the base are still trainable: {frozen}"
assert all(p.requires_grad for p in head.parameters()), "freeze_base should not freeze anything outside the base"
x = torch.rand(2, 3, 6, 6, requires_grad=True)
model(x).sum().backward()
assert all(p.grad is None for p in base.parameters()), "a frozen parameter should get no gradient"
assert all(p.grad is not None for p in head.parameters()), "the head should still get gradients"
### END HIDDEN TESTS

# %% [markdown]
# ### Exercise 3: trainable and frozen parameters (2 points)
# Write `count_params_split(model)` returning the tuple `(trainable, frozen)`: the number
# of scalar parameters of `model` that are trainable (`requires_grad`) and the number that
# are not, as ints. Buffers (such as batch norm's running statistics) are not parameters.

# %% nbgrader={"grade": false, "grade_id": "count_params_split", "locked": false, "schema_version": 3, "solution": true, "task": false}
def count_params_split(model):
    """(trainable, frozen) numbers of parameters of model."""
    ### BEGIN SOLUTION
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    return trainable, frozen
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "count_params_split_tests", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false} course={"judged": true}
model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
model[0].weight.requires_grad = False
check_equal(tuple(int(v) for v in count_params_split(model)), (11, 12), name="count_params_split of a small model")
### BEGIN HIDDEN TESTS
result = count_params_split(model)
assert isinstance(result, tuple) and len(result) == 2, "count_params_split should return a tuple (trainable, frozen)"
assert all(int(v) == v for v in result), "the counts should be whole numbers"
model = nn.Sequential(nn.Conv2d(3, 5, 3), nn.BatchNorm2d(5), nn.Flatten(), nn.Linear(5 * 4 * 4, 7))
check_equal(tuple(int(v) for v in count_params_split(model)), (140 + 10 + 567, 0), name="an unfrozen model with batch norm")
for p in list(model[0].parameters()) + list(model[1].parameters()):
    p.requires_grad = False
check_equal(tuple(int(v) for v in count_params_split(model)), (567, 150),
            name="a model with a frozen conv and batch norm (buffers are not parameters)")
model[3].bias.requires_grad = False
check_equal(tuple(int(v) for v in count_params_split(model)), (560, 157), name="a model with a frozen bias")
### END HIDDEN TESTS

# %% [markdown]
# The lesson text's model: VGG16's base, every layer frozen, and the new head on its
# (512, 7, 7) output for 224×224 images.

# %%
lesson_model = nn.Sequential(OrderedDict(base=freeze_base(vgg_base), head=build_head((512, 7, 7))))
trainable, frozen = count_params_split(lesson_model)
print(f"lesson model: {trainable + frozen:,} parameters, {trainable:,} trainable, {frozen:,} frozen")
assert (trainable + frozen, trainable, frozen) == (40_670_794, 25_956_106, 14_714_688)

# %% [markdown]
# **Why it is built but not trained here.** One forward pass of VGG16's base costs about
# 15.3 billion multiply-adds per 224×224 image; training costs about three times that.
# Timing one image on this machine shows what ten epochs over 7,000 images would take.
# (Without the ImageNet file the frozen base would be a *random* feature extractor anyway:
# freezing only makes sense for learned weights.) So the rest of the lesson transfers from
# the course's own small VGG-style network, with the same block pattern, on 32×32 images.

# %%
size = pick(smoke=64, standard=224)  # smoke: a smaller image, scaled up by the pixel count
lesson_model.eval()
with torch.no_grad():
    x = torch.rand(1, 3, size, size)
    start = time.perf_counter()
    lesson_model.base(x)
    seconds = (time.perf_counter() - start) * (224 / size) ** 2
print(f"one 224x224 image through VGG16's base: about {seconds:.2f} s on {cu.get_device()}")
print(f"10 epochs of 7,000 images, forward and backward (x3): about {seconds * 3 * 7000 * 10 / 3600:.1f} hours")
del lesson_model, vgg_base

# %% [markdown]
# ## 3. Preprocessing for VGG16
# VGG16 takes colour images of at least 32×32 pixels (five poolings halve 32 down to 1).
# Grey 28×28 digits therefore get their grey value copied to three channels (`to_rgb`) and
# are zero-padded or resized to 32×32 or more (`pad_or_resize`).
#
# The ImageNet weights also expect the **preprocessing they were trained with**, and the two
# frameworks' weights differ:
#
# * Keras' `vgg16.preprocess_input` ("caffe" mode, from the original Caffe model): pixel
#   values 0..255, channels reordered **RGB → BGR**, and the ImageNet mean of each channel
#   subtracted, B 103.939, G 116.779, R 123.68; no scaling.
# * torchvision ("torch" mode): values scaled to [0, 1], then per RGB channel
#   $(x - \text{mean}) / \text{std}$ with mean (0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225).
#
# Feed one framework's weights the other's preprocessing and the features are off: the
# colours are swapped or the values are 255 times too large.

# %% [markdown]
# ### Exercise 4: VGG preprocessing from scratch (3 points)
# Write `vgg_preprocess(images, mode="caffe")` with PyTorch tensor operations (indexing,
# `flip`, arithmetic), **not** torchvision's `Normalize`, `normalize` or other normalisation
# helpers, nor batch normalisation.
#
# * `images`: a float tensor (N, 3, H, W), RGB channels, values 0..255 (any N, H, W);
# * `mode="caffe"`: channels reordered to BGR, then subtract 103.939 from B, 116.779 from G
#   and 123.68 from R, on the 0..255 scale;
# * `mode="torch"`: divide by 255, then per RGB channel subtract the mean (0.485, 0.456,
#   0.406) and divide by the std (0.229, 0.224, 0.225);
# * any other mode raises `ValueError`;
# * returns a new float tensor of the same shape; `images` is left unchanged.

# %% nbgrader={"grade": false, "grade_id": "vgg_preprocess", "locked": false, "schema_version": 3, "solution": true, "task": false}
def vgg_preprocess(images, mode="caffe"):
    """ImageNet preprocessing of RGB images (N, 3, H, W) with values 0..255."""
    ### BEGIN SOLUTION
    if mode == "caffe":
        mean = torch.tensor([103.939, 116.779, 123.68], dtype=images.dtype, device=images.device)
        return images.flip(1) - mean.view(1, 3, 1, 1)
    if mode == "torch":
        mean = torch.tensor([0.485, 0.456, 0.406], dtype=images.dtype, device=images.device)
        std = torch.tensor([0.229, 0.224, 0.225], dtype=images.dtype, device=images.device)
        return (images / 255 - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1)
    raise ValueError(f"mode must be 'caffe' or 'torch', got {mode!r}")
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "vgg_preprocess_tests", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false} course={"judged": true}
pixel = torch.tensor([200.0, 100.0, 50.0]).view(1, 3, 1, 1)  # one orange RGB pixel
check_close(vgg_preprocess(pixel), torch.tensor([50 - 103.939, 100 - 116.779, 200 - 123.68]).view(1, 3, 1, 1),
            rtol=1e-4, atol=1e-4, name="vgg_preprocess of one orange pixel, caffe mode")
check_shape(vgg_preprocess(torch.rand(2, 3, 5, 4) * 255, mode="torch"), (2, 3, 5, 4), name="vgg_preprocess, torch mode")
### BEGIN HIDDEN TESTS
import importlib as _importlib

# every normalisation helper of the installed torchvision (public, private, v1 and v2), batch norm and the raw ops
_normalizers = [torch._C, torch.ops, F.batch_norm, torch.batch_norm, nn.BatchNorm2d]
for _module_name in ("torchvision.transforms", "torchvision.transforms.functional", "torchvision.transforms.transforms",
                     "torchvision.transforms._functional_tensor", "torchvision.transforms._presets",
                     "torchvision.transforms.v2", "torchvision.transforms.v2.functional",
                     "torchvision.transforms.v2._misc", "torchvision.transforms.v2.functional._misc"):
    try:
        _module = _importlib.import_module(_module_name)
    except ImportError:
        continue
    _normalizers += [getattr(_module, _k) for _k in dir(_module)
                     if "normalize" in _k.lower() or _k == "ImageClassification"]
check_from_scratch(vgg_preprocess, _normalizers, name="vgg_preprocess", allowed="Use tensor indexing, flip and arithmetic.")
torch.manual_seed(3)
images = torch.rand(3, 3, 6, 5) * 255  # every pixel different: a wrong axis or order shows
saved = images.clone()
for _mode in ("caffe", "torch"):
    _out = vgg_preprocess(images, mode=_mode)
    assert isinstance(_out, torch.Tensor), \
        f"vgg_preprocess(images, mode={_mode!r}) should return a torch.Tensor, not {type(_out).__name__}"
    assert _out.is_floating_point(), f"vgg_preprocess(images, mode={_mode!r}) should return a float tensor, not {_out.dtype}"
    assert _out.untyped_storage().data_ptr() != images.untyped_storage().data_ptr(), \
        f"vgg_preprocess(images, mode={_mode!r}) should return a new tensor, not images or a view of it"
    check_equal(torch.equal(images, saved), True, name=f"images unchanged after vgg_preprocess(images, mode={_mode!r})")
rgb = images.numpy().astype(np.float64)
expected_caffe = rgb[:, ::-1] - np.array([103.939, 116.779, 123.68]).reshape(1, 3, 1, 1)
expected_torch = (rgb / 255 - np.array([0.485, 0.456, 0.406]).reshape(1, 3, 1, 1)) / np.array([0.229, 0.224, 0.225]).reshape(1, 3, 1, 1)
check_close(to_numpy(vgg_preprocess(images)), expected_caffe, rtol=1e-4, atol=1e-3,
            name="vgg_preprocess caffe mode (BGR order, means subtracted on the 0..255 scale)")
check_equal(torch.equal(images, saved), True, name="images unchanged after vgg_preprocess(images)")
check_close(to_numpy(vgg_preprocess(images, mode="torch")), expected_torch, rtol=1e-4, atol=1e-4,
            name="vgg_preprocess torch mode (RGB order, scaled to [0, 1], mean and std)")
check_equal(torch.equal(images, saved), True, name="images unchanged after vgg_preprocess(images, mode='torch')")
check_close(to_numpy(vgg_preprocess(images[:1], "caffe")), expected_caffe[:1], rtol=1e-4, atol=1e-3,
            name="vgg_preprocess of a single image")
try:
    vgg_preprocess(images, mode="tf")
except ValueError:
    pass
else:
    raise AssertionError("vgg_preprocess(images, mode='tf') should raise ValueError")
### END HIDDEN TESTS

# %% [markdown]
# One digit made ready for VGG16: padded to 32×32 and resized to 224×224, grey copied to
# three channels, then each framework's preprocessing. A grey pixel has R = G = B, so only
# the per-channel means tell the channels apart here; on colour photographs the BGR order
# matters as much.

# %%
mnist = load_mnist()
digit = mnist.x_test[:1]
big = to_rgb(pad_or_resize(pad_or_resize(digit, 32, mode="pad"), 224))  # uint8 (1, 224, 224, 3)
rgb_255 = torch.from_numpy(big.transpose(0, 3, 1, 2).astype(np.float32))
for mode in ("caffe", "torch"):
    out = vgg_preprocess(rgb_255, mode=mode)
    means = ", ".join(f"{v:.2f}" for v in out.mean(dim=(0, 2, 3)).tolist())
    print(f"{mode:>6} mode: shape {tuple(out.shape)}, range {out.min():.2f} .. {out.max():.2f}, channel means ({means})")
plots.show_images(np.concatenate([pad_or_resize(digit, 224)[..., None].repeat(3, -1), big]), ncols=2)
plt.show()

# %% [markdown]
# ## 4. The course's own pretrained network
# The course ships a network with VGG16's block pattern, pretrained by
# `datasets/build_pretrained.py` on **Fashion-MNIST** (clothes, the *source task*), saved once
# in a framework-neutral `.npz` and loaded into either framework through
# `course_utils.porting`:
#
# | block | layers | output (C, H, W) | parameters |
# |---|---|---|---|
# | input | 28×28 zero-padded to 32×32, grey in 3 channels, /255 | (3, 32, 32) | |
# | block1 | 2 × Conv 16 3×3 + ReLU, MaxPool 2×2 | (16, 16, 16) | 2,768 |
# | block2 | 2 × Conv 32 3×3 + ReLU, MaxPool 2×2 | (32, 8, 8) | 13,888 |
# | block3 | 3 × Conv 64 3×3 + ReLU, MaxPool 2×2 | (64, 4, 4) | 92,352 |
# | top | Flatten 1,024, Dropout 0.3, Linear 10 | (10,) | 10,250 |
#
# The *target task* is different: handwritten digits.

# %%
found = find_weights("vgg_style_fashion")
print("course weights:", found.describe())
if imagenet is None:
    print("path taken: the course's own pretrained network (no ImageNet file on this machine)")
pretrained = cu.vgg_style_network(weights=found.path).to(cu.get_device())
print(f"{cu.count_params(pretrained):,} parameters, {cu.count_params(pretrained.block1) + cu.count_params(pretrained.block2) + cu.count_params(pretrained.block3):,} in the blocks")


def prepare(images):
    """uint8 (N, 28, 28) -> float32 (N, 3, 32, 32) in [0, 1]: padded, grey in 3 channels."""
    return cu.to_tensor_images(to_rgb(pad_or_resize(images, 32, mode="pad")))


fashion = load_fashion_mnist(source="shipped").subset(test=pick(smoke=500, standard=2000))
x_fashion = prepare(fashion.x_test)
fashion_acc = np.mean(cu.predict(pretrained, x_fashion).argmax(1) == fashion.y_test)
print(f"source task: {fashion_acc:.1%} on {len(x_fashion)} Fashion-MNIST test images")

# %% [markdown]
# What the pretrained network looks at: its first layer's 16 filters (the red channel of
# each; the grey input makes the three channels alike) and the feature maps of one digit
# after each block, smaller and more abstract block by block. The filters are edge and
# blob detectors, learned from clothes, and they respond to the strokes of a digit too:
# that is what transfers.

# %%
plots.plot_filters(cu.conv_filters(pretrained.block1[0]), title="block1_conv1: 16 filters learned on Fashion-MNIST")
plt.show()
one = prepare(mnist.x_test[:1]).to(cu.get_device())
for name in ("block1", "block2", "block3"):
    maps = cu.feature_maps(pretrained, getattr(pretrained, name), one)[0]
    plots.plot_feature_maps(maps[:16], title=f"{name}: 16 of its {maps.shape[0]} maps, {maps.shape[1]}x{maps.shape[2]}",
                            image=mnist.x_test[0] if name == "block1" else None)
    plt.show()

# %% [markdown]
# ## 5. The target task: digits with few labels
# The course's 10,000 MNIST digits: 7,000 for training (about 700 per class), 1,000 for
# validation, 2,000 for testing. To see when transfer pays we pretend to have only a few
# labelled digits per class.

# %%
sizes = pick(smoke=dict(val=200, test=500), standard=None)
if sizes:
    mnist = mnist.subset(**sizes)
x_train, x_val, x_test = prepare(mnist.x_train), prepare(mnist.x_val), prepare(mnist.x_test)
y_train, y_val, y_test = (torch.from_numpy(y) for y in (mnist.y_train, mnist.y_val, mnist.y_test))


def labelled(per_class):
    """Indices of the first `per_class` training digits of each class (all of a class if fewer)."""
    return np.sort(np.concatenate([np.flatnonzero(mnist.y_train == c)[:per_class] for c in range(10)]))


print(mnist)
print("training digits per class:", np.bincount(mnist.y_train, minlength=10))

# %% [markdown]
# ### Exercise 5: extract features (2 points)
# With a frozen base, its output for an image never changes, so it can be computed once.
# Write `extract_features(base, images, batch_size=256)`:
#
# * `base`: an `nn.Module`; `images`: a float tensor (N, C, H, W) on the base's device;
# * run the base in **evaluation mode** (`base.eval()`: dropout off, batch norm with its
#   running statistics) and **without gradients** (`torch.no_grad()`), on at most
#   `batch_size` images at a time, in order;
# * return a numpy float32 array (N, D): each image's output flattened (PyTorch's C, H, W order).

# %% nbgrader={"grade": false, "grade_id": "extract_features", "locked": false, "schema_version": 3, "solution": true, "task": false}
def extract_features(base, images, batch_size=256):
    """The base's outputs for images (N, C, H, W), flattened: numpy (N, D)."""
    ### BEGIN SOLUTION
    base.eval()
    outputs = []
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            outputs.append(base(images[start:start + batch_size]).flatten(1).cpu())
    return torch.cat(outputs).numpy().astype(np.float32)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "extract_features_tests", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false} course={"judged": true}
torch.manual_seed(0)
base = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.MaxPool2d(2))
features = extract_features(base, torch.rand(5, 3, 8, 8))
assert isinstance(features, np.ndarray), f"extract_features should return a numpy array, not {type(features).__name__}"
check_shape(features, (5, 36), name="extract_features of 5 images (4 maps of 3x3 each)")
### BEGIN HIDDEN TESTS
class Recorder(nn.Module):
    """Records the batch sizes it sees and whether gradients were on."""
    def __init__(self):
        super().__init__()
        self.batches, self.grad_enabled = [], []
    def forward(self, x):
        self.batches.append(len(x))
        self.grad_enabled.append(torch.is_grad_enabled())
        return x

torch.manual_seed(1)
recorder = Recorder()
base = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), recorder, nn.Dropout(0.5),
                     nn.AdaptiveAvgPool2d(2))
base[1].running_mean.uniform_(-1, 1)
base[1].running_var.uniform_(0.5, 2)
base.train()
images = torch.rand(23, 3, 5, 5) * 2
with torch.no_grad():
    base.eval()
    expected = base(images).flatten(1).numpy()
    base.train()
recorder.batches, recorder.grad_enabled = [], []
running_mean = base[1].running_mean.clone()
features = extract_features(base, images, batch_size=10)
assert isinstance(features, np.ndarray), f"extract_features should return a numpy array, not {type(features).__name__}"
check_shape(features, (23, 24), name="extract_features of 23 images")
check_equal(str(features.dtype), "float32", name="the features' dtype")
check_close(features, expected, rtol=1e-4, atol=1e-5,
            name="features of a base with batch norm and dropout (evaluation mode?)")
check_equal(torch.equal(base[1].running_mean, running_mean), True, name="batch norm's running mean unchanged")
assert recorder.batches and max(recorder.batches) <= 10, f"batches of at most batch_size=10 images; saw {recorder.batches}"
check_equal(sum(recorder.batches), 23, name="the number of images passed through the base")
assert not any(recorder.grad_enabled), "compute the features with gradients off (torch.no_grad())"
features = extract_features(base, images[:7])
check_close(features, expected[:7], rtol=1e-4, atol=1e-5, name="extract_features with the default batch size")
### END HIDDEN TESTS

# %% [markdown]
# **Fast feature extraction against end-to-end training with a frozen base.** Both train the
# same new head (`nn.Linear(1024, 10)`) with the same initial weights and the same batches;
# one runs the frozen base on every batch of every epoch, the other runs it once. With no
# augmentation or dropout in the base the two compute the same thing, so they reach the
# same accuracy; only the time differs. (With data augmentation the features change every
# epoch and cannot be cached: then end-to-end it is.)

# %%
TIMING_PER_CLASS, TIMING_EPOCHS = pick(smoke=(10, 2), standard=(100, 5))
idx = labelled(TIMING_PER_CLASS)
base = freeze_base(nn.Sequential(copy.deepcopy(pretrained.block1), copy.deepcopy(pretrained.block2),
                                 copy.deepcopy(pretrained.block3)))
cu.seed_everything(SEED)
head = nn.Sequential(nn.Flatten(), nn.Linear(1024, 10))
head_copy = copy.deepcopy(head)

start = time.perf_counter()
end_to_end = nn.Sequential(base, head)
cu.train(end_to_end, cu.make_loader(x_train[idx], y_train[idx], batch_size=32, shuffle=True, seed=SEED),
         epochs=TIMING_EPOCHS, verbose=False)
base.eval()
t_end_to_end = time.perf_counter() - start

start = time.perf_counter()
device = cu.get_device()
f_train = torch.from_numpy(extract_features(base.to(device), x_train[idx].to(device)))
loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(f_train, y_train[idx]), batch_size=32,
                                     shuffle=True, generator=torch.Generator().manual_seed(SEED))
cu.train(head_copy, loader, epochs=TIMING_EPOCHS, verbose=False)
t_cached = time.perf_counter() - start

f_test = torch.from_numpy(extract_features(base, x_test.to(device))).to(device)
with torch.no_grad():
    acc_end_to_end = (head.eval()(f_test).argmax(1).cpu() == y_test).float().mean().item()
    acc_cached = (head_copy.eval()(f_test).argmax(1).cpu() == y_test).float().mean().item()
print(f"end to end, frozen base: {t_end_to_end:6.2f} s, test accuracy {acc_end_to_end:.2%}")
print(f"features once, then head: {t_cached:6.2f} s, test accuracy {acc_cached:.2%}  "
      f"({t_end_to_end / t_cached:.1f}x faster)")

# %% [markdown]
# ## 6. Freezing in practice: optimizers and batch norm
# **An optimizer only updates the parameters it was given.** Build it from the trainable
# parameters of a frozen model, unfreeze a block afterwards, and that block never moves,
# without any error:

# %%
model = nn.Sequential(OrderedDict(base=freeze_base(copy.deepcopy(base)), head=nn.Sequential(nn.Flatten(), nn.Linear(1024, 10))))
optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)  # head only
for p in model.base[2].parameters():  # unfreeze block3 too late
    p.requires_grad = True
before = model.base[2][0].weight.detach().clone()
loss = F.cross_entropy(model(x_train[:32].to(device)), y_train[:32].to(device))
optimizer.zero_grad()
loss.backward()
optimizer.step()
print("block3 got a gradient:", model.base[2][0].weight.grad is not None,
      "| block3 changed by the step:", not torch.equal(before, model.base[2][0].weight))

# %% [markdown]
# **Batch norm in a frozen base.** `requires_grad = False` stops the gradient, but a
# `BatchNorm2d` in training mode still *replaces its running statistics* with those of
# each new batch, so a "frozen" base drifts towards the new data's statistics (and uses batch
# statistics while training). Keras differs: a layer with `trainable = False` runs batch
# norm in inference mode and keeps its statistics. In PyTorch keep a frozen base in
# `eval()` mode, and again after every `model.train()` (VGG16 and the course's network have
# no batch norm; many later networks do).

# %%
bn_base = freeze_base(nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU()))
bn_model = nn.Sequential(bn_base, nn.Flatten(), nn.Linear(4 * 30 * 30, 10))
stats = bn_base[1].running_mean.clone()
bn_model.train()
bn_model(x_train[:32])
print("frozen, train mode: running mean moved by", f"{(bn_base[1].running_mean - stats).abs().max():.4f}")
stats = bn_base[1].running_mean.clone()
bn_model.train()
bn_base.eval()  # after model.train(), put the frozen base back into evaluation mode
bn_model(x_train[:32])
print("frozen, base in eval mode: running mean moved by", f"{(bn_base[1].running_mean - stats).abs().max():.4f}")

# %% [markdown]
# ### Exercise 6: set up fine-tuning (3 points)
# Write `setup_fine_tuning(model, base, block, lr=1e-4)`. `model` contains the frozen
# `base` (an `nn.Module` with named blocks, e.g. the course network's `block1` .. `block3`)
# and a trainable head. Then:
#
# * make the parameters of the block named `block` (`base.get_submodule(block)`) trainable,
#   and leave every other parameter of `base` frozen and every parameter of `model` outside
#   `base` as it is;
# * return a **new** `torch.optim.Adam` (Adam itself, not a subclass such as `AdamW`) with
#   learning rate `lr` whose parameters are exactly the trainable parameters of `model`
#   after the change.

# %% nbgrader={"grade": false, "grade_id": "setup_fine_tuning", "locked": false, "schema_version": 3, "solution": true, "task": false}
def setup_fine_tuning(model, base, block, lr=1e-4):
    """Unfreeze base's block `block` and return Adam(lr) over model's trainable parameters."""
    ### BEGIN SOLUTION
    for parameter in base.get_submodule(block).parameters():
        parameter.requires_grad = True
    return torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "setup_fine_tuning_tests", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false} course={"judged": true}
torch.manual_seed(0)
base = cu.vgg_style_network(include_top=False)
model = nn.Sequential(base, nn.Flatten(), nn.Linear(1024, 10))
optimizer = setup_fine_tuning(model, base, "block3", lr=1e-4)
assert type(optimizer) is torch.optim.Adam, f"setup_fine_tuning should return a torch.optim.Adam, not {type(optimizer).__name__}"
lrs = [group["lr"] for group in optimizer.param_groups]
assert all(lr == 1e-4 for lr in lrs), f"the optimizer's learning rate should be lr=1e-4, got {lrs}"
### BEGIN HIDDEN TESTS
torch.manual_seed(1)
base = nn.Sequential(OrderedDict(
    block1=nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2)),
    block2=nn.Sequential(nn.Conv2d(4, 5, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)),
    block3=nn.Sequential(nn.Conv2d(5, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)),
    block20=nn.Sequential(nn.Conv2d(6, 6, 1), nn.ReLU()),  # another block whose name starts with "block2"
))
head = nn.Sequential(nn.Flatten(), nn.Linear(6, 6), nn.ReLU(), nn.Linear(6, 3))
model = nn.Sequential(OrderedDict(base=base, head=head))
for p in base.parameters():
    p.requires_grad = False
head[1].bias.requires_grad = False  # frozen outside the base: must stay as it is
old_optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
optimizer = setup_fine_tuning(model, base, "block2", lr=3e-5)
assert type(optimizer) is torch.optim.Adam, f"setup_fine_tuning should return a torch.optim.Adam, not {type(optimizer).__name__}"
assert optimizer is not old_optimizer, "return a new optimizer"
assert all(p.requires_grad for p in base.block2.parameters()), "block2's parameters should be trainable"
assert not any(p.requires_grad for p in base.block1.parameters()), "block1 should stay frozen"
assert not any(p.requires_grad for p in base.block3.parameters()), "block3 should stay frozen (only the named block)"
assert not any(p.requires_grad for p in base.block20.parameters()), \
    "block20 should stay frozen: only the block named exactly block2 (base.get_submodule(block))"
assert head[1].weight.requires_grad and head[3].weight.requires_grad, "the head should stay trainable"
assert not head[1].bias.requires_grad, "a parameter outside the base that was frozen should stay frozen"
groups = optimizer.param_groups
assert all(g["lr"] == 3e-5 for g in groups), f"the learning rate should be lr=3e-5, got {[g['lr'] for g in groups]}"
in_optimizer = {id(p) for g in groups for p in g["params"]}
trainable = {id(p) for p in model.parameters() if p.requires_grad}
assert trainable <= in_optimizer, "the optimizer misses trainable parameters (was it built before unfreezing?)"
assert in_optimizer <= trainable, "the optimizer holds frozen parameters (was it built before freezing or from all parameters?)"
snapshot = {name: p.detach().clone() for name, p in model.named_parameters()}
x, y = torch.rand(8, 3, 8, 8), torch.randint(0, 3, (8,))
model.train()
loss = F.cross_entropy(model(x), y)
optimizer.zero_grad()
loss.backward()
optimizer.step()
moved = {name for name, p in model.named_parameters() if not torch.equal(p, snapshot[name])}
assert {"base.block2.0.weight", "head.3.weight"} <= moved, f"a step should update block2 and the head; it moved {sorted(moved)}"
assert not any(name.startswith(("base.block1", "base.block3", "base.block20", "head.1.bias")) for name in moved), \
    f"only block2 and the head's trainable parameters may move: {sorted(moved)}"
### END HIDDEN TESTS

# %% [markdown]
# ## 7. When transfer pays: from scratch, frozen base, fine-tuning
# Three ways to learn digits from $n$ labelled examples per class, all with the same
# network shape (the course's three blocks and a `Linear(1024, 10)` head), Adam, batches
# of 32 and about the same number of update steps:
#
# * **from scratch**: random weights, everything trained (learning rate 0.001);
# * **frozen base + new head**: the Fashion-MNIST base frozen, features extracted once, the
#   head trained on them (0.001); a fourth column trains the lesson text's large head
#   (1.3 million parameters on 1,024 features) instead;
# * **fine-tuning the top block**: start from the frozen run's head, unfreeze block3 with
#   `setup_fine_tuning` and train block3 and the head with a **ten times lower** rate (0.0001).
#   Blocks 1 and 2 stay frozen here too, so their output is computed once as well, and
#   block3 trains on it: the same result as running the whole network, in about half the time.

# %%
LABELS_PER_CLASS = pick(smoke=(10,), standard=(10, 100, 700))
STEPS = pick(smoke=20, standard=150, full=600)  # about this many updates per run, in whole epochs
CURVES_AT = pick(smoke=10, standard=100)
device = cu.get_device()


def epochs_for(n):
    return max(1, round(STEPS / -(-n // 32)))


def feature_loader(features, labels, shuffle=True):
    data = torch.utils.data.TensorDataset(torch.as_tensor(features), torch.as_tensor(labels))
    return torch.utils.data.DataLoader(data, batch_size=32 if shuffle else 512, shuffle=shuffle,
                                       generator=torch.Generator().manual_seed(SEED))


def test_accuracy(model, x):
    return float(np.mean(cu.predict(model, x).argmax(1) == mnist.y_test))


lower_blocks = freeze_base(nn.Sequential(OrderedDict(
    (name, copy.deepcopy(getattr(pretrained, name))) for name in ("block1", "block2")))).to(device)
top_block = freeze_base(nn.Sequential(OrderedDict(block3=copy.deepcopy(pretrained.block3)))).to(device)
start = time.perf_counter()
needed = labelled(max(LABELS_PER_CLASS))  # the training digits any run uses
maps, features = {}, {}
for part, x in (("train", x_train[needed]), ("val", x_val), ("test", x_test)):
    # blocks 1 and 2 stay frozen in every transfer run, fine-tuning included: their output is computed once
    maps[part] = torch.from_numpy(extract_features(lower_blocks, x.to(device))).reshape(-1, 32, 8, 8)
    features[part] = extract_features(top_block, maps[part].to(device))  # the frozen base's 1,024 features
position = np.full(len(x_train), -1)
position[needed] = np.arange(len(needed))  # row of a training digit in features["train"]
print(f"features of {sum(len(f) for f in features.values()):,} digits in {time.perf_counter() - start:.1f} s")

results, curves, models = {}, {}, {}
for per_class in LABELS_PER_CLASS:
    idx = labelled(per_class)
    epochs = epochs_for(len(idx))
    with_curves = per_class == CURVES_AT
    row = {}
    # from scratch
    cu.seed_everything(SEED)
    scratch = nn.Sequential(OrderedDict(base=cu.vgg_style_network(include_top=False),
                                        head=nn.Sequential(nn.Flatten(), nn.Linear(1024, 10))))
    history = cu.train(scratch, cu.make_loader(x_train[idx], y_train[idx], 32, shuffle=True, seed=SEED),
                       cu.make_loader(x_val, y_val, 256) if with_curves else None, epochs=epochs, verbose=False,
                       optimizer=torch.optim.Adam(scratch.parameters(), lr=1e-3))
    row["from scratch"] = test_accuracy(scratch, x_test)
    curves.setdefault("from scratch", history)
    # frozen base + new head, on the cached features
    cu.seed_everything(SEED)
    head = nn.Sequential(nn.Flatten(), nn.Linear(1024, 10))
    history = cu.train(head, feature_loader(features["train"][position[idx]], mnist.y_train[idx]),
                       feature_loader(features["val"], mnist.y_val, False) if with_curves else None,
                       epochs=epochs, verbose=False)
    with torch.no_grad():
        row["frozen + new head"] = float(np.mean(head.eval()(torch.from_numpy(features["test"]).to(device))
                                                 .argmax(1).cpu().numpy() == mnist.y_test))
    curves.setdefault("frozen + new head", history)
    # frozen base + the lesson text's large head
    cu.seed_everything(SEED)
    big_head = build_head((64, 4, 4))
    cu.train(big_head, feature_loader(features["train"][position[idx]], mnist.y_train[idx]), epochs=epochs, verbose=False)
    with torch.no_grad():
        row["frozen + large head"] = float(np.mean(big_head.eval()(torch.from_numpy(features["test"]).to(device))
                                                   .argmax(1).cpu().numpy() == mnist.y_test))
    # fine-tuning block3, starting from the trained head
    cu.seed_everything(SEED)
    tuned = nn.Sequential(OrderedDict(base=copy.deepcopy(top_block), head=copy.deepcopy(head)))  # on block2's maps
    optimizer = setup_fine_tuning(tuned, tuned.base, "block3", lr=1e-4)
    history = cu.train(tuned, cu.make_loader(maps["train"][position[idx]], y_train[idx], 32, shuffle=True, seed=SEED),
                       cu.make_loader(maps["val"], y_val, 256) if with_curves else None, epochs=epochs, verbose=False,
                       optimizer=optimizer)
    row["fine-tuned block3"] = test_accuracy(tuned, maps["test"])
    curves.setdefault("fine-tuned block3", history)
    results[per_class] = row
    models[per_class] = {"scratch": scratch, "tuned": tuned}
    print(f"{per_class:>4} per class ({len(idx):,} digits, {epochs} epochs): "
          + ", ".join(f"{k} {v:.1%}" for k, v in row.items()))

# %%
columns = list(next(iter(results.values())))
print(f"test accuracy on {len(mnist.y_test):,} digits (PyTorch)")
print(f"{'labels per class':<18}" + "".join(f"{c:>22}" for c in columns))
for per_class, row in results.items():
    print(f"{per_class:<18}" + "".join(f"{row[c]:>22.1%}" for c in columns))

# %% [markdown]
# Read the table by rows, and compare it with the other framework's notebook (the numbers of
# one run in the `standard` profile on a 2-core CPU: PyTorch, 10 / 100 / 700 per class,
# from scratch 80 / 90 / 92%, frozen + new head 82 / 90 / 91%, fine-tuned 82 / 91 / 93%;
# Keras from scratch 86 / 93 / 96%, frozen 82 / 88 / 90%, fine-tuned 82 / 90 / 92%).
#
# * **The frozen features have a ceiling.** A linear head on Fashion-MNIST features reaches
#   about 80% with only 10 digits per class, and stays near 90% however many labels it gets:
#   features learned on clothes separate digits well, but not perfectly.
# * **Training from scratch keeps improving with more labels**, and overtakes the frozen base
#   somewhere between 10 and 700 per class. *Where* depends on how quickly the plain network
#   learns from scratch: Keras initialises its convolutions with Glorot's rule and trains this
#   network from scratch markedly faster than PyTorch's default initialisation, so in Keras
#   it is ahead already at 10 per class, while in PyTorch it draws level at 100 and leads at 700.
# * **Fine-tuning block3** with a ten times lower rate lifts the ceiling by a few points:
#   the top block adapts to strokes instead of fabric.
# * The lesson text's **large head** (1.3 million parameters) ends within a few points of the
#   single linear layer: with fixed features and this few update steps it neither over-fits
#   badly nor learns much more.
#
# So transfer pays when the labels are few *and* the source task's features suit the target;
# with enough labels, or a source far from the target (clothes against digits), a network
# trained from scratch catches up. ImageNet's photographs of a thousand classes give far more
# general features than our 58,000 clothes, which is why the lesson text's recipe works so
# well on photographs.
#
# The training curves (on the validation digits) at the middle size, and the confusion
# matrix of the fine-tuned network:

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
for name, history in curves.items():
    axes[0].plot(history["loss"], label=name)
    if "val_accuracy" in history:
        axes[1].plot(history["val_accuracy"], label=name)
axes[0].set(title=f"training loss, {CURVES_AT} digits per class", xlabel="epoch")
axes[1].set(title="validation accuracy", xlabel="epoch")
axes[0].legend()
axes[1].legend()
plt.show()
predicted = cu.predict(models[CURVES_AT]["tuned"], maps["test"]).argmax(1)
plots.plot_confusion_matrix(mnist.y_test, predicted, class_names=mnist.class_names)
plt.show()

# %% [markdown]
# **What transfer does to the features.** A 2-D projection (the first two principal
# components) of the 1,024 features of test digits, coloured by class: from a randomly
# initialised base, from the base pretrained on clothes (before transfer), and from the
# base fine-tuned on digits (after). The pretrained features already group the classes;
# fine-tuning pulls them further apart.

# %%
def pca_2d(features, iterations=30):
    """The projection on the first two principal components, by power iteration with
    Gram-Schmidt (plain numpy: a full SVD of 1,000 x 1,024 features is slow on a busy CPU)."""
    centred = (features - features.mean(axis=0)).astype(np.float64)
    basis = np.random.default_rng(0).normal(size=(centred.shape[1], 2))
    for _ in range(iterations):
        basis = np.einsum("nd,nk->dk", centred, np.einsum("nd,dk->nk", centred, basis))
        first = basis[:, 0] / np.sqrt(np.sum(basis[:, 0] ** 2))
        second = basis[:, 1] - np.sum(first * basis[:, 1]) * first
        basis = np.stack([first, second / np.sqrt(np.sum(second ** 2))], axis=1)
    return np.einsum("nd,dk->nk", centred, basis)


n_show = min(1000, len(mnist.y_test))
cu.seed_everything(SEED)
random_base = cu.vgg_style_network(include_top=False).to(device)
panels = [("random base", extract_features(random_base, x_test[:n_show].to(device))),
          ("pretrained on Fashion-MNIST", features["test"][:n_show]),
          (f"fine-tuned, {CURVES_AT} per class", extract_features(models[CURVES_AT]["tuned"].base,
                                                                   maps["test"][:n_show].to(device)))]
fig, axes = plt.subplots(1, 3, figsize=(13, 4))
for ax, (title, panel_features) in zip(axes, panels):
    points = pca_2d(panel_features)
    scatter = ax.scatter(points[:, 0], points[:, 1], c=mnist.y_test[:n_show], cmap="tab10", s=5)
    ax.set(title=title, xticks=[], yticks=[])
fig.legend(*scatter.legend_elements(), loc="center right", title="digit")
plt.show()

# %% [markdown]
# ## 8. Why VGG stops near 19 layers: residual connections
# VGG's authors went to 16 and 19 layers; deeper plain stacks trained *worse*, even on the
# training data. Each layer multiplies the gradient by its Jacobian on the way back, so in a
# deep plain stack it shrinks (or grows) geometrically, and the early layers barely learn.
# A **residual block** (He et al., 2015, ResNet) adds its input to its output,
# $y = \mathrm{ReLU}(x + F(x))$: the identity path carries the signal and the gradient
# through unchanged, and the block only has to learn a correction $F$. Networks of 50, 101
# and 152 layers followed. The lesson text names residual connections as a key advance.

# %%
class ResidualBlock(nn.Module):
    """y = ReLU(x + conv(ReLU(conv(x)))), 3x3 "same" convolutions, channels unchanged."""

    def __init__(self, channels):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x):
        return F.relu(x + self.conv2(F.relu(self.conv1(x))))


class PlainBlock(ResidualBlock):
    """The same two convolutions without the identity path."""

    def forward(self, x):
        return F.relu(self.conv2(F.relu(self.conv1(x))))


def deep_stack(block, depth_blocks, channels=8):
    return nn.Sequential(nn.Conv2d(1, channels, 3, padding=1), nn.ReLU(),
                         *[block(channels) for _ in range(depth_blocks)],
                         nn.Flatten(), nn.Linear(channels * 14 * 14, 10))


DEPTH = pick(smoke=3, standard=10)  # blocks of two convolutions: 2 * DEPTH + 2 layers with weights
RES_STEPS = pick(smoke=10, standard=150)
small = torch.from_numpy(mnist.x_train[:, ::2, ::2].astype(np.float32)[:, None] / 255)  # 14x14 digits
for block in (PlainBlock, ResidualBlock):
    cu.seed_everything(SEED)
    net = deep_stack(block, DEPTH)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    losses, first_grad = [], None
    for step in range(RES_STEPS):
        batch = torch.randint(0, len(small), (32,), generator=torch.Generator().manual_seed(step))
        loss = F.cross_entropy(net(small[batch]), torch.from_numpy(mnist.y_train)[batch])
        optimizer.zero_grad()
        loss.backward()
        if first_grad is None:
            first_grad = net[0].weight.grad.norm().item()
        optimizer.step()
        losses.append(loss.item())
    print(f"{block.__name__:>13}, {2 * DEPTH + 2} layers: gradient norm at the first layer {first_grad:.2e}, "
          f"loss {np.mean(losses[:10]):.3f} -> {np.mean(losses[-10:]):.3f} after {RES_STEPS} steps")
    plt.plot(losses, label=block.__name__)
plt.gca().set(title=f"two stacks of {2 * DEPTH + 2} layers, 14x14 digits", xlabel="step", ylabel="training loss")
plt.legend()
plt.show()

# %% [markdown]
# The plain stack's first layer gets a gradient several orders of magnitude smaller, and its
# loss stays at chance ($\ln 10 \approx 2.30$); the residual stack of the same depth learns at once.
#
# ## Summary
# * VGG16: five blocks of 3×3 convolutions and 2×2 pooling; 14.7 million parameters in the
#   convolutions, 123.6 million in the original dense classifier. The lesson text's model
#   (frozen base, `Flatten -> 1024 -> 256 -> 10` head) has 40,670,794 parameters, 25,956,106
#   of them trainable.
# * Preprocessing must match the weights: caffe mode (BGR, ImageNet means, 0..255) for
#   Keras' file, mean/std on [0, 1] RGB for torchvision's.
# * Freeze with `requires_grad = False`; build the optimizer *after* choosing what trains;
#   keep frozen batch norm in `eval()` mode.
# * With a frozen base, extract features once: the same result, many times faster.
# * Transfer pays when labels are few; with many labels, training from scratch catches up.
#   Fine-tune the top block with a lower learning rate once the head has learned.
# * Residual connections let gradients through deep stacks: why networks went past 19 layers.
#
# Next: lesson 04 turns from images to sequences, with recurrent networks.
