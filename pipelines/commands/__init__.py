"""The modules of ``kfpkit``'s subcommands (registered in :data:`kfpkit.pipelines.cli.COMMANDS`)."""
