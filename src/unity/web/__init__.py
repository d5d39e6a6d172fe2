"""The dashboard the hub serves at ``/``: server-rendered pages, a little JavaScript.

Pages are Jinja2 templates rendered from the same manager and API functions the
JSON API uses; the browser's scripts change things only through the JSON API,
authenticated by the dashboard session cookie (:mod:`unity.web.session`).
Mounted on the app by :func:`unity.web.mount.mount_dashboard`.
"""
