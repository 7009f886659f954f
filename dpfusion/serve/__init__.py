"""``dpfusion serve``: a local web page and JSON API around one loaded ``Model``.

Needs the ``serve`` extra (FastAPI, uvicorn, python-multipart). Every decode goes
through ``Model.decompress``, so the page shows exactly what the library and the
CLI produce for the same bitstream and tau.
"""
