"""``python -m vvk_pbx``: the same as the ``vvk-pbx`` command (the supervisor starts it so)."""

from vvk_pbx.cli import main

main()
