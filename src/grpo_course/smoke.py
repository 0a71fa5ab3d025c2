"""``grpo-course smoke``: this runtime's real training path, end to end, in about a minute.

Before hours of GPU training, run the profile's own code path on a tiny model and check what a Colab
run would otherwise discover after an hour. The run goes through :func:`grpo_course.train.train`, the
same pipeline as the lessons; only the sizes shrink:

1. a tiny Llama that needs no download: on ``cpu-tiny`` and ``t4`` the course's own tiny SFT model
   (``data/tiny/sft``); on FP8/vLLM profiles a random-weight Llama of the same vocabulary whose
   projections are multiples of 128 (FP8 block quantization works on 128 x 128 blocks);
2. 2 steps of SFT format priming, then 3 GRPO steps that stop after step 2 (a simulated dying
   session) and a second call that resumes and finishes;
3. the adapter saved (and on GPU profiles the merged 16-bit weights), then reloaded;
4. a before/after on a few held-out problems with the adapter off and on.

It checks: the trainer is Unsloth's patched class on GPU profiles (plain TRL on CPU); the mixed
precision is the profile's; no bf16 tensor appears on a profile without bf16 (the T4 has none); the
loss is finite; some step has a nonzero gradient norm; the resume continued at the right step; the
saved adapter reloads with the trained weights. The last line is machine-readable:
``smoke: ok profile=<name> seconds=<s>`` or ``smoke: FAILED profile=<name> <first failure>``.

On a T4 the tiny model runs through Unsloth's fp16 path, so kernels, precision and plumbing are
exercised; the model is far too small for the before/after to mean anything beyond "it ran".
"""

from __future__ import annotations

import math
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .hardware import Profile, current_profile, get_profile
from .paths import REPO_ROOT

SMOKE_STEPS = 3
INTERRUPT_AFTER = 2  # the simulated session dies after this step; the second call resumes
SFT_STEPS = 2
TRAIN_ROWS = 64
HELDOUT_ROWS = 8
# Small enough to run in seconds, large enough that every group has G completions and the tiny model's
# prompts (under 96 tokens) plus a short answer fit its 160 positions.
SMOKE_SIZES = {"num_generations": 4, "per_device_train_batch_size": 8, "gradient_accumulation_steps": 1,
               "max_prompt_length": 96, "max_completion_length": 40}
TINY_SFT_DIR = REPO_ROOT / "data" / "tiny" / "sft"


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class SmokeReport:
    profile: str
    checks: list[Check] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None  # an exception that stopped the run, in plain words

    @property
    def ok(self) -> bool:
        return self.error is None and all(c.ok for c in self.checks)

    def first_failure(self) -> str | None:
        if self.error is not None:
            return self.error
        return next((f"{c.name}: {c.detail}" for c in self.checks if not c.ok), None)

    def table(self) -> str:
        return "\n".join(f"  [{'ok' if c.ok else 'FAIL'}] {c.name}: {c.detail}" for c in self.checks)

    def last_line(self) -> str:
        if self.ok:
            return f"smoke: ok profile={self.profile} seconds={self.seconds:.0f}"
        return f"smoke: FAILED profile={self.profile} {' '.join(self.first_failure().split())}"


# --------------------------------------------------------------------------- the model and the data


def smoke_profile(profile: Profile, model_dir: Path | None) -> Profile:
    """The profile with its sizes shrunk to the smoke's and (GPU) its model replaced by the tiny one."""
    sizes = {k: v for k, v in SMOKE_SIZES.items() if k != "max_prompt_length"}
    changes = dict(max_steps=SMOKE_STEPS, max_prompt_length=SMOKE_SIZES["max_prompt_length"], **sizes)
    if model_dir is not None:
        changes["model_id"] = str(model_dir)
    return profile.with_overrides(**changes)


def needs_block_dims(profile: Profile) -> bool:
    return profile.load_in_fp8


def write_smoke_model(profile: Profile, folder: Path) -> Path | None:
    """A local model for the profile (``None`` on CPU, which loads the tiny model itself).

    t4: a copy of the tiny SFT model (Unsloth loads it in fp16). FP8 profiles: random weights with
    128-multiple projections and the tiny tokenizer, saved by transformers. Call after
    :func:`grpo_course.train.pipeline.prepare_runtime` on GPU profiles (transformers must come after Unsloth).
    """
    if profile.device == "cpu":
        return None
    target = folder / "smoke-model"
    if not needs_block_dims(profile):
        shutil.copytree(TINY_SFT_DIR, target)
        return target
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(TINY_SFT_DIR)
    config = AutoConfig.from_pretrained(TINY_SFT_DIR)
    config.hidden_size, config.intermediate_size = 256, 512
    config.num_attention_heads, config.num_key_value_heads, config.head_dim = 4, 2, 64  # k/v: 2 x 64 = 128
    config.vocab_size = 128 * math.ceil(len(tokenizer) / 128)
    config.tie_word_embeddings = False
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config)
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)
    return target


def smoke_data():
    """A few dozen of the course's generated GSM8K-style problems (no hub, any profile)."""
    from .tasks import TaskData
    from .tiny.problems import load_split

    def rows(split, n):
        return [{"question": r["question"], "answer": r["answer"]} for r in load_split(split)[:n]]

    return TaskData(rows("train", TRAIN_ROWS), rows("test", HELDOUT_ROWS),
                    "data/tiny/problems (a few of the course's generated problems)")


# --------------------------------------------------------------------------- watching precision


class DtypeWatch:
    """Records the first module output, parameter, gradient or optimizer state in a forbidden dtype.

    Forward hooks on every module see what the model computes during generation and the GRPO loss's
    forward passes; :meth:`scan` looks at parameters, gradients and the optimizer after training.
    """

    def __init__(self, forbidden):
        self.forbidden = forbidden
        self.first: str | None = None
        self.outputs_seen = 0
        self._handles = []

    def _note(self, where: str) -> None:
        if self.first is None:
            self.first = where

    def attach(self, model) -> None:
        import torch

        def hook(module, _inputs, output, name=None):
            for t in (output if isinstance(output, (tuple, list)) else (output,)):
                if isinstance(t, torch.Tensor):
                    self.outputs_seen += 1
                    if t.dtype == self.forbidden:
                        self._note(f"output of {name} ({type(module).__name__})")

        for name, module in model.named_modules():
            self._handles.append(module.register_forward_hook(lambda m, i, o, n=name or "model": hook(m, i, o, n)))

    def detach(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def scan(self, model, optimizer=None) -> None:
        for name, p in model.named_parameters():
            if p.dtype == self.forbidden:
                self._note(f"parameter {name}")
            if p.grad is not None and p.grad.dtype == self.forbidden:
                self._note(f"gradient of {name}")
        for name, b in model.named_buffers():
            if b.dtype == self.forbidden:
                self._note(f"buffer {name}")
        if optimizer is not None:
            for state in optimizer.state.values():
                for key, value in state.items():
                    if getattr(value, "dtype", None) == self.forbidden:
                        self._note(f"optimizer state {key}")


def _watch_callback(watch: DtypeWatch):
    from transformers import TrainerCallback

    class _Attach(TrainerCallback):
        def on_train_begin(self, args, state, control, model=None, **kwargs):
            if model is not None:
                watch.attach(model)

        def on_train_end(self, args, state, control, model=None, optimizer=None, **kwargs):
            if model is not None:
                watch.scan(model, optimizer)
            watch.detach()

    return _Attach()


# --------------------------------------------------------------------------- the checks


def expected_mixed_precision(profile: Profile) -> str:
    if profile.device == "cpu":
        return "no"
    return "bf16" if profile.bf16 else "fp16" if profile.fp16 else "no"


def _trainer_check(profile: Profile, trainer) -> Check:
    names = [c.__name__ for c in type(trainer).__mro__]
    patched = any(n.startswith("Unsloth") for n in names)
    if profile.device == "cpu":
        return Check("trainer", not patched, f"plain TRL {type(trainer).__name__} on CPU"
                     + (" (but an Unsloth class appeared)" if patched else ""))
    return Check("trainer", patched, f"{type(trainer).__name__}"
                 + ("" if patched else ": not Unsloth's patched trainer (was trl imported before unsloth?)"))


def _precision_check(profile: Profile, trainer) -> Check:
    want = expected_mixed_precision(profile)
    got = str(getattr(trainer.accelerator, "mixed_precision", "no"))
    args = trainer.args
    flags_ok = bool(args.fp16) == (want == "fp16") and bool(args.bf16) == (want == "bf16")
    return Check("mixed precision", got == want and flags_ok,
                 f"accelerate {got}, fp16={args.fp16}, bf16={args.bf16} (profile {profile.name} wants {want})")


def _no_bf16_check(profile: Profile, watch: DtypeWatch | None) -> Check | None:
    if watch is None:
        return None
    if watch.outputs_seen == 0:
        return Check("no bf16", False, "the watch saw no module output at all (hooks not attached)")
    return Check("no bf16", watch.first is None,
                 f"none in {watch.outputs_seen} module outputs, parameters, gradients or optimizer state"
                 if watch.first is None else f"a bf16 tensor on a profile without bf16: {watch.first}")


def _loss_checks(history: list[dict]) -> list[Check]:
    steps = [r for r in history if "step" in r]
    losses = [r.get("loss") for r in steps]
    finite = bool(losses) and all(isinstance(x, (int, float)) and math.isfinite(x) for x in losses)
    grads = [r.get("grad_norm") for r in steps if isinstance(r.get("grad_norm"), (int, float))]
    shown = f"loss per step {[round(x, 4) if isinstance(x, float) else x for x in losses]}"
    if finite and all(abs(x) < 1e-3 for x in losses):  # not a failure: say why before a reader thinks so
        shown += (" (about 0 is expected: each batch is used once, so the ratio is 1 and each group's advantages "
                  "average to 0; the gradient below is what moves the weights)")
    return [
        Check("finite loss", finite, shown),
        Check("gradient", any(g > 0 for g in grads), f"grad norm per step {[round(g, 4) for g in grads]}"),
    ]


def _resume_check(first, second, saved_step: int | None) -> Check:
    """The second call must resume from the newest checkpoint the dying session left (the step it died in
    had logged but not saved, so it is redone) and finish the run."""
    ok = (first.interrupted and first.global_step == INTERRUPT_AFTER and saved_step is not None
          and second.resumed_from == saved_step and second.global_step == SMOKE_STEPS and not second.interrupted)
    return Check("resume", ok, f"stopped at step {first.global_step} (interrupted={first.interrupted}) with "
                 f"checkpoint-{saved_step} on disk, resumed from step {second.resumed_from}, finished at "
                 f"{second.global_step}/{SMOKE_STEPS}")


def _priming_check(first) -> Check:
    p = first.priming
    logged = p is not None and all(isinstance(x, float) and math.isfinite(x) for x in (p.first_loss, p.last_loss))
    return Check("SFT priming", p is not None and p.steps == SFT_STEPS and logged,
                 p.report() if p is not None else "the first call did not prime")


def _adapter_state(model) -> dict:
    from peft import get_peft_model_state_dict

    return {k: v.detach().float().cpu() for k, v in get_peft_model_state_dict(model).items()}


def _reload_check(profile: Profile, model, adapter_dir: Path, base_dir: Path) -> Check:
    """The saved adapter loads onto a fresh copy of the base model (on CPU, with peft) with the trained weights."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    trained = _adapter_state(model)
    base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    reloaded = _adapter_state(PeftModel.from_pretrained(base, adapter_dir))
    tol = 1e-6 if profile.device == "cpu" else 1e-2  # fp16 adapters on GPU are saved as they were trained
    same_keys = set(trained) == set(reloaded)
    worst = max((float((trained[k] - reloaded[k]).abs().max()) for k in trained if k in reloaded), default=math.inf)
    moved = any(float(v.abs().max()) > 0 for k, v in trained.items() if "lora_B" in k)
    ok = same_keys and worst <= tol and moved
    detail = (f"{len(reloaded)} LoRA tensors reloaded with peft from {adapter_dir.name}/, largest difference "
              f"{worst:.1e}" + ("" if same_keys else f"; keys differ ({len(trained)} trained)")
              + ("" if moved else "; every lora_B is still zero: the adapter never trained"))
    return Check("adapter reloads", ok, detail)


def _merged_check(folder: Path | None) -> Check | None:
    if folder is None:
        return None
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(folder)
    n = sum(p.numel() for p in model.parameters())
    return Check("merged save", n > 0, f"{folder.name}/ loads with transformers ({n:,} parameters)")


# --------------------------------------------------------------------------- the run


def run_smoke(profile: Profile | str | None = None, output_dir: str | Path | None = None,
              say: Callable[[str], None] = print) -> SmokeReport:
    """Run the smoke for ``profile`` (default: this runtime's); never raises for a failed check."""
    if profile is None:
        profile = current_profile()[0]
    elif isinstance(profile, str):
        profile = get_profile(profile)
    report = SmokeReport(profile.name)
    start = time.perf_counter()
    keep = output_dir is not None
    folder = Path(output_dir) if keep else Path(tempfile.mkdtemp(prefix="grpo-course-smoke-"))
    try:
        _run(profile, folder, report, say)
    except Exception as err:  # a crash is the smoke's finding: say it plainly, on the last line too
        from .gpu import GPUUnavailableError

        report.error = f"{type(err).__name__}: {err}".splitlines()[0][:300]
        if not isinstance(err, (GPUUnavailableError, ImportError)):  # those say all in their message
            import traceback

            say(f"the smoke stopped with {type(err).__name__}:")
            say(traceback.format_exc(limit=8))
    finally:
        report.seconds = time.perf_counter() - start
        if not keep:
            shutil.rmtree(folder, ignore_errors=True)
    return report


def _run(profile: Profile, folder: Path, report: SmokeReport, say) -> None:
    from .train.pipeline import prepare_runtime

    prepare_runtime(profile)  # GPU: Unsloth is imported here, before anything imports trl/transformers
    model_dir = write_smoke_model(profile, folder)
    prof = smoke_profile(profile, model_dir)
    say(f"smoke: profile {prof.name}, model {prof.model_id}, {SMOKE_STEPS} GRPO steps (stop after "
        f"{INTERRUPT_AFTER}, then resume), {SFT_STEPS} SFT priming steps, {HELDOUT_ROWS} held-out problems")
    import torch

    from .train.pipeline import train

    watch = DtypeWatch(torch.bfloat16) if prof.device != "cpu" and not prof.bf16 else None
    callbacks = [_watch_callback(watch)] if watch is not None else []
    common = dict(steps=SMOKE_STEPS, output_dir=folder / "run", sft_priming=True, sft_steps=SFT_STEPS,
                  eval_size=HELDOUT_ROWS, save_steps=1, live=False, data=smoke_data(), callbacks=callbacks,
                  overrides={k: v for k, v in SMOKE_SIZES.items() if k != "max_prompt_length"}
                  | {"logging_steps": 1}, verbose=True)
    first = train("gsm8k", prof, resume=False, stop_at_step=INTERRUPT_AFTER, compare=False, **common)
    del first.trainer, first.model  # the second call loads afresh, as a new Colab session would
    from .checkpoint import checkpoint_step, last_checkpoint

    newest = last_checkpoint(folder / "run")
    saved_step = checkpoint_step(newest) if newest is not None else None
    second = train("gsm8k", prof, resume=True, compare=True, save_merged=prof.device != "cpu", **common)

    checks = [_trainer_check(prof, second.trainer), _precision_check(prof, second.trainer)]
    bf16 = _no_bf16_check(prof, watch)
    checks += [bf16] if bf16 is not None else []
    checks += _loss_checks(second.history)
    checks.append(_priming_check(first))
    checks.append(_resume_check(first, second, saved_step))
    base_dir = model_dir if model_dir is not None else TINY_SFT_DIR
    adapter = second.saved.get("LoRA adapter")
    checks.append(_reload_check(prof, second.model, adapter, base_dir) if adapter is not None
                  else Check("adapter reloads", False, f"no adapter was saved (saved: {list(second.saved)})"))
    merged = _merged_check(second.saved.get("merged 16-bit weights"))
    if merged is not None:
        checks.append(merged)
    elif prof.device != "cpu":
        checks.append(Check("merged save", False, "the GPU profile saved no merged 16-bit weights"))
    if second.comparison is not None:
        c = second.comparison
        checks.append(Check("before/after", c.after.n == c.before.n > 0,
                            f"held-out accuracy {c.before.accuracy:.0%} -> {c.after.accuracy:.0%} on "
                            f"{c.after.n} problems (adapter off/on; 3 steps prove the path, not learning)"))
    else:
        checks.append(Check("before/after", False, "no before/after comparison was made"))
    report.checks = checks


def main(profile_name: str | None = None, output_dir: str | None = None) -> int:
    """The command: run, print the checks, end with the machine-readable line; exit status 0 or 1."""
    report = run_smoke(profile_name, output_dir)
    if report.checks:
        print(report.table())
    print(report.last_line())
    return 0 if report.ok else 1
