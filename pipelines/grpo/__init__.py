"""GRPO on Ray Train with DeepSpeed, rewards scored by Ray actors."""
