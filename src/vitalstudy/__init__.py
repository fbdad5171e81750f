"""vitalstudy: a reproducible study workflow for the VITAL feature-visualization paper.

Stages (each a subcommand of the ``vitalstudy`` CLI and a rule file in ``workflow/rules``):
references -> generate -> metrics -> forms -> responses -> figures, plus audit.
"""

__version__ = "0.1.0"
