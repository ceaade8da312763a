"""Activation registry: names, parameters, derivatives, closed forms against quadrature."""
import math

import numpy as np
import pytest

from deepstart.theory import ACTIVATION_NAMES, Activation, get_activation
from deepstart.theory.gaussian import gaussian_nodes
from deepstart.theory._correlation import two_point

X = np.linspace(-3.3, 3.1, 41)  # avoids the kinks at 0 and ±1 exactly


def test_names_are_the_contract():
    # the original names first, in this order (error messages list them); torch.nn's other activations appended
    assert ACTIVATION_NAMES == ("relu", "leaky_relu", "linear", "tanh", "hard_tanh", "erf", "sigmoid", "gelu",
                                "silu", "elu", "selu", "softplus", "gelu_tanh", "mish", "hardswish", "hardsigmoid",
                                "relu6", "celu", "softsign", "logsigmoid", "tanhshrink", "softshrink", "hardshrink",
                                "threshold", "prelu", "rrelu", "rrelu_train")


def test_unknown_name_lists_valid_ones():
    with pytest.raises(ValueError, match="valid names: relu, leaky_relu"):
        get_activation("swishy")


@pytest.mark.parametrize("spec, params, err", [
    ("relu", {"negative_slope": 0.1}, TypeError), ("softplus", {"beta": -1.0}, ValueError),
    ("leaky_relu(negative_slope=oops)", {}, ValueError), (3.0, {}, TypeError)])
def test_bad_parameters(spec, params, err):
    with pytest.raises(err):
        get_activation(spec, **params)


@pytest.mark.parametrize("name", ACTIVATION_NAMES)
def test_derivatives_match_finite_differences(name):
    act = get_activation(name)
    h = 1e-6
    fd1 = (act.phi(X + h) - act.phi(X - h)) / (2 * h)
    fd2 = (act.dphi(X + h) - act.dphi(X - h)) / (2 * h)
    assert np.allclose(act.dphi(X), fd1, atol=1e-7)  # FD error ~h² φ''' + ε/h ≈ 1e-10
    assert np.allclose(act.d2phi(X), fd2, atol=1e-5)


def test_known_values_against_torch_conventions():
    # torch.nn.functional conventions: selu constants (Klambauer et al. 2017), gelu exact (erf form), softplus β
    assert get_activation("selu").phi(np.array([-1.0]))[0] == pytest.approx(1.0507009873554805 * 1.6732632423543772
                                                                              * (math.exp(-1) - 1))
    assert get_activation("gelu").phi(np.array([1.0]))[0] == pytest.approx(0.5 * (1 + math.erf(1 / math.sqrt(2))))
    assert get_activation("softplus", beta=2.0).phi(np.array([0.0]))[0] == pytest.approx(math.log(2) / 2)
    assert get_activation("leaky_relu(negative_slope=0.2)").phi(np.array([-1.0]))[0] == pytest.approx(-0.2)


def test_leaky_relu_slope_zero_is_relu():
    relu, leaky = get_activation("relu"), get_activation("leaky_relu", negative_slope=0.0)
    q = np.array([0.3, 1.0, 2.5])
    for f in ("phi", "dphi", "d2phi"):
        assert np.array_equal(getattr(relu, f)(X), getattr(leaky, f)(X))
    assert np.allclose(relu.second_moment(q), leaky.second_moment(q), atol=1e-15)
    assert np.allclose(relu.cross_moment(q, q, 0.4 * q), leaky.cross_moment(q, q, 0.4 * q), atol=1e-15)


def _quad(f, q, order, act):
    x, w = gaussian_nodes(0.0, q, order=order, kinks=act.breakpoints)
    return np.sum(f(x) * w, axis=-1)


@pytest.mark.parametrize("spec", ["relu", "leaky_relu(negative_slope=0.3)", "linear", "hard_tanh", "erf",
                                  "erf(scale=0.886226925)"])
def test_one_point_closed_forms_against_quadrature(spec):
    act = get_activation(spec)
    q = np.array([0.05, 0.5, 1.0, 3.0])
    for closed, f in ((act.second_moment, lambda x: act.phi(x) ** 2), (act.dphi_second_moment,
                                                                        lambda x: act.dphi(x) ** 2)):
        lo, hi = _quad(f, q, 32, act), _quad(f, q, 64, act)
        tol = max(np.max(np.abs(hi - lo)), 1e-13) * 10  # order-n vs order-2n convergence check
        assert tol < 1e-9
        assert np.allclose(closed(q), hi, atol=tol, rtol=0)


@pytest.mark.parametrize("spec", ["relu", "leaky_relu(negative_slope=0.3)", "erf"])
def test_two_point_closed_forms_against_nested_quadrature(spec):
    act = get_activation(spec)
    generic = Activation("same-without-closed-forms", act.phi, act.dphi, act.d2phi, kinks=act.kinks,
                         split_points=act.split_points)
    q1, q2, c = np.array([0.4, 1.0, 2.0]), np.array([0.7, 1.0, 1.5]), np.array([-0.6, 0.3, 0.9])
    q12 = c * np.sqrt(q1 * q2)
    for deriv in (False, True):
        lo = two_point(generic, q1, q2, q12, order=24, derivative=deriv)
        hi = two_point(generic, q1, q2, q12, order=48, derivative=deriv)
        tol = max(np.max(np.abs(hi - lo)) * 10, 1e-12)
        assert tol < 1e-7
        assert np.allclose(act.cross_moment(q1, q2, q12) if not deriv else act.dphi_cross_moment(q1, q2, q12), hi,
                           atol=tol, rtol=0)


def test_relu_c_map_closed_form_from_theory_sheet():
    # THEORY.md §1: ReLU, σ_b = 0: c' = (√(1−c²) + (π − arccos c) c)/π (E relu² = q/2)
    act = get_activation("relu")
    c = np.linspace(-1, 1, 9)
    expected = (np.sqrt(1 - c ** 2) + (np.pi - np.arccos(c)) * c) / np.pi
    assert np.allclose(act.cross_moment(1.0, 1.0, c) / 0.5, expected, atol=1e-14)


def test_hard_tanh_p_reference():
    # THEORY.md §1: hard-tanh at q* = 1: p = P(|h| < 1) = 0.6826895
    assert get_activation("hard_tanh").dphi_second_moment(1.0) == pytest.approx(0.6826895, abs=5e-8)


def test_callable_activation_derivatives_by_differentiation():
    act = get_activation(np.tanh, name="mytanh", bound=1.0)
    ref = get_activation("tanh")
    assert act.name == "mytanh"
    assert np.allclose(act.dphi(X), ref.dphi(X), atol=1e-9)
    assert np.allclose(act.d2phi(X), ref.d2phi(X), atol=1e-5)
    with pytest.raises(TypeError, match="unknown keyword"):
        get_activation(np.tanh, slope=1)


def test_spec_string_and_roundtrip():
    act = get_activation("LeakyReLU(negative_slope=0.2)")
    assert act.name == "leaky_relu" and act.params == {"negative_slope": 0.2}
    again = Activation.from_dict(act.to_dict())
    assert np.array_equal(again.phi(X), act.phi(X))
    assert get_activation(act) is act
