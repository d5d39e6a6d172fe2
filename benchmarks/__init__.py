"""Benchmarks of the hub's hot paths, each measured next to a baseline in the same run.

Run them with ``python -m benchmarks`` (see ``benchmarks/README.md``):

- ``scheduler``: hundreds of no-op plugins on a real manager; start lateness and
  hub CPU per run.
- ``write_path``: execute-and-store runs per second against a raw Core bulk insert.
- ``metrics_query``: the metric queries of ``unity.storage.metrics`` against
  hand-written SQL over a million rows.
- ``ingest``: external plugins posting metric batches to a real ``unity serve``
  against a raw Core bulk insert of the same rows.
"""
