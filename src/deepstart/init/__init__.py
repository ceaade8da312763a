"""deepstart.init: initializers for real ``nn.Module`` s, scheme objects, and ``apply_(model, scheme)``.

* fans, computed in one place — :mod:`.fans`
* variance scaling (He, LeCun, Glorot) — :mod:`.tensor`; orthogonal, delta-orthogonal — :mod:`.orthogonal`
* ``torch.nn.init``'s names (kaiming_*, xavier_*, trunc_normal_, calculate_gain) on the same core — :mod:`.torch_init`
* the activation (and leaky slope) that follows each layer, for ``he`` — :mod:`.activations`
* random walk, fractional moment, critical — :mod:`.papers`, :mod:`.paper_schemes`; residual η — :mod:`.residual`
* schemes and their text form — :mod:`.schemes`; ``apply_`` and its record — :mod:`.apply`, :mod:`.record`
"""
from __future__ import annotations

# --- init (issue 2) ---
from deepstart.init.fans import LAYOUTS, compute_fans, layout_of
from deepstart.init.tensor import (
    DISTRIBUTIONS, MODES, glorot_normal_, glorot_uniform_, he_normal_, he_uniform_, lecun_normal_, lecun_uniform_,
    variance_scaling_)
from deepstart.init.orthogonal import delta_orthogonal_, orthogonal_
from deepstart.init.torch_init import (
    NONLINEARITIES, calculate_gain, gain_var, kaiming_normal_, kaiming_uniform_, trunc_normal_, xavier_normal_,
    xavier_uniform_)
from deepstart.init.activations import following_activations, rectifier_slopes
from deepstart.init.record import InitEntry, InitRecord
from deepstart.init.schemes import (
    SCHEMES, DeltaOrthogonal, Glorot, He, LeCun, Orthogonal, PyTorchDefault, Scheme, VarianceScaling, parse_scheme)
from deepstart.init.papers import critical_, fractional_moment_, random_walk_
from deepstart.init.paper_schemes import Critical, FractionalMoment, RandomWalk
from deepstart.init.residual import ResidualScaled, residual_etas
from deepstart.init.apply import apply_
# --- end init block ---
