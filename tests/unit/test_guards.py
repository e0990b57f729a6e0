"""course_utils.guards finds a forbidden built-in however the answer reaches it, and leaves
plain code alone. Answers are exec'd as notebook cells are (module ``__main__``)."""
import textwrap

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_utils import tensorflow as tfu
from course_utils.guards import check_from_scratch, forbidden_uses

tf, keras = tfu.tf, tfu.keras
TORCH_POOLS = [F.max_pool2d, torch.max_pool2d, F.avg_pool2d, nn.MaxPool2d, nn.AvgPool2d]
TF_POOLS = [tf.nn.max_pool2d, tf.nn.max_pool, tf.nn.pool, keras.layers.MaxPool2D, keras.ops.max_pool]

TORCH_SETUP = "import torch\nimport torch.nn.functional as F\nfrom torch import nn\nimport functools\n"
TF_SETUP = "import tensorflow as tf\nfrom tensorflow import keras\n"


def answer(source: str, setup: str = TORCH_SETUP, name: str = "pool"):
    namespace = {"__name__": "__main__"}
    exec(compile(setup + textwrap.dedent(source), "answer", "exec"), namespace)
    return namespace[name]


CHEATS = {
    "direct call": "def pool(x):\n    return F.max_pool2d(x, 2)\n",
    "torch namespace": "def pool(x):\n    return torch.max_pool2d(x, 2)\n",
    "module-level alias": "mp = F.max_pool2d\ndef pool(x):\n    return mp(x, 2)\n",
    "import as": "from torch.nn.functional import max_pool2d as other\ndef pool(x):\n    return other(x, 2)\n",
    "import inside": "def pool(x):\n    from torch.nn.functional import max_pool2d\n    return max_pool2d(x, 2)\n",
    "import module inside": "def pool(x):\n    import torch.nn.functional as G\n    return G.max_pool2d(x, 2)\n",
    "local alias": "def pool(x):\n    f = F.max_pool2d\n    return f(x, 2)\n",
    "default argument": "def pool(x, f=F.max_pool2d):\n    return f(x, 2)\n",
    "helper": "def helper(x):\n    return F.max_pool2d(x, 2)\ndef pool(x):\n    return helper(x)\n",
    "lambda": "helper = lambda x: F.max_pool2d(x, 2)\ndef pool(x):\n    return helper(x)\n",
    "partial": "helper = functools.partial(F.max_pool2d, kernel_size=2)\ndef pool(x):\n    return helper(x)\n",
    "layer object": "layer = nn.MaxPool2d(2)\ndef pool(x):\n    return layer(x)\n",
    "layer made inside": "def pool(x):\n    return nn.MaxPool2d(2)(x)\n",
    "own module": ("class Pool(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
                   "        self.p = nn.MaxPool2d(2)\n    def forward(self, x):\n        return self.p(x)\n"
                   "def pool(x):\n    return Pool()(x)\n"),
    "subclass of the layer": "class P(nn.MaxPool2d):\n    pass\ndef pool(x):\n    return P(2)(x)\n",
    "closure": "def make():\n    f = F.max_pool2d\n    def inner(x):\n        return f(x, 2)\n    return inner\npool = make()\n",
    "getattr": "def pool(x):\n    return getattr(F, 'max_' + 'pool2d')(x, 2)\n",
    "eval": "def pool(x):\n    return eval('F.max_pool2d')(x, 2)\n",
    "importlib": "import importlib\ndef pool(x):\n    return importlib.import_module('torch.nn.functional').max_pool2d(x, 2)\n",
    "nested def": "def pool(x):\n    def inner(y):\n        return F.max_pool2d(y, 2)\n    return inner(x)\n",
    "attrgetter": "import operator\ndef pool(x):\n    return operator.attrgetter('nn.functional.max_pool2d')(torch)(x, 2)\n",
    "string.Formatter": ("import string\ndef pool(x):\n"
                         "    return string.Formatter().get_field('0.max_pool2d', [F], {})[0](x, 2)\n"),
}


@pytest.mark.parametrize("name", CHEATS)
def test_every_way_to_reach_the_built_in_is_caught(name):
    func = answer(CHEATS[name])
    assert forbidden_uses(func, TORCH_POOLS), f"{name}: not caught"
    with pytest.raises(AssertionError, match="must be written from scratch"):
        check_from_scratch(func, TORCH_POOLS, name="pool")


PLAIN_TORCH = {
    "stack and amax": """
        def pool(x, size=2):
            n, c, h, w = x.shape
            windows = [x[:, :, u:h - h % size:size, v:w - w % size:size] for u in range(size) for v in range(size)]
            return torch.stack(windows).amax(dim=0)
        """,
    "unfold": """
        def pool(x, size=2):
            return x.unfold(2, size, size).unfold(3, size, size).amax(dim=(-1, -2))
        """,
    "loops with a helper and a class": """
        class Window:
            def __init__(self, size):
                self.size = size
            def biggest(self, patch):
                return patch.max()
        def pool(x, size=2):
            out = torch.zeros(x.shape[0], x.shape[1], x.shape[2] // size, x.shape[3] // size)
            window = Window(size)
            for i in range(out.shape[2]):
                for j in range(out.shape[3]):
                    for n in range(x.shape[0]):
                        for c in range(x.shape[1]):
                            out[n, c, i, j] = window.biggest(x[n, c, i*size:(i+1)*size, j*size:(j+1)*size])
            return out
        """,
}


@pytest.mark.parametrize("name", PLAIN_TORCH)
def test_plain_tensor_code_passes_and_computes_the_pooling(name):
    func = answer(PLAIN_TORCH[name])
    assert forbidden_uses(func, TORCH_POOLS) == []
    check_from_scratch(func, TORCH_POOLS, name="pool")
    x = torch.randn(2, 3, 6, 6)
    torch.testing.assert_close(func(x), F.max_pool2d(x, 2))


def test_tensorflow_answers_are_checked_the_same_way():
    cheats = ["def pool(x):\n    return tf.nn.max_pool2d(x, 2, 2, 'VALID')\n",
              "mp = keras.layers.MaxPool2D(2)\ndef pool(x):\n    return mp(x)\n",
              "m = tf.nn.max_pool2d\ndef pool(x):\n    return m(x, 2, 2, 'VALID')\n",
              "def pool(x):\n    return keras.ops.max_pool(x, 2)\n"]
    cheats.append("@tf.function\ndef helper(x):\n    return tf.nn.max_pool2d(x, 2, 2, 'VALID')\n"
                  "def pool(x):\n    return helper(x)\n")
    cheats.append("import functools\ndef deco(f):\n    @functools.wraps(f)\n    def inner(*a):\n        return f(*a)\n"
                  "    return inner\n@deco\ndef pool(x):\n    return tf.nn.max_pool2d(x, 2, 2, 'VALID')\n")
    cheats.append("def pool(x):\n    from tensorflow.compat import v1\n    return v1.nn.max_pool2d(x, 2, 2, 'VALID')\n")
    for source in cheats:
        assert forbidden_uses(answer(source, TF_SETUP), TF_POOLS + [tf.compat.v1.nn.max_pool2d]), source
    plain = answer("""
        def pool(x, size=2):
            n, h, w, c = x.shape
            x = tf.reshape(x[:, :h - h % size, :w - w % size], (n, h // size, size, w // size, size, c))
            return tf.reduce_max(x, axis=(2, 4))
        """, TF_SETUP)
    assert forbidden_uses(plain, TF_POOLS) == []
    x = tf.random.normal((2, 6, 6, 3))
    assert float(tf.reduce_max(tf.abs(plain(x) - tf.nn.max_pool2d(x, 2, 2, "VALID")))) == 0.0


def test_the_message_names_what_was_used_and_the_hint():
    func = answer(CHEATS["module-level alias"])
    with pytest.raises(AssertionError, match=r"pool must be written from scratch; it uses mp\. use tensor ops"):
        check_from_scratch(func, TORCH_POOLS, name="pool", allowed="use tensor ops")
