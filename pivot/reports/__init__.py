"""Params and metrics reports: what ``dvc params``/``dvc metrics`` and
``dvc.api.params_show`` answer, computed as DVC computes them.

- :mod:`pivot.reports.states`: one state of a project (the workspace, a git
  revision, a recorded run) and the params and metrics files it holds.
- :mod:`pivot.reports.compare`: DVC's diff of two states and its tables.
- :mod:`pivot.reports.tables`: the plain and Markdown tables DVC prints.
- :mod:`pivot.reports.history`: values recorded in the audit trail by each run.
"""
