"""gnm: Generative Neurosymbolic Machines (NeurIPS 2020) in PyTorch."""
