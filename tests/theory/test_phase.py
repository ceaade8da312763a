"""Phase diagrams: the vectorized grid agrees with the scalar functions; plot; serialization."""
import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from deepstart.theory import PhaseDiagram, chi_1, critical_point, depth_scales, fixed_point, phase_diagram  # noqa

SW = np.linspace(0.3, 3.5, 9)
SB = np.array([0.0, 0.05, 0.3, 1.0])


@pytest.fixture(scope="module")
def tanh_pd():
    return phase_diagram("tanh", SW, SB)


def test_grid_matches_scalar_functions(tanh_pd):
    assert tanh_pd.chi_1.shape == tanh_pd.q_star.shape == tanh_pd.xi_c.shape == (len(SW), len(SB))
    for i in range(0, len(SW), 2):
        for j in range(len(SB)):
            q = fixed_point("tanh", SW[i], SB[j])
            assert tanh_pd.q_star[i, j] == pytest.approx(q, rel=1e-8, abs=1e-12)
            assert tanh_pd.chi_1[i, j] == pytest.approx(chi_1("tanh", SW[i], SB[j]), rel=1e-8)
            # ξ_c: ordered phase is −1/log χ₁ exactly; chaotic uses the truncated Mehler series (phase.py): 1e-5
            assert tanh_pd.xi_c[i, j] == pytest.approx(depth_scales("tanh", SW[i], SB[j]).xi_c, rel=1e-5)


def test_both_phases_present_and_critical_line(tanh_pd):
    assert tanh_pd.chaotic.any() and (~tanh_pd.chaotic).any()
    fine = phase_diagram("tanh", np.linspace(0.9, 2.5, 801), [0.3])
    cp = critical_point("tanh", sigma_b=0.3)
    assert fine.critical_sigma_w()[0] == pytest.approx(cp.sigma_w, abs=1e-5)  # grid step 2e-3, linear interp.


@pytest.mark.parametrize("name", ["erf", "hard_tanh", "relu", "gelu"])
def test_other_activations_agree_with_scalar(name):
    pd = phase_diagram(name, [0.8, 1.6, 2.4], [0.0, 0.4])
    for i, sw in enumerate(pd.sigma_w):
        for j, sb in enumerate(pd.sigma_b):
            q = fixed_point(name, sw, sb)
            assert pd.q_star[i, j] == pytest.approx(q, rel=1e-7, abs=1e-12) or (np.isnan(q) and
                                                                                np.isnan(pd.q_star[i, j]))
            if np.isfinite(q):
                assert pd.xi_c[i, j] == pytest.approx(depth_scales(name, sw, sb).xi_c, rel=1e-4)


def test_plot_and_roundtrip(tanh_pd):
    fig, ax = tanh_pd.plot()
    assert ax.get_xlabel() == "σ_w" and len(ax.collections) > 0
    matplotlib.pyplot.close(fig)
    again = PhaseDiagram.from_dict(tanh_pd.to_dict())
    assert np.array_equal(again.chi_1, tanh_pd.chi_1) and again.activation == "tanh"


def test_bad_grid():
    with pytest.raises(ValueError, match="sigma_w_grid"):
        phase_diagram("tanh", [-1.0, 1.0], [0.0])
