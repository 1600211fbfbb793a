"""The llama.cpp spec's command line and its reading of llama-server's own lines (quoted
from the server's source and runs), and the installer's idempotence. The real server runs
in test_llamacpp_real.py and test_llamacpp_slots.py."""

from __future__ import annotations

import json
from pathlib import Path

import psutil

from legal_assistant.config import Settings
from legal_assistant.runtime import installer
from legal_assistant.runtime.engines.llamacpp import LlamaCppSpec, slot_count, slot_dir


def flags(argv: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for i, arg in enumerate(argv):
        if arg.startswith("-"):
            nxt = argv[i + 1] if i + 1 < len(argv) else ""
            out[arg] = "" if nxt.startswith("-") else nxt
    return out


def test_command_line_slots_context_threads_and_save_path(settings: Settings) -> None:
    s = settings.model_copy(
        update={"llamacpp_threads": 2, "llamacpp_n_ctx": 2048, "llamacpp_parallel": 3}
    )
    plan = LlamaCppSpec().launch("/m/model.gguf", "127.0.0.1", 9001, s)
    assert Path(plan.argv[0]).name == "llama-server"
    f = flags(plan.argv[1:])
    assert f["-m"] == "/m/model.gguf" and f["--host"] == "127.0.0.1" and f["--port"] == "9001"
    assert f["--parallel"] == "3" and f["-c"] == str(3 * 2048)  # -c is split across slots
    assert f["--threads"] == "2" and f["--threads-batch"] == "2"
    assert f["--slot-save-path"] == str(slot_dir(s)) and slot_dir(s).is_dir()
    assert "--metrics" in f and "--no-kv-unified" in f
    assert plan.served_model == "/m/model.gguf"


def test_default_slots_follow_the_machine_and_the_inflight_cap(settings: Settings) -> None:
    cores = psutil.cpu_count(logical=False) or 1
    s = settings.model_copy(update={"max_inflight_per_engine": 64})
    assert slot_count(s) == max(4, cores)
    assert slot_count(s.model_copy(update={"max_inflight_per_engine": 2})) == 2


def test_llama_server_bind_line_is_port_busy() -> None:
    spec = LlamaCppSpec()
    line = "srv    init: couldn't bind HTTP server socket, hostname: 127.0.0.1, port: 8080"
    assert spec.fatal_line(line)
    tail = [line, "srv    main: exiting due to HTTP server error"]
    assert spec.classify(tail=tail, exit_code=1, fatal=line).code == "port_busy"


def test_model_load_failure_is_model_not_found() -> None:
    spec = LlamaCppSpec()
    tail = [
        "llama_model_load: error loading model: tensor 'blk.0.attn_q.weight' data is not "
        "within the file bounds",
        "srv  load_model: failed to load model, '/m/x.gguf'",
        "srv    main: exiting due to model loading error",
    ]
    fatal = next(ln for ln in tail if spec.fatal_line(ln))
    err = spec.classify(tail=tail, exit_code=1, fatal=fatal)
    assert err.code == "model_not_found" and "GGUF" in err.message("fr")


def test_out_of_memory_names_the_settings_to_lower() -> None:
    spec = LlamaCppSpec()
    line = "ggml_backend_cpu_buffer_type_alloc_buffer: failed to allocate buffer of size 9663676416"
    assert spec.fatal_line(line)
    err = spec.classify(tail=[line], exit_code=1, fatal=line)
    assert err.code == "engine_crashed" and "LLAMACPP_N_CTX" in err.message("en")


def test_a_failed_prompt_cache_allocation_is_not_fatal() -> None:
    """llama-server catches it and goes on serving (server-task.cpp)."""
    line = "srv    update: failed to allocate memory for prompt cache state: std::bad_alloc"
    assert not LlamaCppSpec().fatal_line(line)


def test_install_is_a_no_op_for_the_pinned_build(tmp_path: Path) -> None:
    env = installer.engine_env(tmp_path, "llamacpp")
    (env / "bin").mkdir(parents=True)
    (env / "bin" / "llama-server").write_text("#!/bin/sh\n")
    marker = env / "legal-assistant-engine.json"
    marker.write_text(json.dumps({"engine": "llama-server", "version": "0.0.1"}))
    assert not installer.is_installed(tmp_path, "llamacpp")  # another pin: rebuilt
    marker.write_text(json.dumps({"requirement": "llama-cpp-python[server]==0.3.36"}))
    assert not installer.is_installed(tmp_path, "llamacpp")  # the retired Python server
    marker.write_text(json.dumps({"engine": "llama-server", "version": installer.LLAMACPP_VERSION}))
    assert installer.is_installed(tmp_path, "llamacpp")


async def test_installed_build_is_returned_without_building(tmp_path: Path) -> None:
    env = installer.engine_env(tmp_path, "llamacpp")
    (env / "bin").mkdir(parents=True)
    (env / "bin" / "llama-server").write_text("#!/bin/sh\n")
    (env / "legal-assistant-engine.json").write_text(
        json.dumps({"engine": "llama-server", "version": installer.LLAMACPP_VERSION})
    )
    lines: list[str] = []
    path = await installer.install_llamacpp(tmp_path, lines.append)
    assert path == env / "bin" / "llama-server" and lines == []


def test_cmake_flags_keep_amx_off() -> None:
    args = installer.llamacpp_cmake_args()
    if args and args != ["-DGGML_METAL=ON"]:
        assert "-DGGML_NATIVE=OFF" in args
        assert {"-DGGML_AMX_TILE=OFF", "-DGGML_AMX_INT8=OFF", "-DGGML_AMX_BF16=OFF"} <= set(args)


def test_a_cached_source_with_another_hash_is_not_reused(tmp_path: Path) -> None:
    target = tmp_path / f"llama_cpp_python-{installer.LLAMACPP_VERSION}.tar.gz"
    target.write_bytes(b"truncated download")
    assert not installer.source_is_cached(target)
