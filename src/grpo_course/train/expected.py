"""What a GPU run is expected to do, from published runs: never from a run we invented.

CI has no GPU, so the course cannot measure the GPU path itself. These are the figures the saved
outputs of Unsloth's own Colab notebooks show (``github.com/unslothai/notebooks``, folder ``nb/``: progress
bars, logged rewards and the start-up banner of each run), plus one remark from Unsloth's blog. Each row
names its notebook or page. :func:`estimate_hours` turns a seconds-per-step figure into a run time for a
profile: an estimate, labelled as one.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..hardware import PROFILES


@dataclass(frozen=True)
class Published:
    gpu: str
    what: str
    figure: str
    source: str


NB = "unslothai/notebooks nb/"
PUBLISHED: tuple[Published, ...] = (
    Published("L4", "FP8 Llama-3.2-1B GRPO, time per step (4 prompts x 4 completions, up to 1,849 tokens)",
              "100 steps in 50:36, about 31.8 s/step", NB + "Llama_FP8_GRPO.ipynb, saved output"),
    Published("L4", "FP8 Llama-3.2-1B, memory to load the model", "1.47 GiB; vLLM KV cache up to 17.53 GB",
              NB + "Llama_FP8_GRPO.ipynb, saved output"),
    Published("L4", "SFT format priming, 100 steps on 78 examples", "about 100 s, loss 1.24 to 0.44",
              NB + "Llama_FP8_GRPO.ipynb, saved output"),
    Published("L4", "FP8 Llama-3.2-1B GRPO, reward over 100 steps",
              "no gain: -5.32 (steps 1-20), -5.10 (steps 81-100); 60-70% of completions cut at max length",
              NB + "Llama_FP8_GRPO.ipynb, saved output"),
    Published("T4", "Gemma-3-1B GRPO without vLLM (the 1B, no-vLLM case closest to our T4 profile)",
              "about 57 s/step, completions of 340-711 tokens", NB + "Gemma3_(1B)-GRPO.ipynb, saved output"),
    Published("T4", "Llama-3.2-3B 16-bit LoRA GRPO, the saved run that clearly learns",
              "500 steps in 6:57:24 (about 50 s/step); format reward appears only after about 200 steps",
              NB + "Advanced_Llama3_2_(3B)_GRPO_LoRA.ipynb, saved output"),
    Published("T4", "usable memory", "14.74 GB",
              NB + "Llama3.1_(8B)-GRPO.ipynb, Unsloth's start-up banner on a Colab T4"),
    Published("L4", "usable memory", "22.16 GB",
              NB + "Llama_FP8_GRPO.ipynb, Unsloth's start-up banner on a Colab L4"),
    Published("any", "when the reward starts to rise", "'Wait for at least 300 steps for the reward to actually "
              "increase'", "unsloth.ai blog, R1 reasoning, 6 Feb 2025"),
)


def published_rows() -> list[dict]:
    """The published GPU figures as rows (gpu, what, figure, source) for a DataFrame."""
    return [{"gpu": p.gpu, "what": p.what, "figure": p.figure, "source": p.source} for p in PUBLISHED]


def published_table(width: int = 64) -> str:
    import textwrap

    lines = [f"{'gpu':<4} {'what':<{width}} figure  [source]"]
    for p in PUBLISHED:
        what = textwrap.wrap(p.what, width)
        lines.append(f"{p.gpu:<4} {what[0]:<{width}} {p.figure}  [{p.source}]")
        lines.extend(f"{'':<4} {w}" for w in what[1:])
    return "\n".join(lines)


def estimate_hours(profile_name: str, seconds_per_step: float) -> float:
    """Hours for the profile's ``max_steps`` at ``seconds_per_step`` (an estimate from a published rate)."""
    return PROFILES[profile_name].max_steps * seconds_per_step / 3600
