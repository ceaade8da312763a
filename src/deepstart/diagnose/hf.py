"""Hugging Face architectures named on the command line: ``hf:MODEL_TYPE[:key=value,...]``.

``hf:gpt2:n_layer=24,n_embd=256``, ``hf:bert``, ``hf:llama``, ``hf:vit``: the model is built from its
``transformers`` config (``AutoConfig.for_model`` + ``AutoModel.from_config``) with random init, offline; no
weights are downloaded. Keys are config attributes (their own names or the standard aliases ``hidden_size``,
``num_hidden_layers``, ...), plus ``seq=`` for the sequence length of text inputs (default 32).

Defaults keep a check to seconds on a laptop CPU: 4 layers, hidden size 128, 4 heads, MLP width 4 x hidden, vocabulary
1000, 128 positions, images 32 x 32 in 4 x 4 patches; eager attention; every dropout 0 (so a train-mode forward is
deterministic); special token ids inside the vocabulary. Inputs: token ids drawn uniformly from the vocabulary for
text models, standard Gaussian pixel values of the config's image size for vision models.

``transformers`` is imported only here, and only when an ``hf:`` target is built (the ``hf`` extra: ``pip install '.[hf]'`` in a clone of the repository).
In Python, any ``transformers`` model can be passed to :func:`deepstart.check` directly; inits 1.. are then built
again from its config.
"""
from __future__ import annotations

import difflib
import warnings
from typing import Callable

import torch
from torch import nn

__all__ = ["hf_target", "parse_hf_target", "EXAMPLES"]

EXAMPLES = ("gpt2", "bert", "llama", "vit", "t5", "roberta", "mistral", "qwen2")
# standard name -> default; set only where the config has the attribute (under its own name or an alias)
_SIZES = {"num_hidden_layers": 4, "hidden_size": 128, "vocab_size": 1000, "max_position_embeddings": 128,
          "image_size": 32, "patch_size": 4}
_INPUTS = ("input_ids", "pixel_values")


def _value(text: str):
    text = text.strip()
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_hf_target(spec: str) -> tuple[str, dict]:
    """``"hf:gpt2:n_layer=2,n_embd=64"`` -> ``("gpt2", {"n_layer": 2, "n_embd": 64})``."""
    head, _, rest = spec.partition(":")
    if head.strip().lower() != "hf":
        raise ValueError(f"{spec!r} is not a Hugging Face target; give hf:MODEL_TYPE[:key=value,...], e.g. hf:gpt2")
    model_type, _, args = rest.partition(":")
    model_type = model_type.strip().lower()
    if not model_type:
        raise ValueError(f"{spec!r}: name the model type, e.g. hf:{', hf:'.join(EXAMPLES[:4])}")
    params = {}
    for item in filter(None, (t.strip() for t in args.split(","))):
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise ValueError(f"{spec!r}: give settings as key=value, e.g. hf:gpt2:n_layer=24,n_embd=256; got {item!r}")
        params[key.strip()] = _value(value)
    return model_type, params


def _transformers():
    try:
        import transformers
    except ImportError as exc:
        from deepstart._extras import install_hint

        raise ImportError(f"hf: targets need the transformers package: {install_hint('hf')} ({exc})") from exc
    return transformers


def _config(transformers, spec: str, model_type: str, params: dict):
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    valid = list(CONFIG_MAPPING.keys())
    if model_type not in valid:
        close = difflib.get_close_matches(model_type, valid, n=4)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise ValueError(f"{spec!r}: unknown transformers model type {model_type!r}; {hint}examples: "
                         f"{', '.join(EXAMPLES)} ({len(valid)} types in transformers {transformers.__version__})")
    base = transformers.AutoConfig.for_model(model_type)
    unknown = sorted(k for k in params if not hasattr(base, k))
    if unknown:
        amap = getattr(base, "attribute_map", {})
        names = [amap.get(k, k) for k in (*_SIZES, "num_attention_heads", "intermediate_size") if hasattr(base, k)]
        raise ValueError(f"{spec!r}: {type(base).__name__} has no setting {', '.join(map(repr, unknown))}; "
                         f"e.g. {', '.join(names)} (or seq= for the sequence length)")
    return base


def _canonical(base, params: dict) -> dict:
    """User keys under the config's own attribute names (``n_layer`` for GPT-2's ``num_hidden_layers``)."""
    amap = getattr(base, "attribute_map", {})
    return {amap.get(k, k): v for k, v in params.items()}


def _settings(base, params: dict, seq: int) -> dict:
    """Small defaults where the user gave nothing, dropouts 0, special token ids inside the vocabulary."""
    amap = getattr(base, "attribute_map", {})
    user = _canonical(base, params)
    out = {}

    def default(name, value):
        own = amap.get(name, name)
        if hasattr(base, name) and own not in user and own not in out:
            if isinstance(getattr(base, name), (list, tuple)) and not isinstance(value, (list, tuple)):
                return  # a per-stage setting (Swin's num_heads, depths): keep the config's own list
            out[own] = value

    def get(name):  # the value the config will have: the user's, else our default, else transformers'
        own = amap.get(name, name)
        return user.get(own, out.get(own, getattr(base, name, None)))

    for name, value in _SIZES.items():
        default(name, max(value, seq) if name == "max_position_embeddings" else value)
    window, stages = getattr(base, "window_size", None), getattr(base, "depths", None)
    if isinstance(window, int) and isinstance(stages, (list, tuple)) and not {"window_size", "image_size"} & set(user):
        # windowed attention (Swin): every stage's token grid must be a multiple of the window; stage s halves it
        default("window_size", 2)
        patch = get("patch_size")
        if isinstance(patch, int):
            out[amap.get("image_size", "image_size")] = patch * 2 * 2 ** (len(stages) - 1)
    hidden = get("hidden_size")
    if isinstance(hidden, int):
        heads = next(h for h in (4, 2, 1) if hidden % h == 0)
        default("num_attention_heads", heads)
        heads = get("num_attention_heads")
        default("num_key_value_heads", heads)
        if isinstance(heads, int) and heads > 0 and isinstance(getattr(base, "head_dim", None), int):
            default("head_dim", max(1, hidden // heads))
        for name in ("intermediate_size", "d_ff", "n_inner"):
            if getattr(base, name, None) is not None:
                default(name, 4 * hidden)
    for key, value in base.to_dict().items():
        if isinstance(value, float) and ("dropout" in key or "pdrop" in key or key.endswith("layerdrop")):
            if key not in user:
                out[key] = 0.0
    vocab = get("vocab_size")
    if isinstance(vocab, int) and vocab > 0:
        for key, value in base.to_dict().items():
            if key.endswith("token_id") and key not in user:
                if isinstance(value, int) and value >= vocab:
                    out[key] = value % vocab
                elif isinstance(value, list) and any(isinstance(v, int) and v >= vocab for v in value):
                    out[key] = [v % vocab if isinstance(v, int) else v for v in value]
    if hasattr(base, "use_cache"):
        out.setdefault("use_cache", False)
    return {**out, **user}


def _input_maker(config, main_input: str, batch_size: int, seq: int) -> Callable[[torch.Generator], dict]:
    if main_input == "input_ids":
        vocab = int(config.vocab_size)
        positions = getattr(config, "max_position_embeddings", None)
        if isinstance(positions, int) and seq > positions:
            raise ValueError(f"seq={seq} exceeds the model's {positions} positions; give a smaller seq= or more "
                             "positions (max_position_embeddings / n_positions)")

        def tokens(generator=None):
            ids = torch.randint(0, vocab, (batch_size, seq), generator=generator)
            if getattr(config, "is_encoder_decoder", False):
                return {"input_ids": ids, "decoder_input_ids": torch.randint(0, vocab, (batch_size, seq),
                                                                             generator=generator)}
            return {"input_ids": ids}
        return tokens
    size = config.image_size
    h, w = (size, size) if isinstance(size, int) else tuple(size)[:2]
    channels = int(getattr(config, "num_channels", 3))

    def pixels(generator=None):
        return {"pixel_values": torch.randn(batch_size, channels, h, w, generator=generator)}
    return pixels


def hf_target(spec: str, seed: int, *, batch_size: int = 8) -> tuple[nn.Module, Callable, Callable[[], nn.Module]]:
    """``(model, inputs, factory)`` for ``hf:MODEL_TYPE[:key=value,...]``.

    ``model`` is built under ``torch.manual_seed(seed)`` inside ``torch.random.fork_rng`` (transformers' own init reads
    torch's global RNG; the caller's RNG state is left as it was), in the mode ``from_config`` returns (train).
    ``inputs(generator) -> dict`` draws a batch of ``batch_size`` (token ids or pixel values). ``factory()`` builds the
    same architecture again from torch's global RNG, as :func:`deepstart.check` expects of ``factory=``.

    Example::

        model, inputs, factory = hf_target("hf:gpt2:n_layer=2,n_embd=64", seed=0)
        report = deepstart.check(model, inputs(torch.Generator().manual_seed(1)), factory=factory)

    Raises:
        ImportError: transformers is not installed (the message says how to install it).
        ValueError: unknown model type (with close matches), unknown setting, or a config transformers rejects.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r} must be a positive integer")
    model_type, params = parse_hf_target(spec)
    seq = params.pop("seq", 32)
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 1:
        raise ValueError(f"{spec!r}: seq={seq!r} must be a positive integer (tokens per sequence)")
    transformers = _transformers()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecation notices of transformers are not about init
        base = _config(transformers, spec, model_type, params)
        try:
            config = transformers.AutoConfig.for_model(model_type, **_settings(base, params, seq))
        except Exception as exc:  # transformers validates configs with assorted exception types
            raise ValueError(f"{spec!r}: transformers rejected the config: {type(exc).__name__}: {exc}") from exc
    auto = transformers.AutoModel

    def factory() -> nn.Module:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return auto.from_config(config, attn_implementation="eager")

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        try:
            model = factory()
        except Exception as exc:
            raise ValueError(f"{spec!r}: transformers could not build {model_type}: {type(exc).__name__}: {exc}") \
                from exc
    main_input = getattr(model, "main_input_name", "input_ids")
    if main_input not in _INPUTS or (main_input == "pixel_values" and not hasattr(config, "image_size")):
        raise ValueError(f"{spec!r}: {type(model).__name__} takes {main_input!r}; hf: targets make token ids "
                         "(text models) and pixel values (vision models). Build it in Python and pass "
                         "deepstart.check(model, inputs)")
    return model, _input_maker(config, main_input, batch_size, seq), factory
