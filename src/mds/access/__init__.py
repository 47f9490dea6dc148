"""Who may do what: API keys with roles (``keys``) and checking them per request
(``authenticator``). The HTTP side lives in :mod:`mds.api.auth`."""
