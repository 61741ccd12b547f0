"""Everything about models: the provider chain, prompts, output schemas, the rules provider
and the OpenAI-compatible simulator. Imports neither api/ nor worker/."""
