"""A tiny character-level model for running the non-math tasks on CPU (built in code, in seconds).

The course's tiny model (``grpo_course.tiny``) has a word-level vocabulary made from its own math
problems: ``"def"``, ``"creatinine"`` or ``"contract"`` are all ``<unk>`` to it, so it cannot read a
code, clinical or legal prompt, let alone write an answer. The CPU path of the code, MedCalc and
legal-QA tasks uses this model instead:

* a **character-level tokenizer**: every printable ASCII character, newline and tab is one token; the
  course's tags (``<think>``, ``</think>``, ``<answer>``, ``</answer>``) and the chat markers are one
  token each. Any text round-trips except characters outside ASCII (they become ``<unk>``);
* a **tiny Llama** (about 0.1M parameters) with the same chat template as the course's tiny model
  (``<user> question`` / ``<assistant>``, system messages dropped: the instructions would cost hundreds
  of character tokens and teach this model nothing);
* a **warm start**: a few hundred full-weight steps of supervised training on the task's own training
  demonstrations (the gold solutions, written in the course's format), so that its samples have the
  right shape and some of them earn a reward. GRPO then trains a LoRA adapter on top, as on a GPU.

What this proves, and what it does not: the whole path (load, prompt, generate, reward, GRPO step,
save, evaluate) runs with the task's real reward functions, and rewards vary inside a group so the
gradient is not zero. It does **not** show that GRPO teaches coding, clinical arithmetic or law: the
warm-started model mostly recites what it memorised, and it scores near zero on held-out problems.

The built models are committed in ``data/tasks/<task>/tiny`` (about 0.5 MB each; rebuild them with
``python -m grpo_course.tasks.tiny_text``). Each records a fingerprint of the demonstrations and settings
it was built from; if those change, a fresh copy is built once into ``runs/tiny-task-models/``.
Nothing here imports torch at module level.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from ..tiny.tokenizer import ASSISTANT, CHAT_TEMPLATE, EOS, PAD, TAGS, UNK, USER  # noqa: F401

# The same special tokens, tags and chat template as the GSM8K tiny model's word-level tokenizer.
CHARACTERS = [chr(c) for c in range(32, 127)] + ["\n", "\t"]
# Tags first (so "<think>" is one token), then any single character, newlines included.
SPLIT_PATTERN = "|".join([*(t.replace("/", "\\/") for t in TAGS), "[\\s\\S]"])
VERSION = "1"  # bump when the tokenizer, model or warm start changes (old caches stop matching)


@dataclass(frozen=True)
class TinyTextSettings:
    """Size of the tiny character model and of its warm start."""

    hidden_size: int = 64
    intermediate_size: int = 192
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    max_position_embeddings: int = 640
    warm_steps: int = 150  # enough to learn the format, short of reciting every answer (GRPO needs variety)
    warm_lr: float = 3e-3
    warm_batch: int = 8
    max_prompt_chars: int = 400  # prompts are cut to this many characters for the warm start
    seed: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


def build_char_tokenizer():
    """A ``PreTrainedTokenizerFast``: one token per character (plus tags), the tiny chat template."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = [PAD, EOS, UNK, *TAGS, *CHARACTERS]
    tok = Tokenizer(models.WordLevel(vocab={t: i for i, t in enumerate(vocab)}, unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(SPLIT_PATTERN), behavior="isolated")
    tok.decoder = decoders.Fuse()
    hf = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token=PAD, eos_token=EOS, unk_token=UNK,
                                 padding_side="left", model_max_length=4096)
    hf.chat_template = CHAT_TEMPLATE
    return hf


def make_model(tokenizer, settings: TinyTextSettings):
    """A freshly initialised tiny ``LlamaForCausalLM`` (deterministic in ``settings.seed``)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(settings.seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=settings.hidden_size,
        intermediate_size=settings.intermediate_size, num_hidden_layers=settings.num_hidden_layers,
        num_attention_heads=settings.num_attention_heads, num_key_value_heads=settings.num_attention_heads,
        max_position_embeddings=settings.max_position_embeddings, tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, bos_token_id=None,
        dtype="float32")
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.bos_token_id = None
    return model


@contextlib.contextmanager
def torch_threads(n: int | None = 1):
    """Run torch ops on ``n`` threads inside the block (``None``: leave as is), then restore.

    A model this small has nothing to split across threads; on a shared 2-core machine two threads
    made a warm-start step 10x slower than one (measured: 1.05 s vs 0.11 s of CPU per step)."""
    import torch

    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _clip_prompt(messages: list[dict], max_chars: int) -> list[dict]:
    return [{**m, "content": m["content"][:max_chars]} for m in messages]


def warm_start_examples(tokenizer, pairs: Sequence[tuple[list[dict], str]], max_prompt_chars: int
                        ) -> list[tuple[list[int], int]]:
    """(token ids, number of prompt tokens) for each (chat prompt, demonstration) pair."""
    from ..chat_format import prompt_token_ids

    out = []
    for messages, demo in pairs:
        prompt = prompt_token_ids(tokenizer, _clip_prompt(messages, max_prompt_chars))
        completion = tokenizer(demo, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        out.append((prompt + completion, len(prompt)))
    return out


def warm_start(model, tokenizer, pairs: Sequence[tuple[list[dict], str]], settings: TinyTextSettings,
               progress: bool = True) -> list[float]:
    """Supervised training of all weights on the demonstrations (loss on the completion only).

    Returns the loss of each step. Sequences longer than the model's positions are cut from the left
    of the prompt (the completion is always kept whole)."""
    import torch
    from tqdm.auto import tqdm

    examples = warm_start_examples(tokenizer, pairs, settings.max_prompt_chars)
    limit = settings.max_position_embeddings
    examples = [(ids[-limit:], max(0, n_prompt - max(0, len(ids) - limit))) for ids, n_prompt in examples]
    gen = torch.Generator().manual_seed(settings.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=settings.warm_lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 20))  # 20 warmup steps
    pad = tokenizer.pad_token_id
    losses: list[float] = []
    model.train()
    for _ in tqdm(range(settings.warm_steps), desc="tiny model warm start", disable=not progress, leave=False):
        idx = torch.randint(len(examples), (min(settings.warm_batch, len(examples)),), generator=gen).tolist()
        batch = [examples[i] for i in idx]
        width = max(len(ids) for ids, _ in batch)
        input_ids = torch.full((len(batch), width), pad)
        labels = torch.full((len(batch), width), -100)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, (ids, n_prompt) in enumerate(batch):  # right padding: positions start at 0 for every row
            input_ids[row, :len(ids)] = torch.tensor(ids)
            mask[row, :len(ids)] = 1
            labels[row, n_prompt:len(ids)] = torch.tensor(ids[n_prompt:])
        loss = model(input_ids=input_ids, attention_mask=mask, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
    model.eval()
    return losses


def fingerprint(task: str, pairs: Sequence[tuple[list[dict], str]], settings: TinyTextSettings) -> str:
    blob = json.dumps({"task": task, "pairs": [[m, d] for m, d in pairs], "settings": settings.as_dict(),
                       "version": VERSION}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def cache_root() -> Path:
    from ..paths import runs_dir

    return runs_dir() / "tiny-task-models"


@dataclass
class TinyTextModel:
    """Where the built model lives and how its warm start went."""

    path: Path
    built: bool  # False: found ready (committed or cached)
    losses: list[float]
    parameters: int

    def report(self) -> str:
        how = "built now" if self.built else "ready"
        loss = (f"; warm-start loss {self.losses[0]:.2f} -> {self.losses[-1]:.2f} over {len(self.losses)} steps"
                if self.losses else "")
        return f"tiny character model ({self.parameters:,} parameters, {how}: {self.path}){loss}"


def read_info(path: str | Path) -> dict | None:
    """The folder's ``warm_start.json`` (``None`` if the folder holds no complete model)."""
    path = Path(path)
    info = path / "warm_start.json"
    if not (info.is_file() and (path / "config.json").is_file() and (path / "model.safetensors").is_file()):
        return None
    return json.loads(info.read_text())


def build(task: str, pairs: Sequence[tuple[list[dict], str]], out_dir: str | Path,
          settings: TinyTextSettings | None = None, progress: bool = True) -> TinyTextModel:
    """Build the tiny model (warm start included) into ``out_dir``, written atomically."""
    settings = settings or TinyTextSettings()
    if not pairs:
        raise ValueError(f"task {task!r}: no demonstrations to warm-start the tiny model on")
    out_dir = Path(out_dir)
    tokenizer = build_char_tokenizer()
    model = make_model(tokenizer, settings)
    with torch_threads(1):
        losses = warm_start(model, tokenizer, pairs, settings, progress=progress)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    parameters = sum(p.numel() for p in model.parameters())
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    try:  # write to a temporary folder, then swap it in: a reader never sees half a model
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / "warm_start.json").write_text(json.dumps(
            {"task": task, "fingerprint": fingerprint(task, pairs, settings), "settings": settings.as_dict(),
             "examples": len(pairs), "parameters": parameters, "version": VERSION,
             "losses": [round(x, 4) for x in losses]}, indent=1) + "\n")
        if out_dir.exists():
            shutil.rmtree(out_dir, ignore_errors=True)
        try:
            os.replace(tmp, out_dir)
        except OSError:  # another process won the race: its copy is identical
            pass
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return TinyTextModel(out_dir, True, losses, parameters)


def build_or_load(task: str, pairs: Sequence[tuple[list[dict], str]], settings: TinyTextSettings | None = None,
                  committed: str | Path | None = None, root: str | Path | None = None,
                  progress: bool = True) -> TinyTextModel:
    """The tiny model for ``task``: the committed folder if it was built from these very demonstrations
    and settings, else a cached build under ``runs/tiny-task-models`` (built now if missing)."""
    settings = settings or TinyTextSettings()
    want = fingerprint(task, pairs, settings)
    candidates = [Path(committed)] if committed is not None else []
    cache = (Path(root) if root is not None else cache_root()) / f"{task}-{want}"
    candidates.append(cache)
    for path in candidates:
        info = read_info(path)
        if info is not None and info.get("fingerprint") == want:
            return TinyTextModel(path, False, info.get("losses", []), info.get("parameters", 0))
    if committed is not None and read_info(committed) is not None:
        print(f"{committed} was built from other demonstrations or settings: building a fresh copy in {cache}")
    return build(task, pairs, cache, settings, progress=progress)


def load(path: str | Path):
    """``(model, tokenizer)`` from a built folder (fp32, eval mode, left padding)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    tokenizer.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(path, dtype="float32")
    model.eval()
    return model, tokenizer


def build_committed(names: Sequence[str] | None = None, progress: bool = True) -> dict[str, TinyTextModel]:
    """Rebuild ``data/tasks/<task>/tiny`` for the tasks that have a CPU model (all by default)."""
    from .base import TASKS

    out = {}
    for name, task in TASKS.items():
        if not task.uses_tiny_text_model or (names and name not in names):
            continue
        out[name] = build(name, task.tiny_pairs(), task.data_folder / "tiny", progress=progress)
        print(out[name].report())
    return out


if __name__ == "__main__":  # python -m grpo_course.tasks.tiny_text [task ...]
    import sys

    build_committed(sys.argv[1:] or None)
