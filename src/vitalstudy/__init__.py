"""vitalstudy: a reproducible study workflow for the VITAL feature-visualization paper.

Stages (each a subcommand of the ``vitalstudy`` CLI and a rule file in ``workflow/rules``):
references -> generate -> metrics -> forms -> responses -> figures, plus audit.
"""

__version__ = "0.1.0"


def __getattr__(name: str):
    """`vitalstudy.visualize` is imported on first use, so `import vitalstudy` stays light."""
    if name == "visualize":
        from vitalstudy.api import visualize

        return visualize
    raise AttributeError(f"module 'vitalstudy' has no attribute {name!r}")
