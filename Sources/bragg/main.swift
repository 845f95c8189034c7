// Entry point: see Bragg.swift. Subcommands are listed in Subcommands.swift.
braggMain()
