"""Studies over seeds and conditions: run plans, statistics, learning curves and reports."""
