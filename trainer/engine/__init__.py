"""The PyTorch engine: data, model, loop and the worker. Only the spawned child imports it."""
