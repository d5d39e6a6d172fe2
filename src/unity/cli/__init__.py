"""The ``unity`` command line.

One module per resource, all registered on the typer app in ``main``::

    root      global options (--url, --token) and the entry point, which
              builds a serve-only app for ``unity serve`` (a lean process)
    main      the full app: every group, and ``serve``
    serve     ``unity serve``
    db        ``unity db upgrade``                    (talks to the database)
    tokens    ``unity token create|list|revoke``      (talks to the database)
    plugins   ``unity plugins list|info|enable|...``  (talks to a running hub)
    client    the small HTTP client those commands share
    output    tables for people, ``--json`` for scripts, errors on stderr
"""
