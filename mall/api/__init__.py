"""The HTTP API's shared pieces: how errors are answered (``exceptions``, ``error_views``), ids in
URLs (``converters``) and the OpenAPI schema's error responses (``schema``)."""
