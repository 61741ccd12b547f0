#!/usr/bin/env bash
# make bench-llm: accuracy and throughput of the model path against a REAL model that can do
# the job (default MODEL=qwen2.5-1.5b: Qwen2.5-Coder-1.5B-Instruct Q4_K_M on llama.cpp), on
# the same sample of labelled development rows:
#   1. loadtest.bench_rules --llm-url: rules alone, the model alone and the merged chain
#      (name, quantity, unit, good food wrongly rejected), with output tokens per item from
#      the server's `usage`, with and without skipping the model where the rules are confident;
#   2. loadtest.bench_llm: rows/s batched against one row per request, same server, same run.
# BENCH_LLM_ROWS (400) and BENCH_LLM_SPEED_ROWS (24; 0 skips it) size the two parts;
# BENCH_LLM_ARGS adds bench_rules options (default: --skip-confident on; "both" also runs the
# merged chain with every line sent to the model, as long again as the model alone).
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${MODEL:-qwen2.5-1.5b}
source scripts/llm-lane.sh

lane_install_llama_cpp
GGUF=$(lane_gguf "$MODEL")
[[ -n "$GGUF" && -f "$GGUF" ]] || { echo "bench-llm: no .gguf file for $MODEL" >&2; exit 1; }
lane_start_server "$MODEL" "$GGUF"
URL="http://127.0.0.1:$PORT/v1"

echo "bench-llm: $(date -u '+%Y-%m-%d %H:%M') UTC, $(hostname), $(nproc) cores, model $MODEL ($GGUF)"
"$PY" -m loadtest.bench_rules --llm-url "$URL" --model "$MODEL" --response-format json_object \
  --batch 4 --limit "${BENCH_LLM_ROWS:-400}" ${BENCH_LLM_ARGS:---skip-confident on}
if [[ "${BENCH_LLM_SPEED_ROWS:-24}" != "0" ]]; then
  "$PY" -m loadtest.bench_llm --url "$URL" --model "$MODEL" --rows "${BENCH_LLM_SPEED_ROWS:-24}" --batch 4
fi
