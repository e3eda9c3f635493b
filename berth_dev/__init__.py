"""`make run`: the whole system on one machine (a daemon, a control plane, an admin token, a machine and a
workspace), from a fresh clone, on the embedded defaults. See `berth_dev.devrun`."""
