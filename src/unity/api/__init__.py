"""The REST API: ``/api/plugins/v2``, liveness and the Prometheus endpoint."""
