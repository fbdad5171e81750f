"""Stage 3: automated metrics of feature visualizations and the paper's tables (PAPER_NOTES §3).

Every metric writes long-format rows (`longformat.COLUMNS`); `tables` turns them into the paper's
Table 1/2/3/5 shapes with the paper's own numbers (`paper_numbers.csv`) beside ours.
"""
