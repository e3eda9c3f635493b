"""REST routers of the control plane."""
