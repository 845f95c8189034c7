import Foundation
import Numerics

/// The architecture of a phase-retrieval network: what a model file must match.
public struct NetworkArchitecture: Equatable, Sendable, CustomStringConvertible {
    public static let name = "bcdi-encoder-2decoder-v1"
    /// Width c: channels of the first block (encoder c, 2c, 2c, 4c, 4c, 8c, 8c).
    public var width: Int
    /// Edge n of the cubic input the network was trained on (any multiple of 8 runs).
    public var inputSize: Int
    /// Channels per GroupNorm group.
    public var channelsPerGroup: Int

    public init(width: Int = 8, inputSize: Int = 64, channelsPerGroup: Int = 4) {
        self.width = width; self.inputSize = inputSize; self.channelsPerGroup = channelsPerGroup
    }

    public var description: String { "\(NetworkArchitecture.name), width \(width), input \(inputSize)³" }

    public func validate() throws {
        guard width >= 1, width <= 64 else { throw NeuralError.invalidInput("network width must be 1…64 (got \(width))") }
        guard inputSize >= 8, inputSize % 8 == 0 else {
            throw NeuralError.invalidInput("network input size must be a positive multiple of 8 (got \(inputSize))")
        }
        guard channelsPerGroup >= 1, width % min(width, channelsPerGroup) == 0 else {
            throw NeuralError.invalidInput("GroupNorm channels per group \(channelsPerGroup) does not divide width \(width)")
        }
    }
}

/// Convolution + GroupNorm + LeakyReLU, optionally followed by ×2 upsampling (the decoders
/// of Wu et al. convolve at the coarse scale and then upsample: 4× fewer operations than
/// upsampling first).
final class ConvBlock {
    let upsample: Upsample2x?
    let conv: Conv3d
    let norm: GroupNorm
    let act = LeakyReLU()

    init(name: String, cin: Int, cout: Int, stride: Int, upsample: Bool, perGroup: Int, scratch: ConvScratch) {
        self.upsample = upsample ? Upsample2x() : nil
        // GroupNorm removes any constant per channel: the convolution needs no bias.
        conv = Conv3d(name: name + ".conv", inChannels: cin, outChannels: cout, stride: stride, bias: false,
                      scratch: scratch)
        norm = GroupNorm(name: name + ".norm", groups: max(1, cout / min(cout, perGroup)), channels: cout)
    }

    var parameters: [Parameter] { conv.parameters + norm.parameters }

    func forward(_ x: Tensor) -> Tensor {
        let c = conv.forward(x)
        let a = NeuralProfile.time("norm+act") { act.forward(norm.forward(c)) }
        return NeuralProfile.time("upsample") { upsample?.forward(a) ?? a }
    }

    func backward(_ dy: Tensor) -> Tensor {
        let u = NeuralProfile.time("upsample back") { upsample?.backward(dy) ?? dy }
        let gn = NeuralProfile.time("norm+act back") { norm.backward(act.backward(u)) }
        return conv.backward(gn)
    }
}

/// One decoder: 8c → 4c (↑2) → 2c (↑2) → c → head (1 channel, sigmoid or π·tanh).
final class Decoder {
    let blocks: [ConvBlock]
    let head: Conv3d
    let activation: HeadActivation

    init(name: String, width c: Int, perGroup: Int, kind: HeadActivation.Kind, scratch: ConvScratch) {
        blocks = [
            ConvBlock(name: name + ".0", cin: 8 * c, cout: 4 * c, stride: 1, upsample: true, perGroup: perGroup, scratch: scratch),
            ConvBlock(name: name + ".1", cin: 4 * c, cout: 2 * c, stride: 1, upsample: true, perGroup: perGroup, scratch: scratch),
            ConvBlock(name: name + ".2", cin: 2 * c, cout: c, stride: 1, upsample: false, perGroup: perGroup, scratch: scratch),
        ]
        head = Conv3d(name: name + ".head", inChannels: c, outChannels: 1, stride: 1, bias: true, scratch: scratch)
        activation = HeadActivation(kind)
    }

    var parameters: [Parameter] { blocks.flatMap { $0.parameters } + head.parameters }

    func forward(_ x: Tensor) -> Tensor {
        var h = x
        for b in blocks { h = b.forward(h) }
        return activation.forward(head.forward(h))
    }

    func backward(_ dy: Tensor) -> Tensor {
        var g = head.backward(activation.backward(dy))
        for b in blocks.reversed() { g = b.backward(g) }
        return g
    }
}

/// The encoder–decoder of the seed study (after Wu et al. 2021): one encoder (channels c,
/// 2c, 2c, 4c, 4c, 8c, 8c; stride 2 at each rise in channels, so the code is n/8 per axis)
/// and two decoders (8c→4c→2c→c, ×2 trilinear upsampling after the first two blocks) for amplitude (sigmoid) and
/// phase (π·tanh). Output: half the input size per axis. Fully convolutional: any input
/// edge that is a multiple of 8 runs. Batch 1; mini-batches accumulate gradients.
public final class PhaseNet {
    public let architecture: NetworkArchitecture
    let scratch = ConvScratch()
    let encoder: [ConvBlock]
    let amplitudeDecoder: Decoder
    let phaseDecoder: Decoder
    public let parameters: [Parameter]
    var code: Tensor?

    public init(architecture: NetworkArchitecture, seed: UInt64 = 0) throws {
        try architecture.validate()
        self.architecture = architecture
        let c = architecture.width, pg = architecture.channelsPerGroup
        let channels = [c, 2 * c, 2 * c, 4 * c, 4 * c, 8 * c, 8 * c]
        var blocks: [ConvBlock] = []
        var cin = 1
        for (i, cout) in channels.enumerated() {
            let stride = (i > 0 && cout > cin) ? 2 : 1
            blocks.append(ConvBlock(name: "encoder.\(i)", cin: cin, cout: cout, stride: stride, upsample: false,
                                    perGroup: pg, scratch: scratch))
            cin = cout
        }
        blocks[0].conv.computesInputGradient = false
        encoder = blocks
        amplitudeDecoder = Decoder(name: "amplitude", width: c, perGroup: pg, kind: .sigmoid, scratch: scratch)
        phaseDecoder = Decoder(name: "phase", width: c, perGroup: pg, kind: .piTanh, scratch: scratch)
        parameters = encoder.flatMap { $0.parameters } + amplitudeDecoder.parameters + phaseDecoder.parameters
        var rng = SeededGenerator(seed: seed)
        for b in encoder { b.conv.initialise(&rng) }
        for d in [amplitudeDecoder, phaseDecoder] {
            for b in d.blocks { b.conv.initialise(&rng) }
            d.head.initialise(&rng, gain: 1)
        }
    }

    public var parameterCount: Int { parameters.reduce(0) { $0 + $1.count } }

    /// Runs the network on a one-channel input [1, n, n, n]; returns amplitude and phase,
    /// each [1, n/2, n/2, n/2].
    public func forward(_ input: Tensor) -> (amplitude: Tensor, phase: Tensor) {
        precondition(input.shape.count == 4 && input.channels == 1 && input.spatial.allSatisfy { $0 % 8 == 0 && $0 > 0 },
                     "PhaseNet input must be [1, n, n, n] with n a multiple of 8, got \(input.shape)")
        var h = input
        for b in encoder { h = b.forward(h) }
        code = h
        return (amplitudeDecoder.forward(h), phaseDecoder.forward(h))
    }

    /// Back-propagates gradients of the outputs, accumulating every parameter's gradient.
    public func backward(amplitude dA: Tensor, phase dPhi: Tensor) {
        let g = amplitudeDecoder.backward(dA).copy()
        g.add(phaseDecoder.backward(dPhi))
        var h = g
        for b in encoder.reversed() { h = b.backward(h) }
    }

    public func zeroGrad() { for p in parameters { p.zeroGrad() } }

    /// The parameter of a given name, as written in model files.
    public func parameter(named name: String) -> Parameter? { parameters.first { $0.name == name } }
}
