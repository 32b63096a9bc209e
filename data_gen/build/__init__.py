"""The Ray Data dataset build: its config, the mix rebalance, the per-scene cache, the dataset card."""
