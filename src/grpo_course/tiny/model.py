"""The tiny Llama: a few hundred thousand to ~1M parameters, small enough to GRPO-train on a laptop CPU."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class TinyModelSettings:
    hidden_size: int = 128
    intermediate_size: int = 384
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    max_position_embeddings: int = 160
    tie_word_embeddings: bool = True

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
    return model


def count_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())
