import Foundation
import TFIR

/// The fused prefill kernel by kernel (`tfc bench model --profile`): the same calls `forward`
/// makes, in the same order on the same table, but each made from here and timed alone.
extension FusedExecutor {
    /// Time spent in one kind of kernel call during a forward pass.
    public struct KindTime: Sendable {
        public var kind: String
        public var calls: Int
        public var seconds: Double

        public init(kind: String, calls: Int, seconds: Double) {
            self.kind = kind; self.calls = calls; self.seconds = seconds
        }
    }

    /// `forward(ids)` with every kernel call timed; the kinds in order of first call. The logits
    /// are those `forward` computes (the calls and their arguments are the program's).
    public func profiledForward(_ ids: [Int32]) throws -> (logits: Matrix, kinds: [KindTime]) {
        var entries: [String: KernelEntryPoint] = [:]
        for c in calls where entries[c.symbol] == nil { entries[c.symbol] = try jit.kernel(c.symbol) }
        prepare(ids)
        let rows = ids.count, p0 = position
        var kinds: [KindTime] = []
        var index: [String: Int] = [:]
        let logits = intoFreshLogits(rows: rows) {
            for (c, kind) in zip(calls, callKinds) {
                // The argument gathering `KernelModule.addProgram` emits, done here before the clock starts.
                let args: [UnsafeMutableRawPointer?] = c.args.map { a in
                    guard let stride = a.lastRowStride else { return table[a.index] }
                    return table[a.index].map { $0 + 4 * (rows - 1) * stride }
                }
                let n: Int
                switch c.rows {
                case .all: n = rows
                case .one: n = 1
                case .constant(let k): n = k
                }
                let position = c.lastRowPosition ? p0 + rows - 1 : p0
                let entry = entries[c.symbol]!
                let start = DispatchTime.now().uptimeNanoseconds
                args.withUnsafeBufferPointer { entry($0.baseAddress, Int64(n), Int64(position)) }
                let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9
                if let i = index[kind] {
                    kinds[i].calls += 1
                    kinds[i].seconds += seconds
                } else {
                    index[kind] = kinds.count
                    kinds.append(KindTime(kind: kind, calls: 1, seconds: seconds))
                }
            }
        }
        position += rows
        return (logits, kinds)
    }
}
