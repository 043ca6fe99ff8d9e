"""`python -m gnm` and `torchrun -m gnm train ...`."""

from gnm.cli import app

app(prog_name="gnm")
