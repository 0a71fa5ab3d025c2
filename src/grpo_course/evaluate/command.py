"""``grpo-course eval``: evaluate a model (and its LoRA adapter) on held-out problems from a terminal.

With an adapter it prints before (adapter off) vs after (adapter on) on the same problems with the same
template: greedy accuracy and sampled pass@1 with paired 95% intervals, pass@n, McNemar's test, and the
reward-hacking audit; it saves the tidy tables (JSONL/CSV) and the run's context. ``--checkpoints RUN``
also evaluates every checkpoint of a training run and picks one by held-out pass@1.

On ``cpu-tiny`` the defaults evaluate the course's tiny model and, if ``grpo-course train`` has run,
its adapter (``runs/gsm8k-cpu-tiny/final/adapter``) on the tiny held-out problems.
This module is light: torch and transformers load when the command runs.
"""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", default=None, help="hardware profile (default: detected; GRPO_COURSE_PROFILE)")
    p.add_argument("--model", default=None, help="model folder or hub id (default: the profile's model)")
    p.add_argument("--adapter", default=None,
                   help="LoRA adapter folder; compares adapter off vs on (default on cpu-tiny: the adapter "
                        "`grpo-course train` saved, if any)")
    p.add_argument("--checkpoints", default=None, metavar="RUN_DIR",
                   help="also evaluate every checkpoint-<step> in RUN_DIR and pick by held-out pass@1")
    p.add_argument("--interpolate", type=float, action="append", default=[], metavar="W",
                   help="with --checkpoints: also evaluate the best adapter scaled by W (W x RL + (1-W) x start)")
    p.add_argument("--data", default=None,
                   help="tiny | gsm8k (hub) | a JSONL file with GSM8K's question/answer columns "
                        "(default: tiny on CPU, gsm8k on GPU)")
    p.add_argument("--split", default="test")
    p.add_argument("--limit", type=int, default=None, help="first N problems (default: 200 on CPU, all on GPU)")
    p.add_argument("--n", type=int, default=8, help="samples per problem for pass@k (0: greedy only)")
    p.add_argument("--temperature", type=float, default=1.0, help="sampling temperature for the n samples")
    p.add_argument("--no-greedy", action="store_true", help="skip the greedy completion")
    p.add_argument("--max-new-tokens", type=int, default=None, help="default: the profile's completion length")
    p.add_argument("--batch-size", type=int, default=None,
                   help="completions per generate call (default: 1024 on CPU, 64 on a T4, 512 with vLLM)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="folder for the tables (default: runs/eval/<time>)")
    p.add_argument("--examples", type=int, default=1, help="audit examples to print per flag")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def default_adapter(profile) -> Path | None:
    from ..train.checkpoint import run_dir

    path = run_dir("gsm8k", profile.name) / "final" / "adapter"
    return path if (path / "adapter_config.json").is_file() else None


def load_for_eval(profile, model_id: str | None, adapter: str | Path | None):
    """``(model, tokenizer)``: GPU profiles through ``grpo_course.gpu`` (Unsloth; the adapter's weights are
    swapped into its LoRA); CPU through transformers + peft."""
    if profile.device != "cpu":
        from .. import gpu
        from ..lora import lora_settings
        from ..train.pipeline import prepare_runtime

        prepare_runtime(profile)
        if model_id:
            profile = profile.with_overrides(model_id=model_id)
        model, tokenizer = gpu.load_model_and_tokenizer(profile, lora_settings(profile.name))
        if adapter is not None:
            from .checkpoints import load_adapter_weights

            load_adapter_weights(model, adapter)
        return model, tokenizer
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = model_id or profile.model_path()
    model = AutoModelForCausalLM.from_pretrained(path, dtype="float32")
    tokenizer = AutoTokenizer.from_pretrained(path)
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter))
    model.eval()
    return model, tokenizer


def run(args: argparse.Namespace) -> int:
    from ..hardware import current_profile, get_profile
    from ..paths import runs_dir
    from .audit import FLAGS, audit_examples, audit_table
    from .compare import before_after
    from .data import load_problems
    from .runner import evaluate_model

    profile, reason = (get_profile(args.profile), "--profile") if args.profile else current_profile()
    cpu = profile.device == "cpu"
    adapter = Path(args.adapter) if args.adapter else (default_adapter(profile) if cpu and not args.model else None)
    if adapter is not None and not (adapter / "adapter_config.json").is_file():
        print(f"error: {adapter} holds no LoRA adapter (adapter_config.json)")
        return 2
    source = args.data or ("tiny" if cpu else "gsm8k")
    limit = args.limit if args.limit is not None else (200 if cpu else None)
    problems, description = load_problems(source, args.split, limit)
    max_new = args.max_new_tokens or profile.max_completion_length
    out = Path(args.out) if args.out else runs_dir() / "eval" / datetime.now().strftime("%Y%m%d-%H%M%S")
    print(f"profile {profile.name} ({reason}); data: {description}, {len(problems)} problems")

    model, tokenizer = load_for_eval(profile, args.model, adapter)
    kwargs = dict(n_samples=args.n, temperature=args.temperature, greedy=not args.no_greedy,
                  max_new_tokens=max_new, batch_size=args.batch_size, seed=args.seed, profile=profile,
                  dataset=description, split=args.split, progress=not args.no_progress)
    saved = []
    if adapter is not None:
        comparison = before_after(model, tokenizer, problems, adapter_path=adapter, **kwargs)
        results = [comparison.before, comparison.after]
        for r in results:
            print(r.summary())
        print()
        print(comparison.summary())
        print()
        print("before/after difference (after - before, 95% paired interval):")
        print(comparison.headline())
    else:
        if cpu and not args.model:
            print("no adapter found (run `grpo-course train` first, or pass --adapter): evaluating the model alone")
        results = [evaluate_model(model, tokenizer, problems, name="model", **kwargs)]
        print(results[0].summary())
    print()
    print("reward-hacking audit (all completions):")
    print(audit_table({r.name: r.rows() for r in results}))
    if args.examples:
        for flag in FLAGS:
            text = audit_examples(results[-1].rows(), flag, limit=args.examples)
            if not text.endswith("none"):
                print(text)
    for r in results:
        saved.extend(r.save(out).values())

    if args.checkpoints:
        from .checkpoints import evaluate_checkpoints, list_checkpoints

        found = list_checkpoints(args.checkpoints)
        if not found:
            print(f"error: no checkpoints in {args.checkpoints}")
            return 2
        if not hasattr(model, "peft_config"):
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, str(found[-1][1]))
        selection = evaluate_checkpoints(model, tokenizer, args.checkpoints, problems,
                                         interpolate=args.interpolate, **kwargs)
        print()
        print(selection.table())
        plot = out / "checkpoints.png"
        selection.plot(plot)
        saved.append(plot)
        for s in [*selection.scores, *selection.interpolations]:
            saved.extend(s.result.save(out / "checkpoints").values())
    print()
    print(f"saved {len(saved)} files under {out}")
    return 0
