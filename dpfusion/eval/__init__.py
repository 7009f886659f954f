"""Evaluation: rate x tau sweeps with real bitstreams, classical baselines, results files, figures.

``sweep``     the resumable sweep (journal in ``journal``), ``baselines`` JPEG/WebP through Pillow,
``scoring``   the requested metrics from :mod:`dpfusion.metrics`, ``setlevel`` FID/KID per group,
``results``   records -> results.json + CompressAI-style curve files + CSV, ``plots``/``grid`` figures.
"""
