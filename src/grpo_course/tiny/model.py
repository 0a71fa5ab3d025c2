"""The tiny Llama (0.42M parameters by default), small enough to GRPO-train on a laptop CPU in under a minute."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class TinyModelSettings:
    hidden_size: int = 96
    intermediate_size: int = 288
    num_hidden_layers: int = 3
    num_attention_heads: int = 3
    max_position_embeddings: int = 160
    tie_word_embeddings: bool = True
    number_features: bool = True  # start number embeddings on a number line (see number_feature_init)

    def as_dict(self) -> dict:
        return asdict(self)


def make_config(tokenizer, settings: TinyModelSettings | None = None):
    from transformers import LlamaConfig

    s = settings or TinyModelSettings()
    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=s.hidden_size,
        intermediate_size=s.intermediate_size,
        num_hidden_layers=s.num_hidden_layers,
        num_attention_heads=s.num_attention_heads,
        num_key_value_heads=s.num_attention_heads,
        max_position_embeddings=s.max_position_embeddings,
        tie_word_embeddings=s.tie_word_embeddings,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
        dtype="float32",
    )


def make_model(tokenizer, settings: TinyModelSettings | None = None, seed: int = 0):
    """A freshly initialised tiny ``LlamaForCausalLM`` (deterministic in ``seed``)."""
    import torch
    from transformers import LlamaForCausalLM

    torch.manual_seed(seed)
    model = LlamaForCausalLM(make_config(tokenizer, settings))
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.bos_token_id = None
    if (settings or TinyModelSettings()).number_features:
        number_feature_init(model, tokenizer)
    return model


PERIODS = (2, 3, 5, 10, 20, 50, 100, 250)


def number_feature_init(model, tokenizer, scale: float = 0.1) -> int:
    """Give every number token an embedding that encodes its value (the rest stays random).

    The first ``2 * len(PERIODS) + 1`` dimensions of the embedding of ``"n"`` and ``" n"`` become
    ``cos(2 pi n / T)``, ``sin(2 pi n / T)`` for each period ``T`` and ``n / 255``, times ``scale``.
    Sums then turn into rotations of these features, which a tiny model learns far faster than a
    lookup table of random vectors (language models themselves use such Fourier features to add:
    Zhou et al. 2024, "Pre-trained Large Language Models Use Fourier Features to Compute Addition").
    Returns the number of token rows set.
    """
    import math

    import torch

    emb = model.get_input_embeddings().weight
    width = 2 * len(PERIODS) + 1
    if emb.shape[1] < width:
        return 0
    vocab = tokenizer.get_vocab()
    rows = 0
    with torch.no_grad():
        for token, idx in vocab.items():
            text = token.strip()
            if not text.isdigit() or token not in (text, " " + text):
                continue
            n = int(text)
            feats = [f(2 * math.pi * n / t) for t in PERIODS for f in (math.cos, math.sin)] + [n / 255]
            emb[idx, :width] = scale * torch.tensor(feats)
            rows += 1
    return rows


def count_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())
