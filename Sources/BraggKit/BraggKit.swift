// BraggKit: the library a program (such as `bragg`) imports to use the whole pipeline.
// It re-exports the stage modules, as swift-numerics' `Numerics` umbrella does, and holds
// the glue between stages that no single stage owns: reading a pattern with its geometry,
// turning a beamline scan into a geometry record, carrying that record into results with
// the voxel size, merging geometry sources (file, experiment file, command line) with a
// note of what overrode what, and bringing a series' states to one shape.
@_exported import Numerics
@_exported import Formats
@_exported import Simulation
@_exported import Preparation
@_exported import Phasing
@_exported import Neural
@_exported import Analysis
@_exported import Report
