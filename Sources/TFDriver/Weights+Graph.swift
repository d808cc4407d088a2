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

    /// Opens a weights file and checks it holds exactly this graph's parameters.
    func loadWeights(_ path: String) throws -> WeightFile {
        let file = try WeightFile(path: path)
        try file.validate(against: tensorSpecs)
        return file
    }
}
