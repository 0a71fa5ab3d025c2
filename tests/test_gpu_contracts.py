"""Every keyword the GPU path passes to Unsloth, vLLM and TRL exists in the pinned releases.

No GPU and no mocks: the pinned wheels (``colab_pins.txt``) are downloaded once with
``pip download --no-deps`` into ``~/.cache/grpo-course/wheels`` and their source is parsed with
``ast``, never imported (``tests/pinned_source.py``). The keywords under test come from the same
builder functions ``grpo_course.gpu`` calls, for every GPU profile, so a change in gpu.py or in a
pin that breaks a call fails here. A keyword accepted only through ``**kwargs`` must be traced to
the place that consumes it; otherwise it is reported.
"""

from __future__ import annotations

import ast
import re

import pytest
from pinned_source import (
    attribute_bindings,
    call_keywords,
    calls_to,
    dataclass_fields,
    forwarding_calls,
    kwargs_keys_read,
    params,
    pinned_source,
    reads_name,
    string_constants,
)

from grpo_course import gpu
from grpo_course.hardware import PROFILES
from grpo_course.lora import lora_settings
from grpo_course.paths import REPO_ROOT

pytestmark = [pytest.mark.network, pytest.mark.xdist_group("pinned-wheels")]

GPU_PROFILES = [name for name, p in PROFILES.items() if p.device == "cuda"]
VLLM_PROFILES = [name for name in GPU_PROFILES if PROFILES[name].uses_vllm]


@pytest.fixture(scope="module")
def src():
    return pinned_source()


def _missing(keys, accepted) -> list[str]:
    return sorted(set(keys) - set(accepted))


# --------------------------------------------------------------------------- the pins read here


def test_reads_exactly_the_pinned_releases(src):
    from pinned_source import pinned_versions

    pins = pinned_versions("l4")
    for package in src.PACKAGES:
        assert src.version(package) == pins[package], package


# --------------------------------------------------------------------------- model loading


@pytest.mark.parametrize("profile", GPU_PROFILES)
def test_from_pretrained_keywords(src, profile):
    """FastLanguageModel.from_pretrained takes each keyword by name, and hands it to the Llama loader."""
    kwargs = gpu.from_pretrained_kwargs(PROFILES[profile], lora_settings(profile))
    loader = src.find("unsloth.models.loader", "FastLanguageModel.from_pretrained")
    accepted = params(loader)
    assert not _missing(kwargs, accepted.names), f"not parameters of FastLanguageModel.from_pretrained: {_missing(kwargs, accepted.names)}"
    unread = [k for k in kwargs if not reads_name(loader, k)]
    assert not unread, f"accepted but never read by FastLanguageModel.from_pretrained: {unread}"

    # Llama checkpoints are dispatched to FastLlamaModel.from_pretrained; every keyword must reach it.
    assert any(ast.unparse(v) == "FastLlamaModel" for v in _assignments(loader, "dispatch_model"))
    (dispatch,) = calls_to(loader, "dispatch_model.from_pretrained")
    forwarded = {k.arg: ast.unparse(k.value) for k in dispatch.keywords if k.arg}
    llama = src.find("unsloth.models.llama", "FastLlamaModel.from_pretrained")
    for key in kwargs:
        assert key in forwarded, f"{key} is not forwarded to dispatch_model.from_pretrained"
        assert key in params(llama).names and reads_name(llama, key), f"FastLlamaModel.from_pretrained ignores {key}"


def _assignments(func, name) -> list[ast.expr]:
    return [n.value for n in ast.walk(func) if isinstance(n, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == name for t in n.targets)]


def test_fp8_on_l4_resolves_to_the_prequantized_block_checkpoint(src):
    """load_in_fp8=True maps the L4 model to '<model>-FP8-Block' (on-the-fly FP8 would need an H100)."""
    tree = src.tree("unsloth.models.mapper")
    table = next(n.value for n in tree.body if isinstance(n, ast.Assign)
                 and any(isinstance(t, ast.Name) and t.id == "__INT_TO_FLOAT_MAPPER" for t in n.targets))
    mapping = ast.literal_eval(table)
    model = PROFILES["l4"].model_id
    hits = [v["8"] for v in mapping.values() if isinstance(v, dict) and "8" in v
            and model.lower() in (x.lower() for x in v["16"])]
    assert hits, f"{model} has no FP8 entry in the pinned Unsloth's mapper"
    official, block, row = hits[0]
    assert block == f"{model}-FP8-Block"
    # ...and the name lookup takes the block table unless UNSLOTH_HAS_FBGEMM=1 (we never set it).
    lookup = ast.unparse(src.find("unsloth.models.loader_utils", "__get_model_name"))
    assert "FLOAT_TO_FP8_BLOCK_MAPPER[lower_model_name]" in lookup and "UNSLOTH_HAS_FBGEMM" in lookup


def test_fp8_refusal_we_quote_and_its_threshold(src):
    """gpu.check_device_fits quotes Unsloth's refusal of FP8 below compute capability 8.9 (the T4 is 7.5),
    and hardware's supports_fp8 uses the same threshold; notebook 04 states both as GPU-only facts."""
    from grpo_course.hardware import DeviceInfo

    code = ast.unparse(src.find("unsloth.models._utils", "verify_fp8_support_if_applicable"))
    assert "major_version * 10 + minor_version < 89" in code
    quoted = "FP8 quantization is only supported on L4 and higher"
    assert quoted in code
    with pytest.raises(gpu.GPUUnavailableError, match=quoted):
        gpu.check_device_fits(PROFILES["l4"], DeviceInfo("Tesla T4", (7, 5), 15.0))
    assert DeviceInfo("NVIDIA L4", (8, 9), 22.0).supports_fp8
    assert not DeviceInfo("Tesla T4", (7, 5), 15.0).supports_fp8
    assert not DeviceInfo("NVIDIA A100", (8, 0), 40.0).supports_fp8


@pytest.mark.parametrize("profile", GPU_PROFILES)
def test_get_peft_model_keywords(src, profile):
    """FastLanguageModel.get_peft_model(model, **kwargs) forwards to FastLlamaModel.get_peft_model."""
    kwargs = gpu.peft_kwargs(lora_settings(profile))
    wrapper = src.find("unsloth.models.loader", "FastLanguageModel.get_peft_model")
    assert params(wrapper).var_keyword, "the wrapper no longer takes **kwargs: check it directly"
    assert any(ast.unparse(c.func) == "FastLlamaModel.get_peft_model" for c in forwarding_calls(wrapper)), \
        "FastLanguageModel.get_peft_model no longer forwards **kwargs to FastLlamaModel.get_peft_model"
    target = src.find("unsloth.models.llama", "FastLlamaModel.get_peft_model")
    assert not _missing(kwargs, params(target).names), _missing(kwargs, params(target).names)
    assert all(reads_name(target, k) for k in kwargs)


def test_unsloth_reads_standby_settings_where_we_set_them(src):
    """UNSLOTH_VLLM_STANDBY is read while unsloth_zoo is imported (so import_unsloth sets it first);
    the utilisation override is read when vLLM is loaded."""
    zoo_init = src.tree("unsloth_zoo")
    module_level = [n for n in zoo_init.body if not isinstance(n, (ast.FunctionDef, ast.ClassDef))]
    assert any(gpu.STANDBY_ENV in string_constants(n) for n in module_level)
    load_vllm = src.find("unsloth_zoo.vllm_utils", "load_vllm")
    assert gpu.STANDBY_UTIL_OVERRIDE_ENV in string_constants(load_vllm)
    assert "gpu_memory_utilization" in params(load_vllm).names


def test_l4_vllm_share_is_within_unsloths_standby_tier(src):
    """With the override on, our number is used as is: keep it at or below what Unsloth would pick
    for a 22 GB L4 (read from the pinned tiers) so standby's sleep/wake has its headroom."""
    code = ast.unparse(src.find("unsloth_zoo.vllm_utils", "load_vllm"))
    assert re.search(r"ten_percent >= 2\.0:\s*standby_target_gpu_util = 0\.825", code)  # 22 GB: 2.2 >= 2.0
    assert "standby_target_gpu_util *= 0.95" in code
    assert PROFILES["l4"].gpu_memory_utilization <= 0.825 * 0.95


# --------------------------------------------------------------------------- generation


def test_sampling_params_fields(src):
    fields = dataclass_fields(src, "vllm.sampling_params", "SamplingParams")
    for temperature in (0.0, 0.7):
        kwargs = gpu.sampling_params_kwargs(64, temperature=temperature, seed=1)
        assert not _missing(kwargs, fields), _missing(kwargs, fields)
    # vLLM 0.19: top_k 0 (or -1) means every token; anything below -1 raises.
    doc = src.text("vllm.sampling_params")
    assert re.search(r"top_k: int = 0\s+\"\"\"Controls the number of top tokens to consider. Set to 0 \(or -1\)", doc)


def test_fast_generate_is_vllms_llm_generate(src):
    """model.fast_generate is the vLLM engine's LLM.generate; our keywords and token-id prompts fit it."""
    llama = src.tree("unsloth.models.llama")
    assert "model.vllm_engine.generate" in [ast.unparse(v) for v in attribute_bindings(llama, "fast_generate")]
    peft_patch = src.find("unsloth.models._utils", "patch_peft_fast_inference")
    assert "model.model.fast_generate" in [ast.unparse(v) for v in attribute_bindings(peft_patch, "fast_generate")]
    load_vllm = src.find("unsloth_zoo.vllm_utils", "load_vllm")
    assert calls_to(load_vllm, "LLM"), "load_vllm no longer builds a vllm.LLM"
    generate = src.find("vllm.entrypoints.llm", "LLM.generate")
    kwargs = gpu.fast_generate_kwargs(object(), None)
    assert not _missing(kwargs, params(generate).names)
    assert params(generate).positional[:2] == ("self", "prompts")
    tokens_prompt = dataclass_fields(src, "vllm.inputs.llm", "TokensPrompt")
    assert "prompt_token_ids" in tokens_prompt
    # we read outputs[0].text, .token_ids and .finish_reason of each RequestOutput (gpu._vllm_detail)
    completion = dataclass_fields(src, "vllm.outputs", "CompletionOutput")
    assert {"text", "token_ids", "finish_reason"} <= set(completion)
    reasons = next(n.value for n in src.tree("vllm.v1.engine").body if isinstance(n, ast.Assign)
                   and ast.unparse(n.targets[0]) == "FINISH_REASON_STRINGS")
    assert "length" in ast.literal_eval(reasons)  # max_tokens used up: what gpu.py counts as cut
    assert reads_name(src.find("vllm.outputs", "RequestOutput.__init__"), "outputs")


def test_load_lora_and_save_lora(src):
    """model.load_lora / model.save_lora are unsloth_zoo's functions bound to the model."""
    binder = src.find("unsloth.models._utils", "patch_peft_fast_inference")
    bound = [ast.unparse(v) for v in attribute_bindings(binder, "load_lora")]
    assert "functools.partial(load_lora, model)" in bound
    assert src.resolve_import("unsloth.models._utils", "load_lora") == ("unsloth_zoo.vllm_utils", "load_lora") or \
        any("from unsloth_zoo.vllm_utils import load_lora" in ast.unparse(n) for n in ast.walk(binder)
            if isinstance(n, ast.ImportFrom))
    load_lora = src.find("unsloth_zoo.vllm_utils", "load_lora")
    p = params(load_lora)
    assert p.positional[:2] == ("model", "save_directory")  # partial(model) + our positional folder
    assert not _missing(gpu.load_lora_kwargs(), p.names)
    # save_lora(folder): the zoo helper with an engine, else save_lora_adapter; both take a folder first.
    saves = [ast.unparse(v) for v in attribute_bindings(binder, "save_lora")]
    assert "functools.partial(save_lora, model)" in saves
    assert params(src.find("unsloth_zoo.vllm_utils", "save_lora")).positional[:2] == ("model", "save_directory")
    assert params(src.find("unsloth.models._utils", "save_lora_adapter")).positional[:2] == ("model", "save_directory")


def test_hf_generate_keywords_reach_generation_config(src):
    """T4 (grpo_course.generation's one loop): model.generate(**kwargs) -> Unsloth's fast generate -> transformers' generate(**kwargs) ->
    GenerationConfig.update(**kwargs); each keyword must be a GenerationConfig setting."""
    fast = src.find("unsloth.models.llama", "unsloth_fast_generate")
    assert params(fast).var_keyword == "kwargs" and forwarding_calls(fast), "Unsloth's generate no longer forwards"
    generate = src.find("transformers.generation.utils", "GenerationMixin.generate")
    assert params(generate).var_keyword == "kwargs"
    assert any(ast.unparse(c.func) == "self._prepare_generation_config" for c in forwarding_calls(generate))
    prepare = src.find("transformers.generation.utils", "GenerationMixin._prepare_generation_config")
    assert any(ast.unparse(c.func) == "generation_config.update" for c in forwarding_calls(prepare))
    config_keys = kwargs_keys_read(src.find("transformers.generation.configuration_utils", "GenerationConfig.__init__"))
    from grpo_course.generation import Decoding, generate_kwargs

    for temperature, n in ((0.0, 1), (0.8, 4)):
        kwargs = generate_kwargs(Decoding(64, temperature=temperature, n=n), 0, {1, 2})
        assert not _missing(kwargs, config_keys), _missing(kwargs, config_keys)


# --------------------------------------------------------------------------- saving


@pytest.mark.parametrize(("attribute", "function", "kwargs"), [
    ("save_pretrained_merged", "unsloth_generic_save_pretrained_merged", gpu.merged_save_kwargs()),
    ("save_pretrained_gguf", "unsloth_save_pretrained_gguf", gpu.gguf_save_kwargs("q8_0")),
])
def test_savers(src, attribute, function, kwargs):
    """Unsloth binds these methods onto the model in patch_saving_functions (text models)."""
    patcher = src.find("unsloth.save", "patch_saving_functions")
    bound = [ast.unparse(v) for v in attribute_bindings(patcher, attribute)]
    assert any(b.startswith(f"_bind_saving_method({function}, model") for b in bound), bound
    func = src.find("unsloth.save", function)
    p = params(func)
    assert p.positional[:3] == ("self", "save_directory", "tokenizer")  # we pass (folder, tokenizer, **kw)
    assert not _missing(kwargs, p.names)
    assert all(reads_name(func, k) for k in kwargs)


def test_gguf_quantization_names_exist(src):
    text = src.text("unsloth.save")
    for method in gpu.GGUF_QUANTIZATIONS:
        assert f'"{method}"' in text, method


# --------------------------------------------------------------------------- GRPOConfig / SFTConfig


def _unsloth_config_extras(src, trl_fields: set[str], trainer_file: str) -> set[str]:
    """Keywords Unsloth's generated Unsloth<Name>Config adds to TRL's: read from rl.py's template."""
    rl = src.tree("unsloth.models.rl")
    template = next(s for s in string_constants(rl) if "class Unsloth{RLConfig_name}({RLConfig_name})" in s)
    block = template.split("def __init__({RLConfig_arguments},", 1)[1].split("**kwargs", 1)[0]
    extras = set(re.findall(r"^\s*(\w+)\s*=", block, flags=re.M))
    if "max_length" in trl_fields and "max_seq_length" not in trl_fields:
        extras.add("max_seq_length")
    if trainer_file == "sft_trainer" and "context_parallel_size" not in trl_fields:
        extras |= {"context_parallel_size", "context_parallel_backend", "context_parallel_rotate_method"}
    return extras


def _grpo_fields(src) -> set[str]:
    return set(dataclass_fields(src, "trl.trainer.grpo_config", "GRPOConfig"))


@pytest.mark.parametrize("profile", GPU_PROFILES)
def test_grpo_config_fields_on_the_gpu_path(src, profile, tmp_path):
    """Every GRPOConfig keyword the GPU pipeline passes (train.config with gpu.grpo_config_overrides)
    is a field of TRL 1.14.0's GRPOConfig (with TrainingArguments) or of Unsloth's patched config."""
    from grpo_course.train.config import grpo_kwargs, grpo_settings

    trl_fields = _grpo_fields(src)
    assert {"learning_rate", "bf16", "optim", "num_generations", "vllm_gpu_memory_utilization"} <= trl_fields
    accepted = trl_fields | _unsloth_config_extras(src, trl_fields, "grpo_trainer")
    kwargs = grpo_kwargs(grpo_settings(PROFILES[profile], tmp_path))
    assert set(gpu.grpo_config_overrides(PROFILES[profile])) <= set(kwargs)
    assert not _missing(kwargs, accepted), f"unknown to trl/unsloth GRPOConfig: {_missing(kwargs, accepted)}"


@pytest.mark.parametrize("profile", GPU_PROFILES)
def test_sft_config_fields_on_the_gpu_path(src, profile, tmp_path):
    from grpo_course.train.sft import sft_settings

    trl_fields = set(dataclass_fields(src, "trl.trainer.sft_config", "SFTConfig"))
    accepted = trl_fields | _unsloth_config_extras(src, trl_fields, "sft_trainer")
    kwargs = sft_settings(PROFILES[profile], str(tmp_path), steps=10)
    assert not _missing(kwargs, accepted), f"unknown to trl/unsloth SFTConfig: {_missing(kwargs, accepted)}"


@pytest.mark.parametrize(("module", "cls", "pattern"), [
    ("trl.trainer.grpo_trainer", "GRPOTrainer", "GRPOTrainer"),
    ("trl.trainer.sft_trainer", "SFTTrainer", "SFTTrainer"),
])
def test_trainer_keywords_in_the_pipeline(src, module, cls, pattern):
    """The keywords src/grpo_course/train passes to GRPOTrainer / SFTTrainer (Unsloth's trainers mirror
    TRL's __init__ arguments)."""
    accepted = params(src.find(module, f"{cls}.__init__")).names
    seen = 0
    for path in sorted((REPO_ROOT / "src" / "grpo_course" / "train").glob("*.py")):
        for call in (n for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Call)):
            if ast.unparse(call.func) == pattern:
                seen += 1
                assert not _missing(call_keywords(call), accepted), (path.name, _missing(call_keywords(call), accepted))
    assert seen, f"no {pattern}(...) call found in grpo_course.train"


def test_unsloth_grpo_defaults_match_the_pinned_source(src):
    """gpu.UNSLOTH_GRPO_DEFAULTS is a copy of the two `replacements` tables in the pinned rl.py."""
    func = next(n for n in ast.walk(src.tree("unsloth.models.rl")) if isinstance(n, ast.FunctionDef)
                and any(isinstance(a, ast.Assign) and ast.unparse(a.targets[0]) == "replacements"
                        and "vllm_importance_sampling_correction" in ast.unparse(a.value) for a in ast.walk(n)))
    tables = [ast.literal_eval(a.value) for a in ast.walk(func) if isinstance(a, ast.Assign)
              and ast.unparse(a.targets[0]) == "replacements" and isinstance(a.value, ast.Dict)]
    merged: dict = {}
    for table in tables:
        if "loss_type" in table and table["loss_type"] == "nll":  # the SFT-only table
            continue
        merged.update(table)
    # transformers >= 5 (our pin) gets warmup_steps = 0.1, set outside the literal
    assert "replacements[\"warmup_steps\"] = 0.1" in ast.unparse(func).replace("'", '"')
    merged["warmup_steps"] = 0.1
    assert merged == gpu.UNSLOTH_GRPO_DEFAULTS


def test_trl_defaults_we_compare_against(src):
    fields = dataclass_fields(src, "trl.trainer.grpo_config", "GRPOConfig")
    for key, value in gpu.TRL_DEFAULTS_UNSLOTH_CHANGES.items():
        node = fields[key]
        if key == "optim":  # transformers: adamw_torch_fused when torch >= 2.8 (Colab's torch is 2.10)
            body = ast.unparse(src.find("transformers.training_args", "TrainingArguments"))
            assert "default_optim = 'adamw_torch_fused'" in body and ast.unparse(node) == "default_optim"
            continue
        assert ast.literal_eval(node) == value, key
    assert ast.literal_eval(fields["epsilon"]) == gpu.TRL_EPSILON_DEFAULT and ast.literal_eval(fields["epsilon_high"]) is None


def test_unsloth_rewrites_we_guard_against_are_still_there(src):
    """The silent changes gpu.unsloth_silent_changes predicts, as the pinned rl.py writes them."""
    text = "\n".join(string_constants(src.tree("unsloth.models.rl"))
                     + string_constants(src.tree("unsloth.models.rl_replacements")))
    assert "epsilon_high = 0.28" in text and "mask_truncated_completions = True" in text
    assert "(ga * world_size * per_device_train_batch_size) % num_generations != 0" in text
    assert "per_device_train_batch_size = num_generations" in text
    # the stricter per-device rule only fires when TRL's trainer source has this sentence (1.14 does not)
    assert "divisible by the number of generations" not in src.text("trl.trainer.grpo_trainer")
    # Unsloth's trainer switches TRL's vLLM importance-sampling correction off
    assert "if False and self.use_vllm and self.vllm_importance_sampling_correction:" in text


# --------------------------------------------------------------------------- drift guard for gpu.py

# Attribute calls into Unsloth / vLLM objects, and the builder that must supply their keywords.
GPU_CALLS = {
    "from_pretrained": "from_pretrained_kwargs",
    "get_peft_model": "peft_kwargs",
    "SamplingParams": "sampling_params_kwargs",
    "fast_generate": "fast_generate_kwargs",
    "load_lora": "load_lora_kwargs",
    "save_pretrained_merged": "merged_save_kwargs",
    "save_pretrained_gguf": "gguf_save_kwargs",
    "save_lora": None,  # positional folder only
    "save_pretrained": None,
}


def test_every_gpu_call_in_gpu_py_uses_a_checked_builder():
    """gpu.py passes keywords to Unsloth/vLLM only through the builders tested above."""
    tree = ast.parse((REPO_ROOT / "src" / "grpo_course" / "gpu.py").read_text())
    seen = set()
    for call in (n for n in ast.walk(tree) if isinstance(n, ast.Call)):
        name = call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", None)
        if name not in GPU_CALLS:
            continue
        seen.add(name)
        literal = [k.arg for k in call.keywords if k.arg is not None]
        builders = [ast.unparse(k.value.func) for k in call.keywords
                    if k.arg is None and isinstance(k.value, ast.Call)]
        expected = GPU_CALLS[name]
        if expected is None:
            assert not call.keywords, f"{ast.unparse(call)}: keywords need a checked builder"
            continue
        assert builders == [expected], f"{ast.unparse(call)}: keywords must come from {expected}()"
        assert not literal, f"{ast.unparse(call)}: literal keywords {literal}"
    assert seen == set(GPU_CALLS), f"gpu.py no longer makes {set(GPU_CALLS) - seen}: update GPU_CALLS"


# --------------------------------------------------------------------------- calls outside gpu.py

# Calls into peft / transformers objects that grpo_course.train and grpo_course.evaluate make on the GPU
# path too (on an Unsloth model), with the keywords each may pass; checked against the pins below.
OUTSIDE_GPU_PY = {
    "push_to_hub": {"token", "private"},  # train.pipeline._push: model and tokenizer, repo id positional
    "load_peft_weights": set(),  # evaluate.checkpoints.load_adapter_weights (eval on GPU, checkpoint choice)
    "set_peft_model_state_dict": {"adapter_name"},
    "disable_adapter": set(),  # generation.py: "before" = the adapter switched off (T4 generates through transformers)
}


def _calls_in_train_and_evaluate():
    found: dict[str, list[ast.Call]] = {}
    pkg = REPO_ROOT / "src" / "grpo_course"
    paths = [*sorted((pkg / "train").glob("*.py")), *sorted((pkg / "evaluate").glob("*.py")),
             pkg / "generation.py", pkg / "compare.py"]  # the one generation loop and the before/after
    for path in paths:
        for call in (n for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Call)):
            name = call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", None)
            if name in OUTSIDE_GPU_PY:
                found.setdefault(name, []).append(call)
    return found


def test_calls_outside_gpu_py_pass_only_checked_keywords():
    found = _calls_in_train_and_evaluate()
    assert set(found) == set(OUTSIDE_GPU_PY), f"no longer called: {set(OUTSIDE_GPU_PY) - set(found)}"
    for name, calls in found.items():
        for call in calls:
            assert all(k.arg is not None for k in call.keywords), f"{ast.unparse(call)}: **kwargs are not checked"
            assert call_keywords(call) <= OUTSIDE_GPU_PY[name], f"{ast.unparse(call)}: update OUTSIDE_GPU_PY"
    assert all(len(c.args) == 1 for c in found["push_to_hub"])  # the repository id


def test_push_to_hub_through_unsloths_wrapper(src):
    """Unsloth replaces model.push_to_hub (and the tokenizer's) with a wrapper generated from the wrapped
    method's signature that reads repo_id, token and private by name; the wrapped method is transformers'
    PushToHubMixin.push_to_hub (peft's PeftModel inherits it and does not override it)."""
    pushed = src.find("transformers.utils.hub", "PushToHubMixin.push_to_hub")
    p = params(pushed)
    assert p.positional[:2] == ("self", "repo_id")
    assert OUTSIDE_GPU_PY["push_to_hub"] <= p.names
    peft_model = src.find("peft.peft_model", "PeftModel")
    assert "PushToHubMixin" in [ast.unparse(b) for b in peft_model.bases]
    assert src.resolve_import("peft.peft_model", "PushToHubMixin")[1] == "PushToHubMixin"
    assert any("from transformers.utils import PushToHubMixin" in ast.unparse(n)
               for n in src.tree("peft.peft_model").body if isinstance(n, ast.ImportFrom))
    for cls in ("PeftModel", "PeftModelForCausalLM"):
        assert not any(isinstance(n, ast.FunctionDef) and n.name == "push_to_hub"
                       for n in src.find("peft.peft_model", cls).body), cls
    text = src.text("unsloth.save")  # the wrapper is an f-string template: read the source text
    template = text[text.index("def patch_saving_functions"):].split("exec(push_to_hub_text", 1)[0]
    assert "def unsloth_push_to_hub(self, {signature}:" in template
    for key in ("repo_id", "token", "private"):
        assert f'arguments["{key}"]' in template and key in p.names, key


def test_peft_adapter_swap_and_switch(src):
    """evaluate.checkpoints.load_adapter_weights: load_peft_weights(folder) then
    set_peft_model_state_dict(model, weights, adapter_name=...), reading .unexpected_keys of the result;
    disable_adapter() is a context manager on peft's PeftModel."""
    load = src.find("peft.utils.save_and_load", "load_peft_weights")
    assert params(load).positional[0] == "model_id"
    setter = src.find("peft.utils.save_and_load", "set_peft_model_state_dict")
    assert params(setter).positional[:3] == ("model", "peft_model_state_dict", "adapter_name")
    assert "load_state_dict(peft_model_state_dict, strict=False" in ast.unparse(setter)  # -> unexpected_keys
    exported = ast.unparse(src.tree("peft.utils"))
    assert "load_peft_weights" in exported and "set_peft_model_state_dict" in exported
    switch = src.find("peft.peft_model", "PeftModel.disable_adapter")
    assert "contextmanager" in [ast.unparse(d) for d in switch.decorator_list]
    assert params(switch).positional == ("self",)


def test_unsloth_save_lora_sends_the_lora_tensors_not_peft_scaling(src):
    """vLLM gets the adapter from the folder model.save_lora writes: the lora_A / lora_B tensors of
    model.state_dict() plus the config. So evaluate.interpolate must scale B itself (a change to peft's
    layer.scaling would not reach vLLM); tests/test_evaluate.py checks the saved adapter is the interpolated one."""
    code = ast.unparse(src.find("unsloth_zoo.vllm_utils", "save_lora"))
    assert "model.state_dict()" in code and ".lora_B." in code and "model.save_pretrained(" in code
    assert "scaling" not in code
