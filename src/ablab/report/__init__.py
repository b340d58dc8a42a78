"""Study reports: ``stats`` (intervals, paired tests, Holm, binomial), ``analysis`` (store -> numbers),
``figures`` (matplotlib Agg PNGs), ``render`` (HTML, Markdown, CSV, JSON).

    from ablab.report.render import write_report
    paths = write_report("runs/fashion-regularization")   # -> report/report.html, report.md, ...
"""
