"""GRPO on Ray Train with DeepSpeed, rewards scored by Ray actors.

- `config.GRPOConfig`: the `grpo` section (every field with its unit).
- `rollout`: prompts -> G sampled completions each, videos encoded once per prompt.
- `logprobs`: per-token log-probs / entropy of completions from precomputed video embeddings.
- `scoring`: rewards from the reward actor pool, reward metrics.
- `step`: old / reference log-probs and the num_iterations optimizer updates.
- `train`: the loop inside each Ray Train worker; `stage.run(cfg)`: the pipeline stage.
"""
