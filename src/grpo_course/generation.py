"""The course's one generation loop: ``n`` completions per chat prompt, with token counts and truncation.

Training's before/after, evaluation, the task metrics and the tiny lab all generate here.

* A model without a vLLM engine (CPU, and the T4 through Unsloth's fast path): transformers'
  ``generate`` on batches of prompts, **left-padded** (a decoder continues from the last position, so
  padding must go on the left), the prompt tokenized exactly as GRPOTrainer does (chat template plus
  generation prompt, :func:`grpo_course.chat_format.prompt_token_ids`), ``num_return_sequences=n``.
* A model with an in-process vLLM engine (L4 and larger): :func:`grpo_course.gpu.vllm_generate`, with
  each prompt repeated ``n`` times and no fixed sampling seed (a fixed per-request seed would make the
  ``n`` copies identical); token counts and truncation come from vLLM's own output (``token_ids`` and
  ``finish_reason``), not from re-tokenizing the text.

Sampling draws from the model's full distribution at ``temperature`` (``top_p=1``, ``top_k=0``:
no truncation of the tail), which is what pass@k assumes; ``temperature=0`` decodes greedily.
``use_adapter=False`` runs a LoRA model with its adapter switched off (``disable_adapter``): the same
weights, template and tokenizer as the "after" model, minus the update.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from .chat_format import prompt_token_ids
from .gpu import uses_vllm_engine


@dataclass(frozen=True)
class Decoding:
    """How completions are drawn. ``temperature=0`` is greedy (then ``n`` must be 1)."""

    max_new_tokens: int
    temperature: float = 0.0
    n: int = 1
    top_p: float = 1.0
    top_k: int = 0
    seed: int | None = 0
    batch_size: int = 64  # prompts per generate call

    def __post_init__(self):
        if self.max_new_tokens < 1:
            raise ValueError("max_new_tokens must be >= 1")
        if self.temperature < 0:
            raise ValueError("temperature must be >= 0")
        if self.n < 1:
            raise ValueError("n must be >= 1")
        if self.temperature == 0 and self.n != 1:
            raise ValueError("greedy decoding (temperature 0) gives one completion per prompt: use n=1")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Generated:
    """One completion: its text, how many tokens it used, and whether the token limit cut it."""

    text: str
    n_tokens: int
    truncated: bool


def has_adapter(model) -> bool:
    return hasattr(model, "disable_adapter") and hasattr(model, "peft_config")


def adapter_switch(model, use_adapter: bool):
    """A context in which a LoRA model runs with its adapter off (``use_adapter=False``) or as is."""
    if not use_adapter:
        if not has_adapter(model):
            raise ValueError("use_adapter=False needs a peft model with a LoRA adapter to switch off")
        return model.disable_adapter()
    return contextlib.nullcontext()


def _progress(total: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="prompt", disable=not enabled, leave=False)


def eos_token_ids(model, tokenizer) -> set[int]:
    """Every token id that ends a completion: the generation config's and the tokenizer's."""
    ids: set[int] = set()
    for source in (getattr(getattr(model, "generation_config", None), "eos_token_id", None), tokenizer.eos_token_id):
        if isinstance(source, int):
            ids.add(source)
        elif source is not None:
            ids.update(int(x) for x in source)
    return ids


def generate_kwargs(decoding: Decoding, pad_token_id: int | None, eos_token_ids: set[int]) -> dict:
    """Keywords for transformers' ``model.generate`` (``tests/test_gpu_contracts.py`` checks each is a
    ``GenerationConfig`` setting of the pinned transformers, which Unsloth's fast path forwards to)."""
    kwargs: dict = {"max_new_tokens": decoding.max_new_tokens, "pad_token_id": pad_token_id,
                    "eos_token_id": sorted(eos_token_ids) or None, "num_return_sequences": decoding.n}
    if decoding.greedy:
        kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
    else:
        kwargs.update(do_sample=True, temperature=decoding.temperature, top_p=decoding.top_p, top_k=decoding.top_k)
    return kwargs


def _hf_generate(model, tokenizer, prompts: Sequence[list[dict]], decoding: Decoding, use_adapter: bool,
                 progress: bool, desc: str) -> list[list[Generated]]:
    import torch

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    eos = eos_token_ids(model, tokenizer)
    device = next(model.parameters()).device
    kwargs = generate_kwargs(decoding, pad, eos)
    if decoding.seed is not None:
        torch.manual_seed(decoding.seed)
    out: list[list[Generated]] = []
    was_training = model.training
    model.eval()
    try:
        with adapter_switch(model, use_adapter), torch.no_grad(), _progress(len(prompts), desc, progress) as bar:
            for start in range(0, len(prompts), decoding.batch_size):
                chunk = [prompt_token_ids(tokenizer, p) for p in prompts[start:start + decoding.batch_size]]
                width = max(len(x) for x in chunk)
                input_ids = torch.tensor([[pad] * (width - len(x)) + x for x in chunk], device=device)
                mask = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in chunk], device=device)
                gen = model.generate(input_ids=input_ids, attention_mask=mask, **kwargs)[:, width:].tolist()
                for i in range(len(chunk)):
                    group = []
                    for ids in gen[i * decoding.n:(i + 1) * decoding.n]:
                        stop = next((j for j, t in enumerate(ids) if t in eos), None)
                        used = ids if stop is None else ids[:stop + 1]
                        group.append(Generated(tokenizer.decode(used, skip_special_tokens=True),
                                               len(used), stop is None and len(ids) >= decoding.max_new_tokens))
                    out.append(group)
                bar.update(len(chunk))
    finally:
        model.train(was_training)
    return out


def _vllm_generate(model, tokenizer, prompts: Sequence[list[dict]], decoding: Decoding, use_adapter: bool,
                   progress: bool, desc: str) -> list[list[Generated]]:
    import tempfile

    from . import gpu

    out: list[list[Generated]] = []
    with tempfile.TemporaryDirectory(prefix="grpo-course-eval-lora-") as adapter_dir, \
            _progress(len(prompts), desc, progress) as bar:
        for start in range(0, len(prompts), decoding.batch_size):
            chunk = list(prompts[start:start + decoding.batch_size])
            repeated = [prompt_token_ids(tokenizer, p) for p in chunk for _ in range(decoding.n)]
            done = gpu.vllm_generate(model, repeated, max_new_tokens=decoding.max_new_tokens,
                                     temperature=decoding.temperature, use_adapter=use_adapter,
                                     seed=decoding.seed if decoding.greedy else None,
                                     adapter_dir=adapter_dir if use_adapter and has_adapter(model) else None)
            for i in range(len(chunk)):
                out.append([Generated(text, n_tok, cut) for text, n_tok, cut in done[i * decoding.n:(i + 1) * decoding.n]])
            bar.update(len(chunk))
    return out


def generate_samples(model, tokenizer, prompts: Sequence[list[dict]], decoding: Decoding, profile=None,
                     use_adapter: bool = True, progress: bool = True, desc: str = "generating"
                     ) -> list[list[Generated]]:
    """``decoding.n`` completions for each chat prompt (a list of lists, in prompt order).

    The model decides the path: vLLM when it has an engine, transformers otherwise (``profile`` is kept
    for callers that pass it; it changes nothing)."""
    prompts = list(prompts)
    if not prompts:
        return []
    if uses_vllm_engine(model):
        return _vllm_generate(model, tokenizer, prompts, decoding, use_adapter, progress, desc)
    return _hf_generate(model, tokenizer, prompts, decoding, use_adapter, progress, desc)


def generate(model, tokenizer, prompts: Sequence[list[dict]], max_new_tokens: int, profile=None,
             temperature: float = 0.0, use_adapter: bool = True, batch_size: int = 64, seed: int | None = 0,
             progress: bool = False) -> list[str]:
    """One completion per chat prompt (greedy by default); ``use_adapter=False`` switches a LoRA adapter
    off for the call."""
    decoding = Decoding(max_new_tokens=max_new_tokens, temperature=temperature, n=1, seed=seed,
                        batch_size=batch_size)
    return [group[0].text for group in generate_samples(model, tokenizer, prompts, decoding, profile,
                                                        use_adapter=use_adapter, progress=progress)]
