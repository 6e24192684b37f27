"""Sub-commands of the ``videomamba`` CLI (see ``videomamba.cli``)."""
