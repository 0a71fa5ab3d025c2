"""Published GSM8K figures for Llama 3.2, and how their protocol differs from ours.

A number is only comparable with another measured the same way. Meta's figures use 8 worked examples
in the prompt, Meta's internal harness and exact match; ours are zero-shot in the course's
think/answer format with our graders. The table below puts them side by side *with* the differences,
so nobody reads a gap as a model difference when it is a protocol difference.
Sources: Meta's Llama 3.2 model card, "Instruction Tuned Models" table (GSM8K CoT, 8-shot, em_maj1@1:
44.4 for 1B, 77.7 for 3B) and its evaluation notes (8-shot CoT prompt of Wei et al. 2022, "Chain-of-Thought
Prompting Elicits Reasoning in Large Language Models", arXiv 2201.11903; maj@1; at most 1024 generated tokens),
both in github.com/meta-llama/llama-models, ``models/llama3_2/MODEL_CARD.md`` and ``eval_details.md``; the
lm-evaluation-harness reproductions of the 1B figure (40.0 / 39.4 / 41.7) are in meta-llama/llama-cookbook
issue #810 ("Reproduction issue of task GSM8K with Llama3.2-1B-Instruct").
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Published:
    model: str
    gsm8k: float  # percent
    protocol: str
    source: str


META_MODEL_CARD = ("Meta Llama 3.2 model card, 'Instruction Tuned Models' table "
                   "(meta-llama/llama-models, models/llama3_2/MODEL_CARD.md)")
META_PROTOCOL = ("8-shot chain-of-thought (Wei et al. 2022 exemplars), greedy, em_maj1@1, max 1024 generated "
                 "tokens, Meta's internal evaluation library (models/llama3_2/eval_details.md)")

PUBLISHED: dict[str, Published] = {
    "Llama-3.2-1B-Instruct": Published("Llama-3.2-1B-Instruct", 44.4, META_PROTOCOL, META_MODEL_CARD),
    "Llama-3.2-3B-Instruct": Published("Llama-3.2-3B-Instruct", 77.7, META_PROTOCOL, META_MODEL_CARD),
}

# Independent re-measurements of the 1B figure with EleutherAI's lm-evaluation-harness.
REPRODUCTIONS = [
    Published("Llama-3.2-1B-Instruct", 40.0, "lm-eval meta_gsm8k 8-shot, chat template, flexible-extract",
              "meta-llama/llama-cookbook issue #810"),
    Published("Llama-3.2-1B-Instruct", 39.4, "lm-eval meta_gsm8k 8-shot, chat template, strict-match",
              "meta-llama/llama-cookbook issue #810"),
    Published("Llama-3.2-1B-Instruct", 41.7, "lm-eval gsm8k_cot_llama 0-shot, chat template",
              "meta-llama/llama-cookbook issue #810"),
]


def published_for(model_id: str) -> Published | None:
    """Meta's figure for a hub id such as ``unsloth/Llama-3.2-1B-Instruct`` (None if we have none)."""
    name = model_id.rsplit("/", 1)[-1]
    return PUBLISHED.get(name)


def protocol_differences(max_new_tokens: int, n_samples: int, temperature: float) -> list[tuple[str, str, str]]:
    """``(aspect, Meta's model card, this notebook)`` rows."""
    return [
        ("examples in the prompt", "8 worked examples (8-shot CoT)", "none (0-shot) plus a system prompt"),
        ("answer format", "'The final answer is N' style text",
         "<think>...</think><answer>N</answer> (the course's format)"),
        ("grader", "exact match after Meta's extraction (em_maj1@1)",
         "grpo_course.rewards.is_correct, lenient (no format needed) and strict"),
        ("decoding", "greedy", f"greedy, plus {n_samples} samples at T={temperature:g} for pass@k"),
        ("max generated tokens", "1024", str(max_new_tokens)),
        ("harness", "Meta's internal evaluation library", "this package (transformers / vLLM generate)"),
        ("model weights", "bf16 release weights", "the profile's weights (FP8 blocks on L4, fp16 on T4)"),
    ]


def comparison_table(model_id: str, ours_greedy: float, ours_ci: tuple[float, float], max_new_tokens: int,
                     n_samples: int, temperature: float, n_problems: int) -> str:
    """Our greedy accuracy next to Meta's figure and the lm-eval reproductions, then the differences."""
    pub = published_for(model_id)
    lines = [f"{'source':<58}{'GSM8K':>8}  protocol"]
    if pub is not None:
        lines.append(f"{'Meta model card':<58}{pub.gsm8k:>7.1f}%  {pub.protocol}")
        for r in REPRODUCTIONS:
            if r.model == pub.model:
                lines.append(f"{r.source:<58}{r.gsm8k:>7.1f}%  {r.protocol}")
    else:
        lines.append(f"(no published GSM8K figure stored for {model_id})")
    lines.append(f"{'this notebook (greedy, lenient), ' + str(n_problems) + ' test problems':<58}"
                 f"{100 * ours_greedy:>7.1f}%  95% CI [{100 * ours_ci[0]:.1f}, {100 * ours_ci[1]:.1f}]")
    lines.append("")
    lines.append(f"{'aspect':<24}{'Meta model card':<48}this notebook")
    for aspect, theirs, ours in protocol_differences(max_new_tokens, n_samples, temperature):
        lines.append(f"{aspect:<24}{theirs:<48}{ours}")
    return "\n".join(lines)
