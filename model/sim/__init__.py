"""`sous sim`: an OpenAI-compatible stand-in for vLLM on machines without a GPU.

Answers with schema-valid JSON from registered answerers (the rules provider for ingredients),
with latency from a profile calibrated to published Strix Halo figures, a max-num-seqs limit
with a waiting queue, vLLM's metric names, and injectable faults. Everything it reports is
labelled simulated.
"""
