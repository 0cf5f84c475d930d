"""`python -m rasp_cli`: the same as the `rasp` command."""

from rasp_cli.main import main

main()
