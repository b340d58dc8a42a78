"""Study reports: ``stats`` (intervals, paired tests, Holm, binomial, bootstrap, P(better), effect size),
``power`` (seed planning), ``load`` (the store streamed cell by cell), ``analysis`` (store -> numbers),
``sweeps`` (per-axis curves, heat maps, best cell on validation), ``figures`` (matplotlib Agg),
``documents`` and ``render`` (HTML, Markdown, CSV, JSON), ``terminal`` (what the CLI prints), ``plan``
(``ablab study plan``).

    from ablab.report.render import write_report
    written = write_report("runs/fashion-regularization")   # -> report/report.html, report.md, ...
    written["html"], written.analysis.comparisons
"""
