"""The benchmark suite behind `fastconv bench` and `pytest bench --benchmark-only`, one module per job:

* cases    the catalogue: shapes, cases (a kind of work on a named shape), implementations per case
* impls    `prepare(case, impl)`: the inputs and the call for one implementation (fastconv, the NumPy
           reference, numpy.matmul, PyTorch when importable)
* timing   how long each implementation is run, and the runner that fills one result row
* machine  what the numbers were measured on
* report   the text table, the JSON document, the bar chart, the Markdown page (docs/performance.md)
* command  the `fastconv bench` command that ties them together
"""
