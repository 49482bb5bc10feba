"""``edgepose bench``: measurements of the pipeline against the bare interpreter, and their report."""
