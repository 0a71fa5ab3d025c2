"""grpo_course.gpu on a CPU: the import is light, the GPU entry point fails clearly, the choices hold.

Nothing here imports Unsloth or vLLM (neither is installed in the CPU venv). Keyword names are
checked against the pinned wheels in tests/test_gpu_contracts.py; this file checks the values.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from grpo_course import gpu, hardware
from grpo_course.hardware import PROFILES, DeviceInfo
from grpo_course.lora import lora_settings

T4 = DeviceInfo("Tesla T4", (7, 5), 14.74)
L4 = DeviceInfo("NVIDIA L4", (8, 9), 22.16)
GPU_PROFILES = [n for n, p in PROFILES.items() if p.device == "cuda"]


def test_import_gpu_is_light():
    code = ("import sys, grpo_course.gpu; bad = [m for m in ('torch', 'unsloth', 'vllm', 'trl', 'transformers') "
            "if m in sys.modules]; print(bad); assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_import_unsloth_without_gpu_is_a_clear_error():
    """In a fresh interpreter on this CPU machine: the t4 profile asks for Unsloth, and gets advice."""
    code = textwrap.dedent("""
        import sys
        from grpo_course import gpu
        from grpo_course.hardware import PROFILES
        try:
            gpu.import_unsloth(PROFILES["t4"])
        except gpu.GPUUnavailableError as err:
            print(err)
        else:
            raise SystemExit("no error")
        assert "unsloth" not in sys.modules
    """)
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert "needs an NVIDIA GPU" in out and "Runtime > Change runtime type" in out and "cpu-tiny" in out


def test_import_unsloth_on_a_cpu_profile_refuses():
    with pytest.raises(gpu.GPUUnavailableError, match="never imports Unsloth"):
        gpu.import_unsloth(PROFILES["cpu-tiny"])


def test_import_unsloth_not_installed(monkeypatch):
    monkeypatch.setattr(gpu, "detect_device", lambda: T4)
    monkeypatch.setattr(gpu.importlib.util, "find_spec", lambda name: None)
    monkeypatch.delitem(sys.modules, "unsloth", raising=False)
    with pytest.raises(ImportError, match="install_gpu_stack"):
        gpu.import_unsloth(PROFILES["t4"])


@pytest.mark.parametrize(("profile", "standby"), [("t4", "0"), ("l4", "1")])
def test_import_unsloth_sets_env_before_the_import(tmp_path, profile, standby):
    """A stand-in `unsloth` package records the environment it was imported with."""
    (tmp_path / "unsloth").mkdir()
    (tmp_path / "unsloth" / "__init__.py").write_text(
        "import os\nSEEN = {k: v for k, v in os.environ.items() if k.startswith('UNSLOTH_')}\n")
    code = textwrap.dedent(f"""
        import sys, warnings
        sys.path.insert(0, {str(tmp_path)!r})
        from grpo_course import gpu
        from grpo_course.hardware import PROFILES, DeviceInfo
        gpu.detect_device = lambda: DeviceInfo("fake", (8, 9), 22.0)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            mod = gpu.import_unsloth(PROFILES[{profile!r}])
        print(mod.SEEN)
    """)
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("UNSLOTH_")}
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, env=env).stdout
    seen = eval(out.strip())  # a dict literal printed by the child
    assert seen == gpu.unsloth_env(PROFILES[profile]) and seen[gpu.STANDBY_ENV] == standby


def test_import_unsloth_warns_when_trl_came_first(tmp_path):
    (tmp_path / "unsloth").mkdir()
    (tmp_path / "unsloth" / "__init__.py").write_text("")
    code = textwrap.dedent(f"""
        import sys, warnings, types
        sys.path.insert(0, {str(tmp_path)!r})
        sys.modules["trl"] = types.ModuleType("trl")
        from grpo_course import gpu
        from grpo_course.hardware import PROFILES, DeviceInfo
        gpu.detect_device = lambda: DeviceInfo("fake", (7, 5), 15.0)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            gpu.import_unsloth(PROFILES["t4"])
        print([str(w.message) for w in caught])
    """)
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert "trl imported before Unsloth" in out


# --------------------------------------------------------------------------- the course's choices


def test_t4_loads_16bit_fp16_without_vllm():
    kw = gpu.from_pretrained_kwargs(PROFILES["t4"], lora_settings("t4"))
    assert kw["dtype"] == "float16" and kw["load_in_4bit"] is False and kw["load_in_fp8"] is False
    assert kw["fast_inference"] is False and "gpu_memory_utilization" not in kw
    over = gpu.grpo_config_overrides(PROFILES["t4"])
    assert over["fp16"] is True and over["bf16"] is False and over["use_vllm"] is False
    assert not any(k.startswith("vllm_") for k in over)


def test_l4_loads_fp8_block_with_vllm():
    lora = lora_settings("l4")
    kw = gpu.from_pretrained_kwargs(PROFILES["l4"], lora)
    assert kw["model_name"] == "unsloth/Llama-3.2-1B-Instruct"
    assert kw["load_in_fp8"] is True and kw["load_in_4bit"] is False and kw["dtype"] == "bfloat16"
    assert kw["fast_inference"] is True and kw["max_lora_rank"] >= lora.r
    assert kw["gpu_memory_utilization"] == PROFILES["l4"].gpu_memory_utilization <= 0.825 * 0.95
    over = gpu.grpo_config_overrides(PROFILES["l4"])
    assert over["bf16"] and not over["fp16"] and over["use_vllm"] and over["vllm_mode"] == "colocate"
    assert over["vllm_gpu_memory_utilization"] == kw["gpu_memory_utilization"]


@pytest.mark.parametrize("profile", GPU_PROFILES)
def test_sequence_length_holds_prompt_and_completion(profile):
    p = PROFILES[profile]
    assert gpu.from_pretrained_kwargs(p, lora_settings(profile))["max_seq_length"] == (
        p.max_prompt_length + p.max_completion_length)


@pytest.mark.parametrize("profile", GPU_PROFILES)
def test_peft_kwargs_are_the_stage03_table(profile):
    lora = lora_settings(profile)
    kw = gpu.peft_kwargs(lora, seed=7)
    assert {k: kw[k] for k in lora.get_peft_model_kwargs()} == lora.get_peft_model_kwargs()
    assert kw["random_state"] == 7 and kw["use_gradient_checkpointing"] == "unsloth"


def test_cpu_profile_has_no_gpu_settings():
    for builder in (lambda p: gpu.from_pretrained_kwargs(p, lora_settings("cpu-tiny")), gpu.grpo_config_overrides):
        with pytest.raises(ValueError, match="CPU profile"):
            builder(PROFILES["cpu-tiny"])


@pytest.mark.parametrize("profile", GPU_PROFILES)
def test_every_override_has_a_reason(profile):
    reasons = gpu.grpo_config_reasons(PROFILES[profile])
    assert set(reasons) == set(gpu.grpo_config_overrides(PROFILES[profile])) and all(reasons.values())


@pytest.mark.parametrize("profile", GPU_PROFILES)
def test_gpu_training_settings_leave_unsloth_nothing_to_change(profile, tmp_path):
    """The full GRPOConfig keywords of a GPU run (train.config + gpu overrides): Unsloth's patched
    config would keep every value, so the run trains with what the lessons describe."""
    from grpo_course.train.config import grpo_kwargs, grpo_settings

    kwargs = grpo_kwargs(grpo_settings(PROFILES[profile], tmp_path))
    assert gpu.unsloth_silent_changes(kwargs) == []
    assert kwargs["epsilon_high"] == kwargs.get("epsilon", gpu.TRL_EPSILON_DEFAULT)


@pytest.mark.parametrize(("kwargs", "expected"), [
    ({}, ["weight_decay", "optim", "learning_rate", "seed", "per_device_train_batch_size", "bf16"]),
    ({"use_vllm": True}, ["vllm_importance_sampling_correction"]),
    ({"loss_type": "dapo"}, ["epsilon_high", "mask_truncated_completions"]),
    ({"loss_type": "dapo", "epsilon_high": 0.2, "mask_truncated_completions": False}, []),
    ({"loss_type": "dr_grpo"}, ["scale_rewards"]),
    ({"per_device_train_batch_size": 6, "gradient_accumulation_steps": 1, "num_generations": 4},
     ["per_device_train_batch_size: 6 x 1 x 1"]),
    ({"per_device_train_batch_size": 2, "gradient_accumulation_steps": 2, "num_generations": 4}, []),
    ({"temperature": 0.0}, ["temperature=0.0"]),
])
def test_unsloth_silent_changes(kwargs, expected):
    # every TRL default passed explicitly, except in the cases that test leaving them out
    full = {} if set(kwargs) <= {"use_vllm"} else dict(gpu.TRL_DEFAULTS_UNSLOTH_CHANGES)
    full.update(kwargs)
    changes = gpu.unsloth_silent_changes(full)
    for needle in expected:
        assert any(c.startswith(needle) or needle in c for c in changes), (needle, changes)
    if not expected:
        assert changes == []


def test_sampling_params_greedy_and_sampled():
    greedy = gpu.sampling_params_kwargs(128, temperature=0.0)
    assert greedy["temperature"] == 0.0 and greedy["max_tokens"] == 128 and greedy["top_k"] == 0
    assert gpu.sampling_params_kwargs(8, temperature=-1)["temperature"] == 0.0
    assert gpu.sampling_params_kwargs(8, temperature=0.7, seed=None).keys() == {"max_tokens", "temperature",
                                                                                  "top_p", "top_k"}
    from grpo_course.generation import Decoding, generate_kwargs

    assert generate_kwargs(Decoding(8), 0, {1})["do_sample"] is False
    assert generate_kwargs(Decoding(8, temperature=0.9), 0, {1}) == {
        "max_new_tokens": 8, "pad_token_id": 0, "eos_token_id": [1], "num_return_sequences": 1, "do_sample": True,
        "temperature": 0.9, "top_p": 1.0, "top_k": 0}


def test_gguf_quantization_is_checked():
    assert gpu.gguf_save_kwargs() == {"quantization_method": "q8_0"}
    with pytest.raises(ValueError, match="q4_k_m"):
        gpu.gguf_save_kwargs("q3_bogus")


def test_device_fit_explains_fp8_on_a_t4():
    with pytest.raises(gpu.GPUUnavailableError, match="GRPO_COURSE_PROFILE=t4"):
        gpu.check_device_fits(PROFILES["l4"], T4)
    gpu.check_device_fits(PROFILES["l4"], L4)
    gpu.check_device_fits(PROFILES["t4"], T4)
    with pytest.raises(gpu.GPUUnavailableError, match="GRPO_COURSE_PROFILE=t4"):
        gpu.check_device_fits(PROFILES["large"], hardware.DeviceInfo("Tesla V100", (7, 0), 32.0))


def test_generate_picks_the_backend_from_the_model():
    class HasEngine:
        vllm_engine = object()

    assert gpu.uses_vllm_engine(HasEngine()) and not gpu.uses_vllm_engine(object())


# ---- generation: token counts and truncation come from the generator --------------------------------


def _tiny(eos_bias: float):
    """The course's tiny tokenizer and a small random Llama whose end-of-sequence logit is shifted:
    +1e4 stops at once, -1e4 never stops."""
    import torch
    from transformers import AutoTokenizer

    from grpo_course.paths import data_dir
    from grpo_course.tiny.model import TinyModelSettings, make_model

    tokenizer = AutoTokenizer.from_pretrained(str(data_dir() / "tiny" / "sft"))
    model = make_model(tokenizer, TinyModelSettings(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                                    num_attention_heads=2), seed=0).eval()
    shift = torch.zeros(model.config.vocab_size)
    shift[tokenizer.eos_token_id] = eos_bias
    model.lm_head.register_forward_hook(lambda module, inputs, output: output + shift)
    return model, tokenizer


PROMPTS = ["What is 2 + 3?", "Ava has 4 apples and eats 1. How many are left?"]


def test_transformers_path_counts_tokens_to_the_end_and_flags_the_cut():
    """The T4 path (no vLLM engine: transformers' generate) run on a CPU model: one completion per prompt,
    the count includes the end-of-sequence token, and only a completion that hit the limit is 'cut'."""
    from grpo_course.generation import Decoding, generate, generate_samples

    messages = [[{"role": "user", "content": p}] for p in PROMPTS]
    model, tokenizer = _tiny(eos_bias=-1e4)
    cut = [g for (g,) in generate_samples(model, tokenizer, messages, Decoding(5, batch_size=1), progress=False)]
    assert [(g.n_tokens, g.truncated) for g in cut] == [(5, True), (5, True)]
    assert generate(model, tokenizer, messages, max_new_tokens=5) == [g.text for g in cut]
    model, tokenizer = _tiny(eos_bias=1e4)
    stops = [g for (g,) in generate_samples(model, tokenizer, messages, Decoding(5), progress=False)]
    assert [(g.text, g.n_tokens, g.truncated) for g in stops] == [("", 1, False), ("", 1, False)]


def test_vllm_path_reads_token_ids_and_finish_reason(monkeypatch):
    """vLLM profiles: the count is len(token_ids) and the cut is finish_reason == 'length' (vLLM's own
    record; field names checked against vLLM 0.19.1 in test_gpu_contracts.py), whatever the text says."""
    import types

    _, tokenizer = _tiny(eos_bias=0.0)
    seen = {}

    class SamplingParams:
        def __init__(self, **kwargs):
            seen["params"] = kwargs

    monkeypatch.setitem(sys.modules, "vllm", types.SimpleNamespace(SamplingParams=SamplingParams))

    def completion(text, n, reason):
        return types.SimpleNamespace(outputs=[types.SimpleNamespace(text=text, token_ids=list(range(n)),
                                                                    finish_reason=reason)])

    class EngineModel:
        vllm_engine = object()

        def fast_generate(self, prompts, **kwargs):
            seen["prompts"], seen["kwargs"] = prompts, kwargs
            return [completion("short", 3, "stop"), completion("short too", 2, "length")]

    from grpo_course.chat_format import prompt_token_ids

    ids = [prompt_token_ids(tokenizer, [{"role": "user", "content": p}]) for p in PROMPTS]
    out = gpu.vllm_generate(EngineModel(), ids, max_new_tokens=8, use_adapter=False)
    assert out == [("short", 3, False), ("short too", 2, True)]
    assert seen["kwargs"]["lora_request"] is None and seen["params"]["max_tokens"] == 8
    assert all(list(p) == ["prompt_token_ids"] for p in seen["prompts"])
