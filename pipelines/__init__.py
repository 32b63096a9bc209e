"""Training, reward, evaluation and stage logic on Ray. Imports data_gen and modeling, never jobs."""
