"""The ``unity`` command line.

One module per resource, all registered on the typer app in ``main``::

    main      the app, global options (--url, --token), ``serve``
    db        ``unity db upgrade``                    (talks to the database)
    tokens    ``unity token create|list|revoke``      (talks to the database)
    plugins   ``unity plugins list|info|enable|...``  (talks to a running hub)
    client    the small HTTP client those commands share
    output    tables for people, ``--json`` for scripts, errors on stderr
"""
