"""``edgepose doctor``: checks of the machine, its runtimes, cameras, Coral and broker."""
