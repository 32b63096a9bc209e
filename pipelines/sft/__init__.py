"""Supervised fine-tuning on Ray Train with DeepSpeed ZeRO."""
