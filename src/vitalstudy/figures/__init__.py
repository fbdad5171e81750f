"""Stage 6: the paper's figures and tables regenerated from the run's files, with statistics."""
