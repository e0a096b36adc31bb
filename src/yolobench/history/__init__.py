"""The benchmark history: every main job's run file recorded as asv results, published as HTML that opens
offline.

- :mod:`yolobench.history.asvresults`: a run file's numbers in asv's result format (one graph per cell and
  metric, one line per model key, one history per CPU generation and core count).
- :mod:`yolobench.history.publish`: ``asv publish`` of those results, with asv's CDN scripts replaced by
  the shipped copies in ``vendor/``.

``yolobench history record RUN...`` and ``yolobench history publish`` are the commands; the main job
(``tox -e deepsparse``) runs both after the report.
"""
