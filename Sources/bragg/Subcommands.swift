import ArgumentParser

/// Every `bragg` subcommand, in the order `bragg --help` lists them.
/// (Each lives in its own file, <Name>Command.swift.)
let braggSubcommands: [ParsableCommand.Type] = [
    DemoCommand.self,
    ReportCommand.self,
    ViewCommand.self,
    InfoCommand.self,
    ConvertCommand.self,
    PrepareCommand.self,
    BenchCommand.self,
    PhaseCommand.self,
    BatchCommand.self,
    AnalyzeCommand.self,
    TrainCommand.self,
    SimulateCommand.self,
]

/// Every `bragg bench` subcommand.
let braggBenchSubcommands: [ParsableCommand.Type] = [
    BenchFFT.self,
    BenchPrepare.self,
    BenchPhase.self,
    BenchNN.self,
    BenchNNEval.self,
    BenchSimulate.self,
]
