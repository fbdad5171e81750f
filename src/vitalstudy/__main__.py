"""`python -m vitalstudy`: the CLI through whichever interpreter runs it (the workflow's jobs call it so,
with the interpreter that runs Snakemake, so that no virtualenv need be on PATH)."""

import sys

from vitalstudy.cli import main

sys.exit(main())
