"""Studies: a TOML file of variants × grid × seeds, expanded into runs, executed, stored and reported.

``studyfile`` parses and validates study files, ``expand`` turns one into runs, ``executor`` runs them
(the interface a distributed engine implements), ``runner`` drives a study with resume, and
``ablab.store`` / ``ablab.report`` hold and present the results.
"""
