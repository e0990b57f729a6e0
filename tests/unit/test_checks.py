import numpy as np
import pytest
import torch

from course_utils.checks import check_close, check_equal, check_shape, numerical_gradient, rel_error, to_numpy


def test_to_numpy_accepts_tensors_lists_and_bfloat16():
    assert to_numpy(torch.ones(2, requires_grad=True)).tolist() == [1.0, 1.0]
    assert to_numpy(torch.ones(2, dtype=torch.bfloat16)).dtype == np.float32
    assert to_numpy([1, 2]).tolist() == [1, 2]


def test_check_shape_passes_with_wildcards_and_names_both_shapes_on_failure():
    check_shape(np.zeros((4, 32, 26, 26)), (None, 32, 26, 26))
    with pytest.raises(AssertionError, match=r"x should have shape \(\*, 32, 26, 26\) but has shape \(4, 32, 28, 28\)"):
        check_shape(np.zeros((4, 32, 28, 28)), (None, 32, 26, 26), name="x")
    with pytest.raises(AssertionError, match="but has shape"):
        check_shape(torch.zeros(3), (3, 1))


def test_rel_error_is_cs231n_style_and_rejects_shape_mismatch():
    assert rel_error(np.array([1.0, 2.0]), np.array([1.0, 2.0])) == 0.0
    assert rel_error(np.array([1.0]), np.array([3.0])) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="equal shapes"):
        rel_error(np.zeros(2), np.zeros(3))


def test_check_close_reports_location_and_values():
    check_close(np.array([1.0, 2.0]), np.array([1.0, 2.0 + 1e-9]))
    with pytest.raises(AssertionError, match=r"1 of 3 positions.*index \(1,\).*got 5, expected 2"):
        check_close(np.array([1.0, 5.0, 3.0]), np.array([1.0, 2.0, 3.0]), name="y")
    with pytest.raises(AssertionError, match=r"should have shape \(2, 2\) but has shape \(4,\)"):
        check_close(np.zeros(4), np.zeros((2, 2)))
    with pytest.raises(AssertionError, match="NaN"):
        check_close(np.array([np.nan]), np.array([0.0]))


def test_check_equal_scalars_and_arrays():
    check_equal(26, 26)
    with pytest.raises(AssertionError, match="should be 26 but is 27"):
        check_equal(27, 26)
    with pytest.raises(AssertionError, match=r"first at \(1,\): got 3, expected 2"):
        check_equal(np.array([1, 3]), np.array([1, 2]))


def test_numerical_gradient_matches_an_analytic_one_and_leaves_x_unchanged():
    a = np.array([[1.0, -2.0], [0.5, 3.0]])
    before = a.copy()
    grad = numerical_gradient(lambda w: np.sum(w ** 3), a)
    assert grad.dtype == np.float64 and grad.shape == (2, 2)
    np.testing.assert_allclose(grad, 3 * before ** 2, rtol=1e-8)
    np.testing.assert_array_equal(a, before)
    # a float32 tensor is read as float64 (and left alone); f may return a one-element tensor
    t = torch.tensor([0.5, -1.0, 2.0])
    grad = numerical_gradient(lambda w: torch.from_numpy(w).sin().sum(), t, eps=1e-5)
    np.testing.assert_allclose(grad, np.cos(t.double().numpy()), rtol=1e-8)
    assert t.tolist() == [0.5, -1.0, 2.0]
    with pytest.raises(ValueError, match="eps must be positive"):
        numerical_gradient(lambda w: 0.0, a, eps=0)
