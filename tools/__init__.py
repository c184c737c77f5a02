"""The repository's tooling: one command line (`python -m tools`, tools/cli/) over the subsystems below.

Deployed code (functions_src) never imports from here.
"""
