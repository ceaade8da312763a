"""Theory predictions for the architecture ``check`` read (NumPy only, from :mod:`deepstart.theory`).

Along the main path, for sites that fit the theory (Linear/Conv layers fed by the previous site, with a known
pointwise activation or none, and residual blocks whose branch is such a chain):

* mean field (Poole et al. 2016 eq. 3): q_j = σ_w² E[M_{j−1}] + σ_b², E[M_j] = E φ(√q_j z)² (exact in expectation
  for piecewise-linear φ, Hanin & Rolnick 2018 Thm 5; infinite-width for others);
* residual blocks (Hanin & Rolnick 2018 §4): E[M_l] = E[M_{l−1}] + η_l² E‖N_l(x)‖²/n, the cross term vanishing
  for a symmetric last layer;
* backward (Schoenholz et al. 2017 §3): E‖δ_{j−1}‖²/‖δ_j‖² = σ_{w,j}² E φ'(√q_j z)² (χ at q_j), and
  1 + η² (branch factor) across a residual block;
* FM2 (Hanin & Rolnick 2018 Thm 5, THEORY.md §4): Var log ξ_j exact for Gaussian weights, zero biases and
  relu / linear layers (digamma forms), so Var log M_j = Σ_{i≤j} Var log ξ_i;
* Jacobian moments (Pennington et al. 2017, THEORY.md §2): m₁ = ∏ σ_{w,l}² μ₁,l and, as normalized variances of
  free products add, Var(λ)/m₁² = Σ_l (μ₂,l/μ₁,l² − 1 − s₁) with s₁ = 0 orthogonal, −1 Gaussian weights.

Where a site does not fit, its predictions are NaN and a note says why.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["predict"]


def _act(spec):
    from deepstart.theory import get_activation

    return get_activation(spec or "linear")


def _post(spec, q):
    """E φ(√q z)² (the q-map with σ_w = 1, σ_b = 0)."""
    from deepstart.theory import q_map

    return float(np.asarray(q_map(_act(spec), q, 1.0, 0.0)).ravel()[0])


def _dphi_moments(spec, q):
    from deepstart.theory import gaussian_expectation

    act = _act(spec)
    mu1 = float(np.asarray(gaussian_expectation(lambda x: act.dphi(x) ** 2, q, kinks=act.kinks)).ravel()[0])
    mu2 = float(np.asarray(gaussian_expectation(lambda x: act.dphi(x) ** 4, q, kinks=act.kinks)).ravel()[0])
    return mu1, mu2


def _layer(site, m_in):
    """(q, E M, backward ratio, μ₁, μ₂) of one theory layer with input mean squared length m_in."""
    q = site["sigma_w"] ** 2 * m_in + site["sigma_b"] ** 2
    mu1, mu2 = _dphi_moments(site["activation"], q)
    return q, _post(site["activation"], q), site["sigma_w"] ** 2 * mu1, mu1, mu2


def _fits(site) -> bool:
    """A Linear/Conv layer with a known law and an activation the theory knows (not ``blackbox:…``)."""
    return bool(site["theory_layer"]) and site["sigma_w"] is not None and math.isfinite(site["sigma_w"]) and \
        not (site["activation"] or "").startswith("blackbox")


def _branch(sites, block, m_in):
    """(E‖N(x)‖²/n, backward factor) of a residual block's branch, or None when it is not a theory chain."""
    inner = [s for s in sites if s["parent"] == block["name"]]
    if not inner or not all(_fits(s) for s in inner):
        return None
    m, back = m_in, 1.0
    for i, s in enumerate(inner):
        if s["source"] is None or (i > 0 and s["source"] != inner[i - 1]["name"]):
            return None
        _, m, r, _, _ = _layer(s, m)
        back *= r
    return m, back


def _log_xi_var(site):
    """Exact Var log ξ_j for a Gaussian relu / linear layer of this width (None otherwise)."""
    from deepstart.theory.finite_width import relu_log_xi_moments

    spec = site["activation"] or "linear"
    if spec not in ("relu", "linear") or site["module_type"] != "Linear" or site["sigma_b"] != 0.0:
        return None
    return relu_log_xi_moments(int(site["width"]), linear=spec == "linear")[1]


def predict(sites: list, m0: float, weight_families: dict) -> dict:
    """Predictions along the main path; ``sites`` are Site dicts, ``m0`` the input's mean M_0 (NaN if unknown),
    ``weight_families`` site name -> "orthogonal"/"normal"/… of its weight (for the Jacobian's s₁)."""
    main = [s for s in sites if s["main"]]
    n = len(main)
    m_pred, q_pred, back, xi_var = (np.full(n, np.nan) for _ in range(4))
    notes, jac_terms = [], []
    m_prev, prev_name = (m0 if math.isfinite(m0) else np.nan), None
    for j, s in enumerate(main):
        connected = s["source"] == ("input" if j == 0 else prev_name)
        if s["kind"] == "layer" and _fits(s) and connected and math.isfinite(m_prev):
            q, m, r, mu1, mu2 = _layer(s, m_prev)
            q_pred[j], m_pred[j], back[j] = q, m, r
            v = _log_xi_var(s)
            xi_var[j] = np.nan if v is None else v
            family = weight_families.get(s["name"], "normal")
            s1 = 0.0 if family in ("orthogonal", "delta_orthogonal") else -1.0
            jac_terms.append((r, mu2 / mu1 ** 2 - 1.0 - s1 if mu1 > 0 else np.inf, family))
        elif s["kind"] == "block" and connected and math.isfinite(m_prev):
            br = _branch(sites, s, m_prev) if s["eta"] is not None else None
            if br is None:
                notes.append(f"{s['name']}: residual branch is not a Linear/Conv chain; no prediction")
            else:
                m_pred[j] = m_prev + s["eta"] ** 2 * br[0]
                back[j] = 1.0 + s["eta"] ** 2 * br[1]
            jac_terms.append(None)
        else:
            why = ("its input is not the previous site's output" if not connected else
                   "no prediction for the site before it" if not math.isfinite(m_prev) else
                   f"activation {s['activation'][9:]} is not known to the theory (measured as a black box)"
                   if (s["activation"] or "").startswith("blackbox") else
                   f"{s['module_type']} is not covered by the theory")
            notes.append(f"{s['name']}: theory not applicable ({why})")
            jac_terms.append(None)
        m_prev, prev_name = m_pred[j], s["name"]
    log_var = np.cumsum(xi_var) if n else np.zeros(0)
    jac = None
    if n and all(t is not None for t in jac_terms):
        m1 = float(np.prod([t[0] for t in jac_terms]))
        relvar = float(np.sum([t[1] for t in jac_terms]))
        jac = {"m1": m1, "relative_variance": relvar, "weights": sorted({t[2] for t in jac_terms})}
        jac.update(_spectrum_params(main, jac["weights"]))
    elif n:
        notes.append("Jacobian spectrum: theory needs every main-path site to be a Linear/Conv chain layer")
    return {"m_pred": m_pred, "q_pred": q_pred, "back_ratio": back, "log_var_pred": log_var, "jacobian": jac,
            "notes": notes}


def _spectrum_params(main: list, weights: list) -> dict:
    """Parameters of the free-probability spectrum (Pennington et al. 2017) when the main path is L equal
    layers ``W, φ`` (one activation, one σ_w, one σ_b, one weight law): ``spectrum`` holds the keyword arguments
    of ``deepstart.theory.jacobian_spectrum``; otherwise ``spectrum`` is None (only m₁ and the variance apply)."""
    acts = [s for s in main if s["kind"] == "layer" and s["activation"]]
    if not acts or len(weights) != 1 or len({s["activation"] for s in acts}) != 1:
        return {"spectrum": None}
    sw = np.array([s["sigma_w"] for s in acts], float)
    sb = np.array([s["sigma_b"] or 0.0 for s in acts], float)
    if not (np.all(np.isfinite(sw)) and np.ptp(sw) <= 1e-6 * sw.max() and np.ptp(sb) <= 1e-6 * max(sb.max(), 1e-12)):
        return {"spectrum": None}
    family = "orthogonal" if weights[0] in ("orthogonal", "delta_orthogonal") else "gaussian"
    return {"spectrum": {"activation": acts[0]["activation"], "depth": len(acts), "weights": family,
                         "sigma_w": float(sw[0]), "sigma_b": float(sb[0])}}
