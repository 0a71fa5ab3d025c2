"""Proof that the course's GRPO math is the math TRL runs.

A tiny Llama (built here, no hub) and TRL 1.14's ``GRPOTrainer`` generate and score one batch. We then
perturb the policy so the ratios pi_theta / pi_theta_old leave 1 and clipping is active, and compare:

* advantages: ``grpo_course.advantages.group_advantages`` on the captured rewards == TRL's, exactly;
* log-probabilities of the old policy: within 1e-6;
* loss and every parameter's gradient, on each of the generation batch's micro-batches: within 1e-6,

for every loss_type x beta x scale_rewards (24 combinations), with gradient accumulation (GA=2,
4 micro-batches per generation batch) and temperature 0.7, on TRL's own micro-batch split.
The batch has unequal completion lengths, a zero-variance group and unscorable (None) rewards.
"""

from __future__ import annotations

import math
import os
import string
from dataclasses import dataclass

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # everything here is built locally; never reach for the hub
torch = pytest.importorskip("torch")
trl = pytest.importorskip("trl")

from datasets import Dataset  # noqa: E402
from tokenizers import Tokenizer, decoders, models, pre_tokenizers  # noqa: E402
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast  # noqa: E402
from trl import GRPOConfig, GRPOTrainer  # noqa: E402
from trl.trainer.utils import shuffle_sequence_dict, split_tensor_dict  # noqa: E402

from grpo_course.advantages import group_advantages  # noqa: E402
from grpo_course.logprobs import completion_logprobs  # noqa: E402
from grpo_course.objective import grpo_loss_terms  # noqa: E402

G = 4                 # num_generations
PER_DEVICE = 8        # completions per micro-batch
GA = 2                # gradient_accumulation_steps
SPG = 4               # steps_per_generation: 4 micro-batches per generation batch -> old log-probs are kept
MAX_LEN = 8
TEMPERATURE = 0.7
PROMPTS = ["1+1=", "2+3=", "abc", "what?", "9+9=", "zz", "hello", "4+4="]
KINDS = ["count", "count", "count", "skip", "count", "const", "count", "count"]
TOL = 1e-6


def build_tiny(path) -> None:
    """A character-level tokenizer and a 2-layer Llama, saved to ``path`` (TRL builds the ref model from it)."""
    chars = list(string.ascii_lowercase + string.digits + " +=?")
    vocab = {t: i for i, t in enumerate(["<pad>", "<eos>", "<bos>", "<unk>"] + chars)}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Split(pattern="", behavior="isolated")
    core.decoder = decoders.Fuse()
    tok = PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", eos_token="<eos>",
                                  bos_token="<bos>", unk_token="<unk>")
    tok.padding_side = "left"
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                      pad_token_id=0, eos_token_id=1, bos_token_id=2, tie_word_embeddings=False)
    LlamaForCausalLM(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return tok


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny_llama")
    tok = build_tiny(path)
    return str(path), tok


def make_reward(captured: list):
    """Counts some characters; a constant for 'const' prompts (a zero-variance group); None for
    'skip' completions whose character codes sum to an even number (TRL's unscorable path)."""

    def char_reward(completions, kind, **kwargs):
        out = []
        for c, k in zip(completions, kind):
            if k == "const":
                out.append(1.0)
            elif k == "skip" and sum(map(ord, c)) % 2 == 0:
                out.append(None)
            else:
                out.append(float(sum(ch in "aeiou0123" for ch in c)))
        captured.extend(out)
        return out

    return char_reward


@dataclass
class Prepared:
    """One TRL generation batch, scored, checked, and a perturbed policy ready for loss comparisons."""

    trainer: GRPOTrainer
    micros: list[dict]
    beta: float


def prepare(path, tok, beta, scale, out_dir, **extra) -> Prepared:
    """TRL generates and scores one batch; checks advantages and old log-probs; perturbs the policy."""
    captured: list = []
    args = GRPOConfig(
        output_dir=str(out_dir), use_cpu=True, bf16=False, report_to="none", save_strategy="no",
        per_device_train_batch_size=PER_DEVICE, num_generations=G, gradient_accumulation_steps=GA,
        steps_per_generation=SPG, max_completion_length=MAX_LEN, temperature=TEMPERATURE, beta=beta,
        scale_rewards=scale, gradient_checkpointing=False, seed=0, **extra,
    )
    dataset = Dataset.from_dict({"prompt": PROMPTS, "kind": KINDS})
    # beta > 0: TRL builds the reference model from the model's _name_or_path, so pass a saved local path.
    trainer = GRPOTrainer(model=path, reward_funcs=make_reward(captured), args=args, train_dataset=dataset,
                          processing_class=tok)
    model = trainer.model
    model.train()
    trainer.current_gradient_accumulation_steps = GA  # set by Trainer.train(); we call the pieces directly

    rows = [{"prompt": p, "kind": k} for p, k in zip(PROMPTS, KINDS) for _ in range(G)]
    out = trainer._generate_and_score_completions(rows)
    assert "old_per_token_logps" in out, "config should make TRL keep old log-probs"
    assert None in captured and len(set(out["completion_mask"].sum(1).tolist())) > 1, "batch lacks edge cases"

    # 1) advantages: identical
    rewards = torch.tensor([math.nan if r is None else r for r in captured], dtype=torch.float32)
    ours_adv = group_advantages(rewards, G, scale=scale)
    assert torch.equal(ours_adv, out["advantages"]), (ours_adv - out["advantages"]).abs().max()

    # 2) old log-probs, computed by us before the policy moves
    with torch.no_grad():
        old = completion_logprobs(model, out["prompt_ids"], out["prompt_mask"], out["completion_ids"],
                                  out["completion_mask"], temperature=TEMPERATURE)
    assert (old - out["old_per_token_logps"]).abs().max() < TOL

    # 3) move the policy away from the one that sampled, so ratios leave 1 and clipping bites
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.15 * torch.randn(p.shape, generator=gen))

    # the micro-batches, split the way TRL's _prepare_inputs splits the generation batch
    micros = split_tensor_dict(shuffle_sequence_dict(out), SPG)
    return Prepared(trainer=trainer, micros=micros, beta=beta)


def compare_micro(trainer, micro, beta, loss_type) -> dict:
    """TRL's compute_loss vs grpo_course's on one micro-batch: loss, every gradient, clip fraction."""
    model = trainer.model
    model.zero_grad()
    trl_loss = trainer.compute_loss(model, micro)
    trl_loss.backward()
    trl_grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    trl_clip = trainer._metrics["train"]["clip_ratio/region_mean"][-1]

    model.zero_grad()
    ids = (micro["prompt_ids"], micro["prompt_mask"], micro["completion_ids"], micro["completion_mask"])
    logp = completion_logprobs(model, *ids, temperature=TEMPERATURE)
    ref_logp = None
    if beta:
        with torch.no_grad():
            ref_logp = completion_logprobs(trainer.ref_model, *ids, temperature=TEMPERATURE)
    args = trainer.args
    terms = grpo_loss_terms(
        logp, micro["advantages"], micro["completion_mask"], old_logp=micro["old_per_token_logps"],
        ref_logp=ref_logp, beta=beta, epsilon=args.epsilon, epsilon_high=args.epsilon_high, delta=args.delta,
        importance_sampling_level=args.importance_sampling_level, loss_type=loss_type,
        max_completion_length=MAX_LEN, num_items_in_batch=micro["num_items_in_batch"],
        gradient_accumulation_steps=GA, steps_per_generation=SPG,
    )
    terms.loss.backward()
    grad_diff = max((p.grad - trl_grads[n]).abs().max().item() for n, p in model.named_parameters())
    model.zero_grad()
    active = micro["completion_mask"].bool()
    negative = (micro["advantages"] < 0).unsqueeze(1).expand_as(active)
    ratio = terms.ratio.detach().expand_as(active)
    return {
        "loss_diff": abs(terms.loss.item() - trl_loss.item()),
        "grad_diff": grad_diff,
        "grad_scale": max(g.abs().max().item() for g in trl_grads.values()),
        "clip": terms.clip_region,
        "clip_diff": abs(terms.clip_region - trl_clip),
        "kl": terms.mean_kl or 0.0,
        "max_ratio_where_A_negative": ratio[active & negative].max().item() if (active & negative).any() else 0.0,
    }


def compare_loss(prep: Prepared, loss_type: str) -> dict:
    """compare_micro over every micro-batch of the generation batch; worst differences, largest signals."""
    trainer = prep.trainer
    # loss_type only enters TRL's _compute_loss, so one generated batch serves all four loss types
    assert hasattr(trainer, "loss_type")
    trainer.loss_type = trainer.args.loss_type = loss_type
    results = [compare_micro(trainer, micro, prep.beta, loss_type) for micro in prep.micros]
    return {key: max(r[key] for r in results) for key in results[0]}


@pytest.fixture(scope="module")
def prepared(tiny, tmp_path_factory):
    """One TRL trainer and batch per (beta, scale), built on first use and shared by the four loss types."""
    path, tok = tiny
    cache: dict = {}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a 32-wide model gains nothing from threads, and CI's 2 cores are shared

    def get(beta, scale, **extra):
        key = (beta, scale, tuple(sorted(extra.items())))
        if key not in cache:
            cache[key] = prepare(path, tok, beta, scale, tmp_path_factory.mktemp("grpo_out"), **extra)
        return cache[key]

    yield get
    torch.set_num_threads(threads)


@pytest.mark.parametrize("loss_type", ["grpo", "bnpo", "dr_grpo", "dapo"])
@pytest.mark.parametrize("beta", [0.0, 0.04])
@pytest.mark.parametrize("scale", ["group", "batch", "none"])
def test_course_math_equals_trl(prepared, loss_type, beta, scale):
    r = compare_loss(prepared(beta, scale), loss_type)
    assert r["loss_diff"] < TOL, r
    assert r["grad_diff"] < TOL, r
    assert r["grad_scale"] > 1e-3, "gradients too small for the comparison to mean anything"
    assert r["clip"] > 0, "the perturbation should make clipping active"
    assert r["clip_diff"] < 1e-6, r
    if beta:
        assert r["kl"] > 0


@pytest.mark.parametrize("loss_type, extra", [
    ("grpo", {"importance_sampling_level": "sequence"}),  # GSPO: one ratio per completion
    ("dapo", {"epsilon_high": 0.28, "delta": 1.5}),  # DAPO's asymmetric clip, TRL's two-sided clip
])
def test_other_clipping_settings_equal_trl(prepared, loss_type, extra):
    r = compare_loss(prepared(0.04, "group", **extra), loss_type)
    assert r["loss_diff"] < TOL, r
    assert r["grad_diff"] < TOL, r
    assert r["clip_diff"] < 1e-6, r
    if "delta" in extra:
        assert r["max_ratio_where_A_negative"] > extra["delta"], "delta never bites on this batch"
