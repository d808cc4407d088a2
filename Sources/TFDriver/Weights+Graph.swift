import TFIR
import TFWeights

extension Graph {
    /// The parameters as the weight loader's expected-tensor list.
    var tensorSpecs: [TensorSpec] {
        parameters.map { p in
            let std: Float
            switch p.initialization {
            case .normal(let s): std = Float(s)
            case .constant: std = 0
            }
            return TensorSpec(name: p.name, shape: p.shape, initStd: std)
        }
    }

    /// Opens a weights file and checks it holds exactly this graph's parameters, all finite unless
    /// `allowNonFinite` (`--allow-nonfinite`).
    func loadWeights(_ path: String, allowNonFinite: Bool = false) throws -> WeightFile {
        let file = try WeightFile(path: path)
        try file.validate(against: tensorSpecs)
        try file.checkFinite(allowed: allowNonFinite)
        return file
    }
}
