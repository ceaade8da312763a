"""deepstart.theory: predictions at initialization in NumPy/SciPy (never imports torch).

* activations, Gaussian expectations — :mod:`.activations`, :mod:`.gaussian`
* mean field: q-map, fixed points, χ₁, c-map, depth scales, critical line, phase diagrams — :mod:`.mean_field`
* finite width: Hanin–Rolnick FM1/FM2 length laws — :mod:`.finite_width`
* random-walk init (Sussillo–Abbott), fractional-moment init (Gurbuzbalaban–Hu), Jacobian spectra
  (Pennington et al.) — :mod:`.random_walk`, :mod:`.fractional`, :mod:`.free_probability`

Each module's public names are re-exported below, one block per module (each block owned by its author).
"""
from __future__ import annotations

import types as _types

# --- activations, gaussian, mean field, phase, finite width (issue 3) ---
from deepstart.theory.activations import ACTIVATION_NAMES, Activation, get_activation
from deepstart.theory.gaussian import gaussian_expectation, gaussian_nodes
from deepstart.theory.mean_field import (
    CriticalPoint, DepthScales, FixedPoint, PhaseDiagram, UnstableFixedPointWarning, c_map, c_star, chi_1,
    critical_point, depth_scales, fixed_point, fixed_point_status, gradient_growth, phase_diagram, q_map,
    q_map_slope, stable_critical_point)
from deepstart.theory.finite_width import FailureModes, LengthMoments, failure_modes, length_moments, parse_widths
# --- end issue 3 block ---

# --- random walk (Sussillo–Abbott) ---
from deepstart.theory.random_walk import RANDOM_WALK_ACTIVATIONS, random_walk_gain, random_walk_gain_at_depth, \
    random_walk_log_stats
# --- end random walk block ---

# --- fractional moments (Gurbuzbalaban–Hu) ---
from deepstart.theory.fractional import FRACTIONAL_ACTIVATIONS, fractional_log_norm_law, fractional_moment_var
# --- end fractional block ---

# --- free probability (Pennington et al.) ---
from deepstart.theory.free_probability import JacobianSpectrum, jacobian_spectrum
# --- end free probability block ---

__all__ = sorted(name for name, value in dict(globals()).items()
                 if not name.startswith("_") and name != "annotations" and not isinstance(value, _types.ModuleType))
