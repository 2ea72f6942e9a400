"""Records -> tables, plots and a reading: results/summary.md, results/<study>.csv, results/*.png.

    store.iter_records() -> frame.records_frame (one row a run) -> aggregate.by_cell (over seeds)
        -> summary.write_summary: header (where measured), one section per study (table, plots,
           reading), references, and the benchmark's step-time section from results/bench/*.json
"""
from bench.report.summary import write_summary

__all__ = ["write_summary"]
