import TFIR

extension PattentionActivation {
    /// The kernel's activation for an IR norm variant: total, so a new variant fails to compile
    /// here instead of trapping at run time.
    public init(_ norm: PattentionNorm) {
        switch norm {
        case .l2NormGelu: self = .l2NormGelu
        case .geluL2Norm: self = .geluL2Norm
        case .softmax: self = .softmax
        }
    }
}
