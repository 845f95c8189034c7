import Foundation
import Numerics

/// Saving and loading networks as safetensors. Weights are stored under their PyTorch-style
/// names (e.g. "encoder.1.conv.weight" of shape [2c, c, 3, 3, 3]); the metadata holds the
/// architecture and the training parameters; a checkpoint adds the optimiser's moments
/// ("optimizer.<name>.adam_m/v") and its step.
extension PhaseNet {
    static let formatTag = "braggkit-phasenet"

    /// Writes the model (and, for a checkpoint, the optimiser state) atomically.
    public func save(to path: String, metadata extra: [String: String] = [:], optimizer: AdamW? = nil) throws {
        var meta = extra
        meta["format"] = PhaseNet.formatTag
        meta["architecture"] = NetworkArchitecture.name
        meta["width"] = String(architecture.width)
        meta["input_size"] = String(architecture.inputSize)
        meta["channels_per_group"] = String(architecture.channelsPerGroup)
        meta["parameters"] = String(parameterCount)
        var file = SafetensorsFile(metadata: meta)
        for p in parameters { file.tensors[p.name] = (p.shape, p.values) }
        if let opt = optimizer {
            file.metadata["optimizer_step"] = String(opt.step)
            for t in opt.stateTensors {
                file.tensors["optimizer." + t.name] = (t.shape, Array(UnsafeBufferPointer(start: t.values.pointer, count: t.values.count)))
            }
        }
        try file.write(to: path)
    }

    /// Reads a model file: checks it is one of ours, builds the network it describes and
    /// fills its weights. `expected` (when given) must match the file's architecture.
    public static func load(from path: String, expected: NetworkArchitecture? = nil) throws -> (net: PhaseNet, file: SafetensorsFile) {
        let file = try SafetensorsFile.read(from: path)
        let m = file.metadata
        guard m["format"] == formatTag else {
            throw NeuralError.incompatibleModel(path: path, problem: "it is not a BraggKit phase-retrieval network (metadata format '\(m["format"] ?? "none")')")
        }
        guard m["architecture"] == NetworkArchitecture.name else {
            throw NeuralError.incompatibleModel(path: path, problem: "its architecture '\(m["architecture"] ?? "none")' is not \(NetworkArchitecture.name)")
        }
        guard let w = m["width"].flatMap(Int.init), let n = m["input_size"].flatMap(Int.init),
              let g = m["channels_per_group"].flatMap(Int.init) else {
            throw NeuralError.modelFile(path: path, problem: "its metadata lacks width, input_size or channels_per_group")
        }
        let arch = NetworkArchitecture(width: w, inputSize: n, channelsPerGroup: g)
        if let e = expected {
            if e.width != arch.width || e.channelsPerGroup != arch.channelsPerGroup {
                throw NeuralError.incompatibleModel(path: path, problem: "it holds a network of width \(arch.width) but width \(e.width) was asked for")
            }
            if e.inputSize != arch.inputSize {
                throw NeuralError.incompatibleModel(path: path, problem: "it was made for \(arch.inputSize)³ inputs but \(e.inputSize)³ was asked for")
            }
        }
        let net = try PhaseNet(architecture: arch)
        for p in net.parameters {
            guard let t = file.tensors[p.name] else {
                throw NeuralError.incompatibleModel(path: path, problem: "tensor \(p.name) is missing")
            }
            guard t.shape == p.shape else {
                throw NeuralError.incompatibleModel(path: path, problem: "tensor \(p.name) has shape \(t.shape), expected \(p.shape)")
            }
            guard t.values.allSatisfy({ $0.isFinite }) else {
                throw NeuralError.modelFile(path: path, problem: "tensor \(p.name) holds NaN or infinite values")
            }
            p.values = t.values
        }
        return (net, file)
    }

    /// Restores optimiser moments and step from a checkpoint written by `save(optimizer:)`.
    public static func restore(_ opt: AdamW, from file: SafetensorsFile, path: String) throws {
        guard let s = file.metadata["optimizer_step"].flatMap(Int.init) else {
            throw NeuralError.modelFile(path: path, problem: "it holds no optimiser state to resume from")
        }
        for t in opt.stateTensors {
            guard let v = file.tensors["optimizer." + t.name], v.values.count == t.values.count else {
                throw NeuralError.modelFile(path: path, problem: "optimiser tensor \(t.name) is missing or of the wrong size")
            }
            v.values.withUnsafeBufferPointer { t.values.pointer.update(from: $0.baseAddress!, count: t.values.count) }
        }
        opt.step = s
    }
}
