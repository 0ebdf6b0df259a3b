"""Many fits and fits on disk: saving and loading, executors, resumable batches of fits."""
