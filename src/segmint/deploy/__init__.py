"""From a run to production: published models, scoring, export, scheduled re-runs with
segment migration, and the HTTP service (DESIGN.md's ``deploy/``)."""
