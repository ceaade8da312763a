"""Monte Carlo Jacobian spectra of many random fully connected networks at once.

Pennington, Schoenholz & Ganguli 2017, eq. 2: for ``h^l = W^l x^{l−1} + b^l``, ``x^l = φ(h^l)`` the input-output
Jacobian is ``J = ∏_l D^l W^l`` with ``D^l = diag φ'(h^l)``. :func:`sample_jacobian_spectrum` draws ``n_samples``
independent networks of constant width and returns the eigenvalues of ``JJᵀ`` of each, for comparison with the
free-probability prediction (``deepstart.theory.jacobian_spectrum``).
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["sample_jacobian_spectrum", "haar_orthogonal"]

WEIGHTS = ("orthogonal", "gaussian")
_HOMOGENEOUS = ("relu", "leaky_relu", "linear")  # φ(a h) = a φ(h) for a > 0: the input scale is irrelevant if σ_b = 0


def _torch_activation(name: str, params: dict):
    """Torch version of a theory activation name, or None if only the NumPy registry has it."""
    slope = params.get("negative_slope", 0.01)
    table = {
        "relu": F.relu, "linear": lambda h: h, "tanh": torch.tanh, "hard_tanh": F.hardtanh,
        "leaky_relu": lambda h: F.leaky_relu(h, slope), "sigmoid": torch.sigmoid, "gelu": F.gelu, "silu": F.silu,
        "elu": F.elu, "selu": F.selu, "softplus": F.softplus,
    }
    return table.get(name)


def _phi_and_dphi(activation, params: dict):
    """``h -> (φ(h), φ'(h))`` on float64 tensors. Names follow ``deepstart.theory.ACTIVATION_NAMES``; names
    without a torch twin here (e.g. ``erf``) use the theory registry's NumPy ``phi``/``dphi``; a callable is
    treated as a torch function and differentiated by autograd."""
    if callable(activation):
        fn = activation
    elif isinstance(activation, str):
        fn = _torch_activation(activation, params)
        if fn is None:
            from deepstart.theory import get_activation  # raises ValueError listing the valid names

            act = get_activation(activation, **params)

            def numpy_pair(h):
                a = h.detach().cpu().numpy()
                return (torch.as_tensor(act.phi(a), dtype=h.dtype, device=h.device),
                        torch.as_tensor(act.dphi(a), dtype=h.dtype, device=h.device))

            return numpy_pair
    else:
        raise TypeError(f"activation must be a name such as 'tanh' or 'relu' or a torch callable, got {activation!r}")

    def autograd_pair(h):
        with torch.enable_grad():
            h = h.detach().requires_grad_(True)
            y = fn(h)
            (d,) = torch.autograd.grad(y.sum(), h)
        return y.detach(), d

    return autograd_pair


def haar_orthogonal(batch: int, n: int, *, generator: torch.Generator | None, device=None,
                    dtype=torch.float64) -> torch.Tensor:
    """``[batch, n, n]`` Haar-distributed orthogonal matrices: QR of a Gaussian with the signs of diag(R) moved
    into Q (Mezzadri 2007, "How to generate random matrices from the classical compact groups", §5)."""
    where = generator.device if generator is not None else device  # drawn where the generator draws
    g = torch.randn(batch, n, n, generator=generator, dtype=dtype, device=where).to(device)
    q, r = torch.linalg.qr(g)
    return q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1)).unsqueeze(-2)


def _resolve_point(activation, q_star, sigma_w, sigma_b, params):
    """(σ_w, σ_b, q*): the critical point for ``q_star`` (THEORY.md §1) unless σ_w is given; with σ_w given,
    q* is the q-map fixed point (or 1 for a homogeneous φ with σ_b = 0, where the scale does not matter)."""
    name = activation if isinstance(activation, str) else None
    if sigma_w is None:
        if name is None:
            raise ValueError("a callable activation needs explicit sigma_w (and sigma_b, q_star): the critical "
                             "point is computed from an activation name")
        from deepstart.theory import critical_point, get_activation

        spec = get_activation(name, **params) if params else name
        cp = critical_point(spec, q_star=q_star, sigma_b=sigma_b)
        return float(cp.sigma_w), float(cp.sigma_b), float(cp.q_star)
    sigma_b = 0.0 if sigma_b is None else float(sigma_b)
    if q_star is None:
        if name in _HOMOGENEOUS and sigma_b == 0.0:
            q_star = 1.0
        elif name is None:
            raise ValueError("with a callable activation pass q_star (the pre-activation variance to start at)")
        else:
            from deepstart.theory import fixed_point

            q_star = float(fixed_point(name, sigma_w, sigma_b))
    return float(sigma_w), sigma_b, float(q_star)


def _check(depth, width, weights, n_samples):
    for label, value in (("depth", depth), ("width", width), ("n_samples", n_samples)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{label}={value!r} must be a positive int")
    if weights not in WEIGHTS:
        raise ValueError(f"weights={weights!r} is not one of {WEIGHTS}")


def sample_jacobian_spectrum(activation, depth: int, width: int, *, weights: str = "orthogonal",
                             q_star: float | None = None, sigma_w: float | None = None,
                             sigma_b: float | None = None, n_samples: int = 16,
                             generator: torch.Generator | None = None, device=None, **activation_params) -> np.ndarray:
    """Eigenvalues of ``JJᵀ`` for ``n_samples`` random depth-``depth`` width-``width`` networks, float64.

    Pennington, Schoenholz & Ganguli 2017, eq. 2 and §3: ``J = ∏ D^l W^l``. Weights are ``σ_w/√N`` times a
    standard Gaussian, or ``σ_w`` times a Haar orthogonal matrix (both have entry variance σ_w²/N); biases
    ``N(0, σ_b²)``. Without ``sigma_w`` the network sits on the critical line at ``q_star``
    (``deepstart.theory.critical_point``, THEORY.md §1).

    Inputs are drawn so that the first pre-activation starts at the fixed point: each input is a Gaussian vector
    rescaled to ``‖x‖²/N = (q* − σ_b²)/σ_w²``, which makes ``Var h¹_i = σ_w²‖x‖²/N + σ_b² = q*`` exactly
    (conditionally on x), so every layer is at q* to leading order in 1/N.

    Args:
        activation: a theory activation name (``relu``, ``tanh``, ``hard_tanh``, ``linear``, …) or a torch
            callable (then pass ``sigma_w`` and ``q_star``). Extra keywords (``negative_slope``) go to it.
        depth, width: number of layers L and width N.
        weights: ``"orthogonal"`` or ``"gaussian"``.
        q_star, sigma_w, sigma_b: operating point (σ's are standard deviations).
        n_samples: networks, simulated together with batched float64 matmuls.
        generator: ``torch.Generator`` for all draws.
        device: where to compute (``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"``; default CPU). On a GPU the draws
            are made there, by a generator on it seeded from ``generator`` (one draw) unless ``generator`` is
            already on that kind of device; ``device="cpu"`` gives exactly the default's values.

    Raises:
        ValueError: ``device`` is unknown, unavailable (``"cuda"`` without CUDA) or unsupported (``"meta"``).

    Returns:
        ``ndarray [n_samples, width]``: eigenvalues of ``JJᵀ`` per network, descending.
    """
    from deepstart.diagnose._device import generator_on, resolve_device

    _check(depth, width, weights, n_samples)
    device = resolve_device(device)
    generator = generator_on(generator, device)
    where = generator.device if generator is not None else device  # draws: on the generator's device, no copies
    sw, sb, q = _resolve_point(activation, q_star, sigma_w, sigma_b, activation_params)
    if not q > sb ** 2 - 1e-15 or sw <= 0:
        raise ValueError(f"q_star={q} must exceed sigma_b²={sb ** 2} and sigma_w={sw} must be > 0 so that inputs "
                         "can start the pre-activations at q_star")
    pair = _phi_and_dphi(activation, activation_params)
    n, dt = width, torch.float64
    x = torch.randn(n_samples, n, generator=generator, dtype=dt, device=where).to(device)
    x = x * torch.sqrt(n * max(q - sb ** 2, 0.0) / sw ** 2 / (x ** 2).sum(1, keepdim=True))
    jac = torch.eye(n, dtype=dt, device=device).expand(n_samples, n, n)
    for _ in range(depth):
        if weights == "orthogonal":
            w = sw * haar_orthogonal(n_samples, n, generator=generator, device=device)
        else:
            w = (sw / math.sqrt(n)) * torch.randn(n_samples, n, n, generator=generator, dtype=dt,
                                                  device=where).to(device)
        b = sb * torch.randn(n_samples, n, generator=generator, dtype=dt, device=where).to(device)
        h = torch.bmm(w, x.unsqueeze(-1)).squeeze(-1) + b
        x, d = pair(h)
        jac = d.unsqueeze(-1) * torch.bmm(w, jac)
    return (torch.linalg.svdvals(jac) ** 2).cpu().numpy()
