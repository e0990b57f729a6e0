"""course_utils.torch and course_utils.tensorflow mirror each other: the same public
function names with the same parameters (name, kind, default, order), so that a lesson's two
notebooks read alike. Every difference is listed here with its reason.

Rule: a parameter only one framework has is keyword-only and comes after the shared ones,
so a positional call means the same thing in both.
"""
import inspect

import torch._dynamo  # noqa: F401  (before TensorFlow: see DESIGN.md)

from course_utils import tensorflow as tfu
from course_utils import torch as tu

ONLY_IN = {
    # function -> {parameter: (framework that has it, reason)}
    "make_loader": {
        "device": ("torch", "PyTorch places data explicitly; tf.data lets TensorFlow place it"),
        "num_classes": ("tensorflow", "one-hot targets for Keras' categorical_crossentropy; PyTorch's "
                                      "cross-entropy takes class indices"),
    },
    "make_sequence_loader": {
        "device": ("torch", "PyTorch places data explicitly; tf.data lets TensorFlow place it"),
    },
    "train": {
        "optimizer": ("torch", "Keras takes it in model.compile"),
        "loss_fn": ("torch", "Keras takes it in model.compile"),
        "scheduler": ("torch", "Keras schedules the learning rate with a callback (or the optimizer)"),
        "clip_norm": ("torch", "Keras clips in the optimizer (global_clipnorm=) given to compile"),
        "amp": ("torch", "Keras sets mixed precision with keras.mixed_precision before building the model"),
        "callbacks": ("tensorflow", "Keras' hook into fit; the PyTorch loop is the course's own code"),
    },
    "evaluate": {
        "loss_fn": ("torch", "Keras evaluates the compiled loss"),
    },
    "train_truncated_bptt": {
        "optimizer": ("torch", "Keras takes it in model.compile"),
        "loss_fn": ("torch", "Keras takes it in model.compile"),
        "clip_norm": ("torch", "Keras clips in the optimizer (global_clipnorm=) given to compile"),
    },
}
FUNCTIONS_ONLY_IN = {
    # function -> (framework that has it, reason)
    "refuse_autograd": ("torch", "a torch function mode; TensorFlow's tests refuse GradientTape by reading the code"),
    "autograd_refused": ("torch", "refuse_autograd's state, which the grader forwards to the kernel"),
}
MODULES = {"torch": tu, "tensorflow": tfu}


def public_functions(module) -> dict[str, inspect.Signature]:
    return {name: inspect.signature(obj) for name, obj in vars(module).items()
            if inspect.isfunction(obj) and not name.startswith("_") and obj.__module__ == module.__name__}


def test_both_modules_define_the_same_public_functions():
    names = {framework: set(public_functions(module)) for framework, module in MODULES.items()}
    for framework, other in (("torch", "tensorflow"), ("tensorflow", "torch")):
        for name in sorted(names[framework] - names[other]):
            assert FUNCTIONS_ONLY_IN.get(name, (None,))[0] == framework, \
                f"{name} is in course_utils.{framework} only; add it to the other module or to FUNCTIONS_ONLY_IN"
    for name, (framework, _) in FUNCTIONS_ONLY_IN.items():
        assert name in names[framework], f"stale FUNCTIONS_ONLY_IN entry {name}"


def test_shared_functions_have_the_same_parameters_except_the_listed_ones():
    torch_fns, tf_fns = public_functions(tu), public_functions(tfu)
    problems = []
    for name in sorted(set(torch_fns) & set(tf_fns)):
        allowed = ONLY_IN.get(name, {})
        params = {"torch": torch_fns[name].parameters, "tensorflow": tf_fns[name].parameters}
        shared = {fw: [p for p in ps.values() if p.name not in allowed] for fw, ps in params.items()}
        described = {fw: [(p.name, p.kind, p.default) for p in ps] for fw, ps in shared.items()}
        if described["torch"] != described["tensorflow"]:
            problems.append(f"{name}: torch {described['torch']} != tensorflow {described['tensorflow']}")
        for parameter, (framework, reason) in allowed.items():
            assert reason, f"{name}({parameter}) needs a reason"
            other = "tensorflow" if framework == "torch" else "torch"
            if parameter not in params[framework] or parameter in params[other]:
                problems.append(f"{name}: {parameter!r} should be in {framework} only (stale ONLY_IN entry?)")
            elif params[framework][parameter].kind is not inspect.Parameter.KEYWORD_ONLY:
                problems.append(f"{name}: the {framework}-only {parameter!r} should be keyword-only")
    for name in ONLY_IN:
        if name not in torch_fns or name not in tf_fns:
            problems.append(f"stale ONLY_IN entry {name}")
    assert not problems, "\n".join(problems)


def test_the_shared_names_cover_the_course_helpers():
    expected = {"get_device", "device_report", "seed_everything", "tf32", "to_tensor_images", "random_affine",
                "make_loader", "count_params", "train", "evaluate", "predict", "feature_maps", "conv_filters",
                "rnn_regressor", "set_rnn_weights", "make_sequence_loader", "train_truncated_bptt", "predict_steps"}
    assert expected <= set(public_functions(tu)) & set(public_functions(tfu))
    assert tu.to_rgb is tfu.to_rgb  # the numpy helper, re-exported by both
