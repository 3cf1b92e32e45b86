"""The QA workbench (development only): personas, the test-control API and its command line.

Nothing here is registered in production (docs/qa-workbench.md).
"""
