"""Training infrastructure SFT and GRPO share: the Ray Train TorchTrainer (`ray_trainer`), DeepSpeed
set-up (`deepspeed_setup`), checkpoints and the export (`checkpointing`), the metrics log
(`metrics_log`), the records a stage trains on (`data`), and the stage scaffold (`stage`)."""
