"""Two ranks over gloo through TRL's vLLM paths: the tool loop keeps them in step (issue 12, items 1-2).

Each test starts two CPU processes running ``dist_worker.py`` (real ``GRPOTrainer`` /
``MaskedGRPOTrainer``, tiny Qwen2.5-VL, only the vLLM engine scripted). The "alpha" rank
keeps calling tools for three iterations, the "beta" rank stops after one.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

WORKER = Path(__file__).with_name("dist_worker.py")
ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(model_dir, out: Path, kind: str, mode: str, timeout: float, worker: Path = WORKER,
            stop_when=None) -> tuple[bool, list[str]]:
    """Run both ranks; (finished in time with exit 0 on both, logs). ``stop_when(out, procs)``,
    polled while they run, ends the run early (both killed) when it returns True."""
    out.mkdir(parents=True, exist_ok=True)
    port = str(_free_port())
    procs, logs = [], []
    for rank in (0, 1):
        env = {**os.environ, "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": "2",
               "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port, "OMP_NUM_THREADS": "1",
               "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
               "TRL_EXPERIMENTAL_SILENCE": "1"}
        log = (out / f"log{rank}.txt").open("w")
        logs.append(log)
        procs.append(subprocess.Popen([sys.executable, str(worker), str(model_dir), str(out), kind, mode],
                                      env=env, stdout=log, stderr=subprocess.STDOUT, cwd=str(ROOT)))
    deadline = time.monotonic() + timeout
    while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
        if stop_when is not None and stop_when(out, procs):
            break
        time.sleep(0.5)
    ok = all(p.poll() == 0 for p in procs)
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()
    for log in logs:
        log.close()
    return ok, [(out / f"log{r}.txt").read_text()[-3000:] for r in (0, 1)]


def _main_thread_stacks(dump: str) -> list[list[str]]:
    """The worker's main-thread stack (frames innermost first) from each faulthandler dump in ``dump``."""
    return [block.splitlines()[1:] for block in dump.split("\n\n") if "dist_worker.py" in block and "in <module>" in block]


def _dump_stacks(out: Path, procs) -> list[list[str]] | None:
    """SIGUSR1 both ranks (``dist_worker.py`` registers faulthandler on it); their main-thread
    stacks once both dumps are written, None if a rank is gone or does not answer."""
    files = [out / f"stack{r}.txt" for r in (0, 1)]
    seen = [len(_main_thread_stacks(f.read_text())) for f in files]
    if any(p.poll() is not None for p in procs):
        return None
    for p in procs:
        p.send_signal(signal.SIGUSR1)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        stacks = [_main_thread_stacks(f.read_text()) for f in files]
        if all(len(s) > n for s, n in zip(stacks, seen)):
            return [s[-1] for s in stacks]
        time.sleep(0.1)
    return None


def _progress(out: Path) -> dict[int, list[str]]:
    files = {r: out / f"progress{r}.txt" for r in (0, 1)}
    return {r: f.read_text().splitlines() if f.exists() else [] for r, f in files.items()}


def _in_collective(stack: list[str]) -> bool:
    """The innermost frame is one of torch.distributed's collectives (the process waits in it)."""
    return bool(stack) and "torch/distributed/distributed_c10d.py" in stack[0]


def _reports(out: Path) -> dict[str, dict]:
    reports = [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]
    by_prompt = {}
    for rep in reports:
        prompts = {r["prompt"] for r in rep["rollouts"]}
        assert len(prompts) == 1, f"each rank should hold one prompt's group, rank {rep['rank']} has {prompts}"
        by_prompt[prompts.pop().split()[1].rstrip(".")] = rep
    assert set(by_prompt) == {"alpha", "beta"}
    return by_prompt


def _own_continuations(rep: dict, who: str) -> None:
    answers = sorted(a for r in rep["rollouts"] for a in r["answers"])
    keys = {k for r in rep["rollouts"] for k in r["keys"]}
    assert answers == [f"{who}0", f"{who}1"], answers
    assert all(k.startswith(who) for k in keys), keys


def test_colocate_sleep_mode_tool_loop_keeps_ranks_in_step(tiny_qwen_dir, tmp_path):
    """Colocated vLLM + sleep mode: every tool iteration re-syncs weights (a collective under ZeRO-3)."""
    ok, logs = _launch(tiny_qwen_dir, tmp_path, "masked", "colocate", timeout=300)
    assert ok, "MaskedGRPOTrainer did not finish:\n" + "\n---\n".join(logs)
    reps = _reports(tmp_path)
    _own_continuations(reps["alpha"], "alpha")
    _own_continuations(reps["beta"], "beta")
    # both ranks entered the weight sync (the collective) equally often: first turn + 3 tool iterations
    assert reps["alpha"]["syncs"] == reps["beta"]["syncs"] == 4
    # the idle rank joined iterations 2 and 3 with a one-token placeholder generation
    placeholder = reps["beta"]["placeholder"]
    idle = [g for g in reps["beta"]["generations"] if all(p == placeholder for p, _ in g)]
    assert len(idle) == 2 and all(max_tokens == 1 for g in idle for _, max_tokens in g)
    assert reps["alpha"]["log"]["minio3/termination/answered"] == 1.0


def test_stock_grpo_trainer_deadlocks_in_the_same_run(tiny_qwen_dir, tmp_path):
    """The reproduction: stock GRPOTrainer, same script — the beta rank leaves the tool loop, the alpha
    rank waits in the weight-sync collective of iteration 2 forever.

    Detected without waiting out a timeout: once the progress files show one rank past its last
    sync and the other inside a third one, both ranks dump their stacks (SIGUSR1, faulthandler)
    twice, a second apart. A deadlock is: both alive, progress unchanged, the same stacks both
    times, each waiting inside a torch.distributed collective, the alpha rank in the tool loop's
    weight sync and the beta rank in another collective after the loop. Then both are killed."""
    seen: dict = {}

    def deadlocked(out: Path, procs) -> bool:
        calls = _progress(out)
        if sorted(c.count("sync") for c in calls.values()) != [2, 3]:
            return False
        first = _dump_stacks(out, procs)
        time.sleep(1.0)
        second = _dump_stacks(out, procs)
        if first is None or second is None or first != second or _progress(out) != calls:
            return False  # a rank is still moving (or gone): look again later
        if not all(_in_collective(stack) for stack in second):
            return False
        seen.update(calls=calls, stacks=dict(enumerate(second)))
        return True

    t0 = time.monotonic()
    ok, logs = _launch(tiny_qwen_dir, tmp_path, "stock", "colocate", timeout=300, stop_when=deadlocked)
    assert seen, f"no deadlock after {time.monotonic() - t0:.0f} s (finished: {ok}):\n" + "\n---\n".join(logs)
    assert not ok and not (tmp_path / "rank0.json").exists()
    calls = seen["calls"]
    # both ranks synced + generated the first turn and iteration 1; one then left the loop, the other
    # entered iteration 2's weight sync and is still waiting in its collective
    stuck_rank = next(r for r, c in calls.items() if c.count("sync") == 3)
    stuck, other = calls[stuck_rank], calls[1 - stuck_rank]
    assert stuck[-1] == "sync" and stuck.count("generate 2") == 2, calls
    stuck_stack, other_stack = " | ".join(seen["stacks"][stuck_rank]), " | ".join(seen["stacks"][1 - stuck_rank])
    assert "in all_reduce" in stuck_stack and "in wake_up" in stuck_stack and "in _tool_call_loop" in stuck_stack
    assert "in _tool_call_loop" not in other_stack and other[-1].startswith("generate"), (other, other_stack)


def test_server_mode_each_rank_gets_its_own_continuations(tiny_qwen_dir, tmp_path):
    """Server mode: ranks send 2 and 1 prompts in iteration 1; TRL slices by process_index * len(prompts)."""
    ok, logs = _launch(tiny_qwen_dir, tmp_path, "masked", "server", timeout=300)
    assert ok, "MaskedGRPOTrainer did not finish:\n" + "\n---\n".join(logs)
    reps = _reports(tmp_path)
    _own_continuations(reps["alpha"], "alpha")
    _own_continuations(reps["beta"], "beta")
    # the server never generated for a placeholder (rank 0 drops them before the request)
    requests = next(r["requests"] for r in reps.values() if r["rank"] == 0)
    placeholder = reps["alpha"]["placeholder"]
    assert all(p != placeholder for req in requests for p in req)
    assert [len(req) for req in requests] == [2, 3, 2, 2]  # unique first-turn prompts, then 2+1, 2+0, 2+0


def test_colocate_tensor_parallel_slices_each_rank_its_own_continuations(tiny_qwen_dir, tmp_path):
    """Colocate TP 2: one engine for both ranks; TRL slices by rank_in_group * len(prompts)."""
    ok, logs = _launch(tiny_qwen_dir, tmp_path, "masked", "colocate_tp2", timeout=300)
    assert ok, "MaskedGRPOTrainer did not finish:\n" + "\n---\n".join(logs)
    reps = _reports(tmp_path)
    _own_continuations(reps["alpha"], "alpha")
    _own_continuations(reps["beta"], "beta")
    # padded to equal lists: iteration 1 carries 2 + 1 real prompts and one one-token placeholder
    gens = reps["beta"]["generations"]
    placeholder = reps["beta"]["placeholder"]
    assert [sum(p == placeholder for p, _ in g) for g in gens] == [0, 1, 2, 2]
    assert all(m == 1 for g in gens for p, m in g if p == placeholder)


def test_transformers_backend_keeps_ranks_in_step(tiny_qwen_dir, tmp_path):
    """No vLLM (ZeRO-3 gathers parameters around each generate): the idle rank makes one-token turns."""
    ok, logs = _launch(tiny_qwen_dir, tmp_path, "masked", "transformers", timeout=300)
    assert ok, "MaskedGRPOTrainer did not finish:\n" + "\n---\n".join(logs)
    reps = _reports(tmp_path)
    _own_continuations(reps["alpha"], "alpha")
    _own_continuations(reps["beta"], "beta")
    assert reps["alpha"]["max_new_tokens"] == [256] * 4
    assert reps["beta"]["max_new_tokens"] == [256, 256, 1, 1]


def test_idle_rank_runs_the_vision_tower_under_fsdp(tiny_qwen_dir, tmp_path):
    """Transformers backend under FSDP (each vision block and decoder layer its own unit):
    the idle rank's turn carries a blank image, so both ranks run the same modules' parameter
    gathers. A text-only idle turn fails here with gloo's collective mismatch (NCCL: a hang)."""
    ok, logs = _launch(tiny_qwen_dir, tmp_path, "", "", timeout=300, worker=WORKER.with_name("fsdp_vision_worker.py"))
    assert ok, "the two FSDP ranks did not finish:\n" + "\n---\n".join(logs)
    turns = [json.loads((tmp_path / f"rank{r}.json").read_text())["turns"] for r in (0, 1)]
    assert turns[0][0] > 0 and turns[1] == [0], turns  # rank 1 joined rank 0's one iteration, then both stopped
