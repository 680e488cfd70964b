"""`python -m bot.cli` is `podbot`."""

from bot.cli import main

main()
