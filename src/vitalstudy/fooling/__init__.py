"""The fooling-circuit test: which feature-visualization methods a manipulated model can trick."""
