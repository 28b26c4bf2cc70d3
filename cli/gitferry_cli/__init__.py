"""gitferry's command-line client: the management API as verbs (see ``gitferry --help``)."""
