"""``python -m eval.bench load PORT CLIENTS SECONDS MAX_REQUESTS FIRST_QUESTION``: the load-generating
child of the throughput section (the benchmark itself is ``reportqa bench``)."""
import json
import sys

from eval.bench.http import run_load

if sys.argv[1:2] != ["load"] or len(sys.argv) != 7:
    sys.exit("usage: python -m eval.bench load PORT CLIENTS SECONDS MAX_REQUESTS FIRST_QUESTION "
             "(the full benchmark is `reportqa bench`)")
print(json.dumps(run_load(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]),
                          int(sys.argv[6]))))
