"""fsspec-based variable stores: ``memory://``, ``file://`` and ``s3://``.

Open them through :func:`direktiv_sdk.open_store`; this package only imports ``direktiv_sdk``.
"""
