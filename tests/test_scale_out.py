"""Stage 06: scale-out. TRL's batch bookkeeping, launch commands, the shipped accelerate/DeepSpeed configs
(parsed by accelerate and by DeepSpeed's own config parser), the sizing estimates, the reward library under
several processes, and the proof: ``grpo-course train`` launched on 2 CPU processes over gloo with the
shipped DDP config."""

from __future__ import annotations

import ast
import copy
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from grpo_course import scale_out as so

PY = sys.executable
LAUNCH = [PY, "-m", "accelerate.commands.launch"]  # `accelerate launch`, without relying on PATH


# ---- where a process sits -----------------------------------------------------------------------------


def test_dist_info_reads_the_launchers_environment():
    plain = so.dist_info({})
    assert (plain.rank, plain.world_size, plain.local_world_size, plain.distributed) == (0, 1, 1, False)
    torchrun = so.dist_info({"RANK": "5", "LOCAL_RANK": "1", "WORLD_SIZE": "8", "LOCAL_WORLD_SIZE": "4",
                             "GROUP_RANK": "1"})
    assert (torchrun.rank, torchrun.local_rank, torchrun.node_rank, torchrun.num_nodes) == (5, 1, 1, 2)
    assert not torchrun.is_main and so.is_main_process({"RANK": "0", "WORLD_SIZE": "8"})
    mpi = so.dist_info({"OMPI_COMM_WORLD_SIZE": "4", "OMPI_COMM_WORLD_RANK": "2", "OMPI_COMM_WORLD_LOCAL_SIZE": "2"})
    assert (mpi.rank, mpi.world_size, mpi.local_world_size) == (2, 4, 2)


def test_cpu_share_divides_the_cores_among_local_processes():
    env = {"WORLD_SIZE": "4", "LOCAL_WORLD_SIZE": "2", "LOCAL_RANK": "0"}
    assert so.cores_per_process(env, cores=16) == 8
    assert so.cores_per_process({}, cores=16) == 16
    assert so.cores_per_process({"WORLD_SIZE": "8", "LOCAL_WORLD_SIZE": "8", "LOCAL_RANK": "0"}, cores=2) == 1
    assert 1 <= so.usable_cores() <= (os.cpu_count() or 1)


def test_judge_share_splits_concurrency_and_budget_over_all_ranks():
    share = so.judge_share(8, 5.0, env={"WORLD_SIZE": "4", "RANK": "1"})
    assert share.as_kwargs() == {"max_concurrency": 2, "budget_usd": 1.25}
    assert so.judge_share(8, None, env={}).as_kwargs() == {"max_concurrency": 8, "budget_usd": None}
    with pytest.raises(ValueError, match="at least 1"):
        so.judge_share(2, 1.0, env={"WORLD_SIZE": "4"})


def test_finish_distributed_is_a_no_op_without_a_process_group():
    assert so.finish_distributed() is False


# ---- TRL's batch bookkeeping --------------------------------------------------------------------------


@pytest.mark.parametrize("per_device,procs,ga,g,gen,prompts,split", [
    (64, 2, 1, 8, 128, 16, 0),  # the tiny recipe on the 2-process test: whole groups on each process
    (4, 2, 1, 8, 8, 1, 1),  # one group of 8 spread over two processes
    (3, 2, 1, 2, 6, 3, 1),  # TRL's own figure: prompt 1's two completions sit on two processes
    (8, 4, 2, 16, 64, 4, 0),
])
def test_plan_batch_follows_trls_rule(per_device, procs, ga, g, gen, prompts, split):
    plan = so.plan_batch(per_device, procs, ga, g)
    assert plan.generation_batch_size == gen == per_device * procs * ga
    assert plan.prompts_per_generation == prompts and plan.steps_per_generation == ga
    layout = plan.layout()
    assert [len(x) for x in layout] == [per_device * ga] * procs
    flat = [q for part in layout for q in part]
    assert all(flat.count(q) == g for q in range(prompts))  # every prompt: exactly G completions in total
    assert sum(len(o) > 1 for o in plan.processes_per_group()) == split
    assert "groups split across processes" in plan.describe()


def test_plan_batch_refuses_partial_groups_with_the_fix():
    with pytest.raises(ValueError, match="divisible by num_generations"):
        so.plan_batch(3, 1, 1, 4)  # the reference notes' pitfall: 3 completions cannot hold a group of 4
    assert so.plan_batch(2, 2, 1, 4).generation_batch_size == 4  # legal on 2 processes, illegal on one
    with pytest.raises(ValueError, match="global batch size"):
        so.plan_batch(4, 2, generation_batch_size=12)
    with pytest.raises(ValueError, match="cannot both"):
        so.plan_batch(4, 2, steps_per_generation=2, generation_batch_size=16)
    assert so.plan_batch(4, 2, 1, 8, steps_per_generation=3).generation_batch_size == 24


def test_plan_batch_equals_grpoconfig_on_one_process(tmp_path):
    from trl import GRPOConfig

    for b, ga, g, spg in [(8, 1, 4, None), (4, 2, 8, None), (6, 1, 3, 2), (16, 4, 16, None)]:
        kw = {"steps_per_generation": spg} if spg else {}
        cfg = GRPOConfig(output_dir=str(tmp_path), use_cpu=True, bf16=False, report_to="none",
                         per_device_train_batch_size=b, gradient_accumulation_steps=ga, num_generations=g, **kw)
        plan = so.plan_batch(b, cfg.world_size, ga, g, steps_per_generation=spg)
        assert (plan.generation_batch_size, plan.steps_per_generation) == (cfg.generation_batch_size,
                                                                           cfg.steps_per_generation)
    with pytest.raises(ValueError, match="divisible by num_generations"):
        GRPOConfig(output_dir=str(tmp_path), use_cpu=True, bf16=False, per_device_train_batch_size=3,
                   num_generations=4)


@pytest.mark.parametrize("per_device,procs,g,spg", [(3, 2, 2, 1), (4, 2, 8, 1), (64, 2, 8, 1), (2, 3, 3, 2)])
def test_layout_equals_trls_sampler_sharded_by_accelerate(per_device, procs, g, spg):
    """The real objects: TRL's RepeatSampler batched as GRPOTrainer's dataloader does, then sharded by
    accelerate's BatchSamplerShard for each process."""
    from accelerate.data_loader import BatchSamplerShard
    from torch.utils.data import BatchSampler
    from trl.trainer.utils import RepeatSampler

    plan = so.plan_batch(per_device, procs, 1, g, steps_per_generation=spg)
    def first_batch(process: int) -> list[int]:  # every process builds its own sampler with the same seed
        sampler = RepeatSampler(list(range(1000)), mini_repeat_count=g, batch_size=plan.generation_batch_size // g,
                                repeat_count=spg, shuffle=True, seed=0)
        batches = BatchSampler(sampler, batch_size=plan.completions_per_process, drop_last=False)
        return next(iter(BatchSamplerShard(batches, num_processes=procs, process_index=process)))

    first = [first_batch(p) for p in range(procs)]
    order = list(dict.fromkeys(i for part in first for i in part))  # prompt ids in order of appearance
    assert len(order) == plan.prompts_per_generation
    assert [[order.index(i) for i in part] for part in first] == plan.layout()


# ---- launch commands ----------------------------------------------------------------------------------


def test_launch_commands_for_one_node_and_several():
    one = so.launch_command(["--profile", "l4"], strategy="ddp", gpus_per_node=4)
    assert one.argv[:3] == ["accelerate", "launch", "--config_file"]
    assert Path(one.argv[3]) == so.config_path("ddp") and "--num_processes 4" in one.text
    assert one.text.endswith("-m grpo_course.cli train --profile l4") and "--machine_rank" not in one.text
    nodes = so.multi_node_commands(["--profile", "large"], nodes=2, gpus_per_node=8, main_ip="10.0.0.1",
                                   strategy="zero3")
    assert [c.node for c in nodes] == [0, 1]
    for rank, c in enumerate(nodes):
        assert f"--machine_rank {rank}" in c.text and "--num_processes 16" in c.text
        assert "--main_process_ip 10.0.0.1" in c.text and "$(python -m grpo_course.scale_out config zero3)" in c.text
    with pytest.raises(ValueError, match="main_ip"):
        so.launch_command(strategy="ddp", nodes=2, gpus_per_node=8)
    with pytest.raises(ValueError, match="strategy"):
        so.launch_command(strategy="fsdp")
    cpu = so.launch_command(["--profile", "cpu-tiny"], strategy="ddp-cpu", gpus_per_node=2)
    assert "--main_process_port 0" in cpu.text


def test_config_paths_resolve_and_the_cli_prints_them(capsys):
    for name in ("ddp-cpu", "ddp", "zero2", "zero3", "ds-zero2", "ds-zero3"):
        assert so.config_path(name).is_file()
    with pytest.raises(FileNotFoundError, match="shipped"):
        so.config_path("fsdp")
    assert so.main(["config", "zero2"]) == 0
    assert capsys.readouterr().out.strip() == str(so.config_path("zero2"))


def _trl_dataclass_fields(relpath: str, class_name: str) -> set[str]:
    import trl

    tree = ast.parse((Path(trl.__file__).parent / relpath).read_text())
    cls = next(n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == class_name)
    return {n.target.id for n in cls.body if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)}


def test_vllm_server_mode_matches_the_pinned_trl(tmp_path):
    serve = so.vllm_serve_command("meta-llama/Llama-3.1-8B-Instruct", gpus=[4, 5, 6, 7], tensor_parallel_size=2,
                                  port=8001)
    assert serve.env == {"CUDA_VISIBLE_DEVICES": "4,5,6,7"} and "--data_parallel_size 2" in serve.text
    fields = _trl_dataclass_fields("scripts/vllm_serve.py", "ScriptArguments")
    flags = {a[2:] for a in serve.argv if a.startswith("--")}
    assert set(so.VLLM_SERVE_FLAGS) <= fields and flags <= fields
    with pytest.raises(ValueError, match="tensor-parallel"):
        so.vllm_serve_command("m", gpus=[0, 1, 2], tensor_parallel_size=2)

    from trl import GRPOConfig

    known = {f.name for f in __import__("dataclasses").fields(GRPOConfig)}
    assert set(so.server_mode_overrides()) <= known and set(so.colocate_overrides()) <= known
    cfg = GRPOConfig(output_dir=str(tmp_path), use_cpu=True, bf16=False, per_device_train_batch_size=8,
                     num_generations=8, **so.server_mode_overrides("10.0.0.9", 8001))
    assert (cfg.vllm_mode, cfg.vllm_server_base_url) == ("server", "http://10.0.0.9:8001")


# ---- shipped configs: accelerate's loader and DeepSpeed's own parser ----------------------------------


def test_accelerate_loads_every_shipped_config():
    from accelerate.commands.config.config_args import load_config_from_file
    from accelerate.utils import DistributedType

    loaded = {name: load_config_from_file(str(so.config_path(name))) for name in so.ACCELERATE_CONFIGS}
    # MULTI_GPU + use_cpu is the accelerate 1.15 path that starts N CPU processes through torchrun
    assert loaded["ddp-cpu"].distributed_type == DistributedType.MULTI_GPU and loaded["ddp-cpu"].use_cpu
    assert loaded["ddp"].distributed_type == DistributedType.MULTI_GPU and not loaded["ddp"].use_cpu
    for stage in (2, 3):
        c = loaded[f"zero{stage}"]
        assert c.distributed_type == DistributedType.DEEPSPEED and c.deepspeed_config["zero_stage"] == stage


@pytest.mark.parametrize("stage", [2, 3])
def test_deepspeed_parser_validates_the_shipped_configs(stage):
    """DeepSpeed imports and parses on CPU (its accelerator falls back to 'cpu'); it cannot train here.
    DeepSpeed is pinned in requirements.txt, so a missing or broken install fails this test (no skip)."""
    import deepspeed  # noqa: F401
    raw = so.deepspeed_config_dict(f"zero{stage}")
    ds = so.validate_deepspeed_config(raw, per_device_train_batch_size=8, gradient_accumulation_steps=2,
                                      num_generations=4, hidden_size=2048)
    assert ds.zero_optimization_stage == stage and ds.zero_enabled
    assert (ds.train_micro_batch_size_per_gpu, ds.gradient_accumulation_steps, ds.train_batch_size) == (8, 2, 16)
    assert ds.gradient_clipping == 1.0 and ds.zero_config.reduce_bucket_size == 2048 * 2048
    # the accelerate YAML's inline DeepSpeed block builds a config that DeepSpeed parses to the same stage
    from_yaml = so.validate_deepspeed_config(so.deepspeed_config_dict(f"zero{stage}", source="accelerate"))
    assert from_yaml.zero_optimization_stage == stage
    assert from_yaml.zero_config.offload_optimizer.device == ds.zero_config.offload_optimizer.device
    # the parser is strict: a misspelt key is an error, so a typo cannot ship silently
    bad = copy.deepcopy(raw)
    bad["zero_optimization"]["overlap_comms"] = True
    with pytest.raises(Exception, match="overlap_comms"):
        so.validate_deepspeed_config(bad)


# ---- sizing (estimates) ------------------------------------------------------------------------------


def test_sizing_strategies_shard_what_they_claim():
    kw = {"num_gpus": 8, "gpu": "H100-80GB", "completions_per_gpu": 8, "completion_length": 1024}
    ddp, z2, z3, srv = (so.strategy_plan("llama-3.1-8b", s, **kw) for s in ("ddp", "zero2", "zero3", "ddp+server"))
    assert z3.peak_gib < z2.peak_gib <= ddp.peak_gib
    assert z3.terms["base weights"][0] == pytest.approx(ddp.terms["base weights"][0] / 8)
    assert not any(name.startswith("vLLM") for name in srv.terms) and srv.peak_gib < ddp.peak_gib
    one = so.strategy_plan("llama-3.1-8b", "zero3", **{**kw, "num_gpus": 1})
    assert one.terms["base weights"][0] == pytest.approx(ddp.terms["base weights"][0])
    # the server GPU needs the weights plus the whole generation batch's KV cache, split by tensor parallelism
    assert so.server_gpu_gib("llama-3.1-8b", 64, tensor_parallel_size=2) < so.server_gpu_gib("llama-3.1-8b", 64)


def test_sizing_table_is_labelled_and_consistent():
    rows = so.sizing_table(gpu="L4", num_gpus=4)
    assert len(rows) == 3 * 4 and all(r["estimate"] is True for r in rows)
    by = {(r["model"], r["strategy"]): r for r in rows}
    key = "completions/GPU @ C=1024"
    for model in ("Llama 3.2 1B", "Llama 3.2 3B", "Llama 3.1 8B"):
        d, z3 = by[(model, "ddp")][key] or 0, by[(model, "zero3")][key] or 0
        assert z3 >= d  # sharding never makes less fit
    assert (by[("Llama 3.2 1B", "ddp")][key] or 0) >= (by[("Llama 3.1 8B", "ddp")][key] or 0)
    assert by[("Llama 3.1 8B", "ddp")][key] is None  # 16 GB of bf16 weights plus vLLM's copy: not on a 22 GB L4
    text = so.format_table(rows)
    assert "Llama 3.1 8B" in text and "-" in text


# ---- the reward library under several processes --------------------------------------------------------

_SANDBOX_CHILD = """
import json, sys
from grpo_course.rewards.code import code_pass_fraction_reward
from grpo_course.rewards.sandbox import default_sandbox
program = "```python\\ndef add(a, b):\\n    return a + b\\n```"
scores = code_pass_fraction_reward([program, "def add(a, b): return 0"] * 3, tests=["assert add(1, 2) == 3"] * 6)
print(json.dumps({"workers": default_sandbox().workers, "scores": scores}))
"""


def test_code_sandbox_pools_share_the_cores_across_ranks():
    """Two ranks on one machine (the launcher's environment) start cores/2 zygotes each, not cores each."""
    cores = so.usable_cores()
    procs = []
    for rank in range(2):
        env = {**os.environ, "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "2"}
        procs.append(subprocess.Popen([PY, "-c", _SANDBOX_CHILD], env=env, stdout=subprocess.PIPE, text=True))
    outs = [json.loads(p.communicate(timeout=300)[0].strip().splitlines()[-1]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    workers = [o["workers"] for o in outs]
    assert workers == [max(1, cores // 2)] * 2 and sum(workers) <= max(cores, 2)
    for o in outs:
        assert o["scores"] == [1.0, 0.0] * 3 or None in o["scores"]  # None only where no sandbox can start


_JUDGE_CHILD = """
import json, sys
from grpo_course.rewards.judges import make_judge_reward
from grpo_course.rewards.fake_judges import FAKE_KEYS
from grpo_course.rewards.judge_clients import claude, gemini
from grpo_course.scale_out import judge_share
url, cache = sys.argv[1], sys.argv[2]
judges = [claude(base_url=url, api_key=FAKE_KEYS["anthropic"], api_key_env=()),
          gemini(base_url=url, api_key=FAKE_KEYS["gemini"], api_key_env=())]
share = judge_share(total_concurrency=4, total_budget_usd=1.0)
reward = make_judge_reward(judges, cache_dir=cache, **share.as_kwargs())
q = "Is a verbal contract binding?"
answers = [f"A verbal contract can be binding, case {i}: offer, acceptance and consideration." for i in range(12)]
out = reward(completions=answers, prompts=[q] * 12)
print(json.dumps({"share": share.as_kwargs(), "rewards": out, "hits": reward.cache.hits}))
"""


def test_judges_share_one_concurrency_cap_and_one_cache_across_ranks(tmp_path):
    from grpo_course.rewards.fake_judges import FakeJudgeServer
    from grpo_course.rewards.judge_cache import JudgeCache

    cache = tmp_path / "cache"
    with FakeJudgeServer(delay=0.05) as server:
        def run_ranks():
            procs = []
            for rank in range(2):
                env = {**os.environ, "RANK": str(rank), "WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "2",
                       "LOCAL_RANK": str(rank)}
                procs.append(subprocess.Popen([PY, "-c", _JUDGE_CHILD, server.url, str(cache)], env=env,
                                              stdout=subprocess.PIPE, text=True))
            outs = [json.loads(p.communicate(timeout=300)[0].strip().splitlines()[-1]) for p in procs]
            assert all(p.returncode == 0 for p in procs)
            return outs

        first = run_ranks()
        calls = server.count()
        assert all(o["share"] == {"max_concurrency": 2, "budget_usd": 0.5} for o in first)
        assert all(r is not None and 0 <= r <= 1 for o in first for r in o["rewards"])
        assert 0 < server.max_in_flight <= 4  # the global cap holds across both processes
        assert calls <= 2 * 12 * 2  # at most every (completion, judge) pair once per rank
        # the shared cache: every entry complete, no temporary files left, and a second launch calls nobody
        files = list(cache.rglob("*.json"))
        assert files and not list(cache.rglob("*.tmp"))
        assert all(JudgeCache(cache).get(f.stem) is not None for f in files)
        second = run_ranks()
        assert server.count() == calls and all(o["hits"] == 24 for o in second)
        assert [o["rewards"] for o in second] == [first[0]["rewards"]] * 2


# ---- the proof: grpo-course train on 2 CPU processes over gloo ----------------------------------------


def _launch(args: list[str], env: dict, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout)


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RANK", "LOCAL_", "WORLD_", "MASTER_"))}
    env.update(HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    return env


def test_launcher_fails_when_any_rank_fails(tmp_path):
    cmd = so.launch_command(strategy="ddp-cpu", gpus_per_node=2, module="grpo_course.scale_out")
    assert cmd.argv[:2] == ["accelerate", "launch"]
    argv = LAUNCH + cmd.argv[2:cmd.argv.index("-m") + 2] + ["probe", "--evidence", str(tmp_path), "--fail-rank", "1"]
    done = _launch(argv, _env(), timeout=300)
    assert done.returncode != 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert so.summarize_evidence(so.read_evidence(tmp_path))["exit_codes"] == [0, 3]


def test_grpo_course_train_runs_unchanged_on_two_processes(tmp_path):
    """The shipped ddp-cpu config launches the unchanged CLI on 2 processes. Checks: both ranks ran over gloo
    (MULTI_CPU), each scored a different half of every generation batch, TRL's bookkeeping is
    plan_batch's, and after every step the trainable weights are bit-identical on both ranks and differ from
    the start (gradients were averaged: different data, same update)."""
    evidence, out = tmp_path / "evidence", tmp_path / "run"
    train_args = ["train", "--profile", "cpu-tiny", "--steps", "2", "--output-dir", str(out), "--eval-size", "2",
                  "--examples", "0", "--save-steps", "100"]
    cmd = so.launch_command(strategy="ddp-cpu", gpus_per_node=2, module="grpo_course.scale_out")
    argv = LAUNCH + cmd.argv[2:cmd.argv.index("-m") + 2] + ["probe", "--evidence", str(evidence), "--", *train_args]
    start = time.perf_counter()
    done = _launch(argv, _env())
    seconds = time.perf_counter() - start
    log = done.stdout[-3000:] + done.stderr[-3000:]
    assert done.returncode == 0, log

    ranks = so.read_evidence(evidence)
    assert [r["rank"] for r in ranks] == [0, 1]
    plan = so.plan_batch(64, 2, 1, 8)  # the tiny recipe: 64 completions per device, G = 8
    for r in ranks:
        assert r["world_size"] == 2 and r["num_processes"] == 2 and r["global_step"] == 2
        assert r["omp_num_threads"] == os.environ.get("OMP_NUM_THREADS", "1")  # torchrun: 1 thread per process
    got = so.summarize_evidence(ranks)
    assert got["exit_codes"] == [0, 0] and got["pids_distinct"]
    assert got["distributed_type"] == ["DistributedType.MULTI_CPU"] and got["backend"] == ["gloo"]
    assert got["trl_config"]["generation_batch_size"] == plan.generation_batch_size == 128
    assert got["trl_config"]["steps_per_generation"] == plan.steps_per_generation
    # each rank scored its own half of every generation batch: whole groups of G, no prompt on both ranks
    assert [s["step"] for s in got["per_step"]] == [0, 1]
    for step in got["per_step"]:
        assert step["completions_per_rank"] == [plan.completions_per_process] * 2
        assert step["completions_per_prompt"] == [plan.num_generations]
        assert step["prompts"] == plan.prompts_per_generation and step["prompts_on_several_ranks"] == 0
    # gradients synchronised: identical weights after every step, and the weights moved
    assert got["steps"] == [1, 2] and got["identical_at_start"] and got["identical_after_every_step"]
    assert got["weights_moved"] and got["identical_at_end_all_weights"]

    # one log row per step (only the main process writes), one adapter
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2]
    assert (out / "final" / "adapter" / "adapter_config.json").is_file()
    print(f"2-process run: {seconds:.0f} s wall, exit codes {got['exit_codes']}")
