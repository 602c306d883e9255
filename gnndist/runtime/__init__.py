"""Ray actors and the distributed loader. The only package (with ``train`` and ``cli``) that imports Ray."""
