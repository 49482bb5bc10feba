"""The HTTP preview: the sink, the per-client frame hub, the HTTP server, the page and /metrics."""
