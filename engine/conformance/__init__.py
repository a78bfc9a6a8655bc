"""Runs vector files made by status-go's own code against this implementation.

Each vector family has a module that maps case types to checker functions; a checker takes the case
(a parsed JSON object) and returns normally when the implementation agrees, or raises
:class:`CaseFailure` with a one-line reason. A case type without a checker is a failure, never a skip.
"""

from __future__ import annotations

from .runner import CaseFailure, CaseResult, FileResult, run_file

__all__ = ["CaseFailure", "CaseResult", "FileResult", "run_file"]
