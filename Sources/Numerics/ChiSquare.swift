/// χ² of the seed study's Eq. (1): the misfit between measured intensities D and a model
/// intensity R over the measured pixels, with the model scaled to the data (k ΣR = ΣD):
///
///     χ² = Σ (√D − √(kR))² / Σ kR = 2 − 2 Σ√D√R / √(ΣD ΣR).
///
/// The second form needs only three sums, which the phasing kernels and the neural
/// physics layer accumulate in their own passes; one definition for both.
public enum ChiSquare {
    /// χ² from the sums over measured pixels of √D·√R (`dataModelAmplitudes`), R (`model`)
    /// and D (`data`); NaN when the model or the data is zero everywhere. Floored at 0 (the
    /// expanded form can round a hair below it for a perfect fit).
    @inlinable
    public static func eq1(dataModelAmplitudes: Double, model: Double, data: Double) -> Double {
        guard model > 0, data > 0 else { return .nan }
        return max(0, 2 - 2 * dataModelAmplitudes / (data * model).squareRoot())
    }
}
