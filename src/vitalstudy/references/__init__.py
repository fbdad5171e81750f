"""Stage 1: choosing the real images a visualization is matched against."""
