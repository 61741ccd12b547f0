"""Latency profiles, calibrated to published Strix Halo (Ryzen AI Max+ 395) figures.

- vllm-bf16: a 7-8B model in bf16 under vLLM: about 116 ms per output token at 1 stream and
  163 ms per token (per stream) at 16 streams; linear in between, flat beyond.
- llamacpp-q4: llama.cpp, Q4_K_M: about 25 tok/s at 1 stream (40 ms/token) and 179 tok/s in
  total at 16 streams (89 ms/token per stream).
- instant: no latency, for fast tests.
Prefill rates are assumptions (not in the published figures above): they matter little here,
because ingredient prompts are short and answers dominate.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Profile:
    name: str
    token_s_at_1: float  # seconds per output token, one stream
    token_s_at_16: float  # seconds per output token per stream, 16 streams
    prefill_tokens_per_s: float  # 0 = instant
    max_num_seqs: int

    def seconds_per_token(self, running: int) -> float:
        streams = min(max(running, 1), 16)
        return self.token_s_at_1 + (self.token_s_at_16 - self.token_s_at_1) * (streams - 1) / 15

    def prefill_seconds(self, prompt_tokens: int) -> float:
        return prompt_tokens / self.prefill_tokens_per_s if self.prefill_tokens_per_s else 0.0


PROFILES: dict[str, Profile] = {
    "vllm-bf16": Profile("vllm-bf16", 0.116, 0.163, prefill_tokens_per_s=1000, max_num_seqs=16),
    "llamacpp-q4": Profile("llamacpp-q4", 1 / 25, 16 / 179, prefill_tokens_per_s=800, max_num_seqs=16),
    "instant": Profile("instant", 0.0, 0.0, prefill_tokens_per_s=0, max_num_seqs=256),
}
