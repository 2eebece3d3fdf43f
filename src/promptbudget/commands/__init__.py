"""One module per command, each with ``run(options)``: what the command does, from Options to
its result (a ``Report`` for every command that prints one). A command uses the Project and the
stages; no command imports another, except ``diff``, which is two ``check`` runs compared."""
