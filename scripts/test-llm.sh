#!/usr/bin/env bash
# make test-llm: the provider chain and a small drain against a REAL inference server:
# llama-cpp-python's OpenAI-compatible server with a GGUF model (scripts/llm-lane.sh). The
# default MODEL=smollm2 (SmolLM2-135M) fits CI time; `make test-llm MODEL=qwen2.5-1.5b` runs
# the same tests against the model that can do the job.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${MODEL:-smollm2}
source scripts/llm-lane.sh

lane_install_llama_cpp
GGUF=$(lane_gguf "$MODEL")
[[ -n "$GGUF" && -f "$GGUF" ]] || { echo "test-llm: no .gguf file for $MODEL" >&2; exit 1; }
lane_start_server "$MODEL" "$GGUF"

export SOUS_LLM_URL="http://127.0.0.1:$PORT/v1" SOUS_LLM_MODEL="$MODEL"
"$VENV/bin/pytest" -q -p no:cacheprovider tests/llm
if [[ "${SOUS_LLM_BENCH:-1}" == "1" ]]; then
  "$PY" -m loadtest.bench_llm --url "$SOUS_LLM_URL" --model "$MODEL" --rows "${SOUS_LLM_BENCH_ROWS:-24}" --batch 8
fi
