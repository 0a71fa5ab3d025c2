"""Exact LoRA parameter counts for Llama/Qwen/Mistral-style decoders, from config.json facts.

A LoRA adapter on a linear layer ``W`` (``d_out x d_in``) adds ``A`` (``r x d_in``) and
``B`` (``d_out x r``): ``r * (d_in + d_out)`` trainable numbers, no bias. Summed over the
targeted projections of every decoder layer, that is the whole count:

=============  ===============================  ===========================================
module         shape of W (in -> out)            LoRA parameters per layer
=============  ===============================  ===========================================
q_proj         hidden -> heads * head_dim        r * (hidden + heads * head_dim)
k_proj/v_proj  hidden -> kv_heads * head_dim     r * (hidden + kv_heads * head_dim)
o_proj         heads * head_dim -> hidden        r * (heads * head_dim + hidden)
gate/up_proj   hidden -> intermediate            r * (hidden + intermediate)
down_proj      intermediate -> hidden            r * (intermediate + hidden)
=============  ===============================  ===========================================

Tests check every number here against ``peft``'s ``get_nb_trainable_parameters`` on
models of the same shape built on the meta device. No torch import at module level.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from functools import lru_cache

from ..paths import data_dir
from .settings import ALL_LINEAR, parse_targets

ARCHITECTURES_FILE = "architectures.json"


@dataclass(frozen=True)
class Architecture:
    """The config.json facts that decide parameter counts, KV-cache size and memory."""

    key: str
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    vocab_size: int
    tie_word_embeddings: bool
    attention_bias: bool = False  # q/k/v biases (Qwen2 has them)
    qk_norm: bool = False  # per-head RMSNorm on q and k (Qwen3)
    model_type: str = "llama"
    hf_id: str = ""
    role: str = "course"
    sources: tuple[str, ...] = field(default=(), compare=False)

    @property
    def q_dim(self) -> int:
        return self.num_attention_heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        return self.num_key_value_heads * self.head_dim

    def module_shapes(self) -> dict[str, tuple[int, int]]:
        """(in_features, out_features) of each of the seven projections."""
        h, i = self.hidden_size, self.intermediate_size
        return {
            "q_proj": (h, self.q_dim),
            "k_proj": (h, self.kv_dim),
            "v_proj": (h, self.kv_dim),
            "o_proj": (self.q_dim, h),
            "gate_proj": (h, i),
            "up_proj": (h, i),
            "down_proj": (i, h),
        }

    def linear_params_per_layer(self) -> int:
        """Weights of the seven projections in one decoder layer (no biases)."""
        return sum(a * b for a, b in self.module_shapes().values())

    def layer_params(self) -> int:
        """Every parameter of one decoder layer: projections, biases, norms."""
        n = self.linear_params_per_layer()
        if self.attention_bias:
            n += self.q_dim + 2 * self.kv_dim
        n += 2 * self.hidden_size  # input and post-attention RMSNorm
        if self.qk_norm:
            n += 2 * self.head_dim
        return n

    def embedding_params(self) -> int:
        """Input embedding plus the LM head when it is not tied to it."""
        n = self.vocab_size * self.hidden_size
        return n if self.tie_word_embeddings else 2 * n

    def base_param_count(self) -> int:
        """All parameters of the model, counting a tied embedding once (as ``model.parameters()`` does)."""
        return self.num_hidden_layers * self.layer_params() + self.embedding_params() + self.hidden_size

    def kv_bytes_per_token(self, bytes_per_value: float = 2) -> float:
        """KV-cache bytes for one token: 2 (K and V) x layers x kv_heads x head_dim x bytes."""
        return 2 * self.num_hidden_layers * self.kv_dim * bytes_per_value

    def hf_config(self, **overrides):
        """A ``transformers`` config of this shape (imports transformers)."""
        from transformers import AutoConfig

        kwargs = dict(
            hidden_size=self.hidden_size, intermediate_size=self.intermediate_size,
            num_hidden_layers=self.num_hidden_layers, num_attention_heads=self.num_attention_heads,
            num_key_value_heads=self.num_key_value_heads, head_dim=self.head_dim,
            vocab_size=self.vocab_size, tie_word_embeddings=self.tie_word_embeddings,
        )
        if self.model_type == "llama":
            kwargs["attention_bias"] = self.attention_bias
        kwargs.update(overrides)
        return AutoConfig.for_model(self.model_type, **kwargs)

    def scaled(self, **changes) -> Architecture:
        """A copy with some fields changed (e.g. fewer layers for a quick twin)."""
        data = asdict(self)
        data.update(changes)
        data["sources"] = tuple(data["sources"])
        return Architecture(**data)


def _from_mapping(key: str, cfg: dict) -> Architecture:
    heads = int(cfg["num_attention_heads"])
    head_dim = cfg.get("head_dim") or int(cfg["hidden_size"]) // heads
    model_type = cfg.get("model_type", "llama")
    bias = cfg.get("attention_bias")
    if bias is None:
        bias = model_type == "qwen2"
    return Architecture(
        key=key,
        hidden_size=int(cfg["hidden_size"]),
        intermediate_size=int(cfg["intermediate_size"]),
        num_hidden_layers=int(cfg["num_hidden_layers"]),
        num_attention_heads=heads,
        num_key_value_heads=int(cfg.get("num_key_value_heads") or heads),
        head_dim=int(head_dim),
        vocab_size=int(cfg["vocab_size"]),
        tie_word_embeddings=bool(cfg.get("tie_word_embeddings", False)),
        attention_bias=bool(bias),
        qk_norm=bool(cfg.get("qk_norm", model_type == "qwen3")),
        model_type=model_type,
        hf_id=cfg.get("hf_id", ""),
        role=cfg.get("role", "course"),
        sources=tuple(cfg.get("sources", ())),
    )


@lru_cache(maxsize=1)
def _load_table() -> dict[str, Architecture]:
    path = data_dir() / ARCHITECTURES_FILE
    raw = json.loads(path.read_text())["architectures"]
    return {key: _from_mapping(key, cfg) for key, cfg in raw.items()}


def architectures(role: str | None = None) -> dict[str, Architecture]:
    """The shipped architectures (``role="course"`` or ``"compare"`` to filter)."""
    table = _load_table()
    return {k: a for k, a in table.items() if role is None or a.role == role}


def _normalise(name: str) -> str:
    return name.lower().split("/")[-1].replace("-instruct", "").replace("meta-", "").replace("_", "-")


def get_architecture(model) -> Architecture:
    """An :class:`Architecture` from a key (``"llama-3.2-3b"``), a hub id, a config.json dict,
    a ``transformers`` config, or an Architecture."""
    if isinstance(model, Architecture):
        return model
    if isinstance(model, str):
        table = _load_table()
        if model in table:
            return table[model]
        wanted = _normalise(model)
        for key, arch in table.items():
            if wanted in (key, _normalise(arch.hf_id)):
                return arch
        raise KeyError(f"Unknown model {model!r}. Shipped: {', '.join(table)} (or pass a config.json dict).")
    if isinstance(model, dict):
        return _from_mapping(model.get("_name_or_path", "custom"), model)
    if hasattr(model, "to_dict"):  # a transformers PretrainedConfig
        cfg = model.to_dict()
        cfg.setdefault("head_dim", getattr(model, "head_dim", None))
        return _from_mapping(getattr(model, "name_or_path", "") or cfg.get("model_type", "custom"), cfg)
    raise TypeError(f"Cannot read an architecture from {type(model).__name__}")


@dataclass(frozen=True)
class LoraCount:
    """Trainable LoRA parameters of one adapter on one architecture."""

    architecture: str
    r: int
    target_modules: tuple[str, ...]
    per_layer: dict[str, int]  # module -> parameters in one decoder layer
    num_layers: int
    base_params: int
    shapes: dict[str, tuple[int, int]] = field(default_factory=dict, compare=False)  # module -> (in, out)

    @property
    def per_module(self) -> dict[str, int]:
        """module -> parameters summed over all layers."""
        return {m: n * self.num_layers for m, n in self.per_layer.items()}

    @property
    def total(self) -> int:
        return sum(self.per_module.values())

    @property
    def percent_of_base(self) -> float:
        """Trainable / base-model parameters, in percent (the seed's "~1.2%")."""
        return 100.0 * self.total / self.base_params

    @property
    def percent_of_all(self) -> float:
        """Trainable / (base + adapter), in percent: what peft's print_trainable_parameters shows."""
        return 100.0 * self.total / (self.base_params + self.total)

    def __int__(self) -> int:
        return self.total

    def table(self) -> str:
        """A per-module table, one line per module, then the total."""
        lines = [f"{'module':<10} {'in x out':>13} {'r x (in + out)':>16} {'x layers':>9} {'params':>14}"]
        for m, n in self.per_layer.items():
            d_in, d_out = self.shapes.get(m, (0, 0))
            lines.append(f"{m:<10} {f'{d_in} x {d_out}':>13} {n:>16,} {self.num_layers:>9} {n * self.num_layers:>14,}")
        lines.append(f"{'total':<10} {'':>13} {sum(self.per_layer.values()):>16,} {self.num_layers:>9} {self.total:>14,}")
        lines.append(f"base model {self.base_params:,} parameters; adapter = {self.percent_of_base:.3f}% of the base "
                     f"({self.percent_of_all:.3f}% of base + adapter, as peft prints)")
        return "\n".join(lines)


def lora_param_count(config, r: int, target_modules="all-linear") -> LoraCount:
    """Exact number of trainable LoRA parameters, per module and in total.

    ``config``: an architecture key (``"llama-3.2-3b"``), hub id, config.json dict,
    transformers config or :class:`Architecture`. ``target_modules``: ``"all-linear"``
    (the seven projections), ``"attention"``, ``"q_proj,v_proj"`` or a list.
    """
    arch = get_architecture(config)
    if int(r) != r or r < 1:
        raise ValueError(f"rank r must be a positive integer, got {r!r}")
    targets = parse_targets(target_modules)
    shapes = arch.module_shapes()
    per_layer = {m: int(r) * (shapes[m][0] + shapes[m][1]) for m in ALL_LINEAR if m in targets}
    return LoraCount(arch.key, int(r), targets, per_layer, arch.num_hidden_layers, arch.base_param_count(),
                     {m: shapes[m] for m in per_layer})


def module_table(config, r: int, target_modules="all-linear") -> list[dict]:
    """Rows (module, in, out, per layer, total) for printing or a DataFrame."""
    arch = get_architecture(config)
    count = lora_param_count(arch, r, target_modules)
    shapes = arch.module_shapes()
    return [
        {"module": m, "in": shapes[m][0], "out": shapes[m][1], "formula": f"{r} x ({shapes[m][0]} + {shapes[m][1]})",
         "per_layer": n, "layers": arch.num_hidden_layers, "total": n * arch.num_hidden_layers}
        for m, n in count.per_layer.items()
    ]
