"""The model container's code: training (`train`) and the inference server (`serve`)."""
