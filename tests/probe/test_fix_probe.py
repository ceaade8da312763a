"""``fix_(..., probe=True)``: a fix that improves the statistics but does not train better is not verified."""
from __future__ import annotations

import pytest

from deepstart.diagnose import fix_

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.slow
PROBE = {"lr": 1e-3, "steps": 100, "n_inits": 4}


def _model(plain_mlp, depth):
    torch.manual_seed(0)
    return plain_mlp(depth, 32, 1.0)()  # Glorot ReLU: the signal shrinks as 2^(-depth/2)


def test_fix_that_does_not_train_better_is_refused_and_restored(plain_mlp):
    """Depth 8: check flags the shrinking signal and He removes it, but Adam trains both inits alike."""
    model = _model(plain_mlp, 8)
    saved = {k: v.clone() for k, v in model.state_dict().items()}
    stats_only = fix_(_model(plain_mlp, 8), n_inits=4, generator=torch.Generator().manual_seed(0))
    assert stats_only.verified and stats_only.applied  # the statistics alone accept the change
    result = fix_(model, n_inits=4, generator=torch.Generator().manual_seed(0), probe=PROBE)
    assert result.probe is not None and result.probe["better"] is False, result.probe["reason"]
    assert not result.verified and result.restored
    assert "probe" in str(result)
    assert all(torch.equal(v, saved[k]) for k, v in model.state_dict().items())


def test_fix_that_trains_better_is_verified(plain_mlp):
    model = _model(plain_mlp, 50)
    result = fix_(model, n_inits=4, generator=torch.Generator().manual_seed(0), probe=PROBE)
    assert result.probe["better"], result.probe["reason"]
    assert result.verified and result.applied
    assert result.probe["before"]["verdict"] == "stuck" and result.probe["after"]["verdict"] == "starts"
