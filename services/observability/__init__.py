"""What an operator sees of a running gam process: Prometheus metrics
(:mod:`.metrics`), log lines (:mod:`.logs`), readiness (:mod:`.readiness`) and
the HTTP guards in front of the API (:mod:`.http`).

The rest of gam calls in here through a handful of one-line hooks, so the
write path, the projector and the relay stay readable without knowing about
Prometheus or log formats."""
