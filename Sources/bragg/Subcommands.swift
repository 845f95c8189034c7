import ArgumentParser

/// Every `bragg` subcommand, in the order `bragg --help` lists them.
/// (Each lives in its own file, <Name>Command.swift.)
let braggSubcommands: [ParsableCommand.Type] = [
    ViewCommand.self,
    InfoCommand.self,
    ConvertCommand.self,
    BenchCommand.self,
    PhaseCommand.self,
    AnalyzeCommand.self,
    TrainCommand.self,
]

/// Every `bragg bench` subcommand.
let braggBenchSubcommands: [ParsableCommand.Type] = [
    BenchFFT.self,
    BenchPhase.self,
    BenchNN.self,
]
