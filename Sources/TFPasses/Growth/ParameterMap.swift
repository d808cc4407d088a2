import TFIR

/// How generated rows of a new tensor are filled.
public enum Fill: Equatable, Sendable {
    case zero
    case constant(Double)
    /// normal(0, std) values from the random stream called `stream`, starting `skipRows` rows into
    /// it. A fresh tensor uses its own name as the stream, so its values are what `tfc init` gives
    /// a tensor of that name with the same seed.
    case normal(std: Double, stream: String, skipRows: Int)

    public var isZero: Bool { self == .zero || self == .constant(0) }
}

/// A run of consecutive rows (first-axis slices) of a new tensor.
public enum RowSegment: Equatable, Sendable {
    /// Rows `start ..< start + count` of the old tensor `from`.
    case copy(from: String, start: Int, count: Int)
    /// `count` generated rows.
    case fill(Fill, count: Int)

    public var count: Int {
        switch self {
        case .copy(_, _, let count), .fill(_, let count): return count
        }
    }
}

/// What a growth rewrite reports about the weights: for every parameter of the rewritten graph,
/// the rows it is made of, in terms of the parameters of the graph before the rewrite. A renamed
/// tensor (a layer shifted by an insertion) is one `copy` of its old name; a grown site is its old
/// rows followed by zero (or small random) rows; a fresh tensor is one `fill`.
public struct ParameterMap: Equatable, Sendable {
    public var tensors: [String: [RowSegment]]

    public init(_ tensors: [String: [RowSegment]] = [:]) { self.tensors = tensors }

    /// Every parameter of `graph` copied from itself.
    public static func identity(of graph: Graph) -> ParameterMap {
        var map = ParameterMap()
        for p in graph.parameters { map.tensors[p.name] = [.copy(from: p.name, start: 0, count: p.rows)] }
        return map
    }

    /// `self` applied after `earlier`: the result maps the parameters `self` produces straight to
    /// the parameters `earlier` starts from.
    public func composed(after earlier: ParameterMap) throws -> ParameterMap {
        var result = ParameterMap()
        for (name, segments) in tensors {
            var composed: [RowSegment] = []
            for segment in segments {
                switch segment {
                case .copy(let from, let start, let count):
                    guard let source = earlier.tensors[from] else {
                        throw GrowthError(internal: "weight plan: '\(name)' copies '\(from)', which the previous rewrite does not produce")
                    }
                    composed += try Self.slice(source, start: start, count: count, of: from)
                case .fill:
                    composed.append(segment)
                }
            }
            result.tensors[name] = Self.merged(composed)
        }
        return result
    }

    /// Rows `start ..< start + count` of a tensor made of `segments`.
    static func slice(_ segments: [RowSegment], start: Int, count: Int, of name: String) throws -> [RowSegment] {
        var out: [RowSegment] = []
        var offset = 0
        let end = start + count
        for segment in segments {
            let lower = max(start, offset), upper = min(end, offset + segment.count)
            if lower < upper {
                switch segment {
                case .copy(let from, let first, _):
                    out.append(.copy(from: from, start: first + lower - offset, count: upper - lower))
                case .fill(.normal(let std, let stream, let skip), _):
                    out.append(.fill(.normal(std: std, stream: stream, skipRows: skip + lower - offset), count: upper - lower))
                case .fill(let fill, _):
                    out.append(.fill(fill, count: upper - lower))
                }
            }
            offset += segment.count
        }
        guard out.reduce(0, { $0 + $1.count }) == count else {
            throw GrowthError(internal: "weight plan: rows \(start)..<\(end) of '\(name)' are out of range (it has \(offset))")
        }
        return out
    }

    /// Joins neighbouring segments that continue each other.
    static func merged(_ segments: [RowSegment]) -> [RowSegment] {
        var out: [RowSegment] = []
        for segment in segments where segment.count > 0 {
            if let last = out.last {
                switch (last, segment) {
                case let (.copy(a, s, c), .copy(b, t, d)) where a == b && s + c == t:
                    out[out.count - 1] = .copy(from: a, start: s, count: c + d); continue
                case let (.fill(f, c), .fill(g, d)) where f == g && (f == .zero || { if case .constant = f { return true } else { return false } }()):
                    out[out.count - 1] = .fill(f, count: c + d); continue
                default: break
                }
            }
            out.append(segment)
        }
        return out
    }
}

extension Parameter {
    /// Rows along the first axis (the parameter tokens of a site).
    var rows: Int { shape.first ?? 1 }
    /// Elements per row.
    var rowSize: Int { shape.dropFirst().reduce(1, *) }
}

/// How to build every tensor of a grown model from the old model's tensors: the composition of the
/// growth rewrites' parameter maps, checked against both graphs' parameter lists. One routine,
/// `materialise`, turns any planned tensor into values.
public struct WeightPlan: Equatable, Sendable {
    public struct Tensor: Equatable, Sendable {
        public var name: String
        public var shape: [Int]
        public var segments: [RowSegment]

        public var count: Int { shape.reduce(1, *) }
        public var rowSize: Int { shape.dropFirst().reduce(1, *) }

        /// The tensor is an unchanged copy of the old tensor with the same name.
        public var isUnchanged: Bool {
            segments.count == 1 && segments[0] == .copy(from: name, start: 0, count: shape.first ?? 1)
        }
        /// The whole old tensor under a new name (a layer renumbered by an insertion).
        public var renamedFrom: String? {
            guard segments.count == 1, case .copy(let from, 0, _) = segments[0], from != name else { return nil }
            return from
        }
    }

    /// In the new graph's parameter order.
    public var tensors: [Tensor]

    /// Checks `map` produces exactly `new`'s parameters, with the right row counts, from rows that
    /// exist in `old`'s parameters of the same row size.
    public init(map: ParameterMap, old: [Parameter], new: [Parameter]) throws {
        let oldByName = Dictionary(old.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        var tensors: [Tensor] = []
        for p in new {
            guard let segments = map.tensors[p.name] else {
                throw GrowthError(internal: "weight plan: nothing says how to make '\(p.name)'")
            }
            let rows = segments.reduce(0) { $0 + $1.count }
            guard rows == p.rows else {
                throw GrowthError(internal: "weight plan: '\(p.name)' gets \(rows) rows, the grown model needs \(p.rows)")
            }
            for case .copy(let from, let start, let count) in segments {
                guard let source = oldByName[from] else {
                    throw GrowthError(internal: "weight plan: '\(p.name)' copies '\(from)', which the original model does not have")
                }
                guard source.rowSize == p.rowSize, start >= 0, start + count <= source.rows else {
                    throw GrowthError(internal: "weight plan: '\(p.name)' copies rows \(start)..<\(start + count) of '\(from)' \(source.shape), which do not fit")
                }
            }
            tensors.append(Tensor(name: p.name, shape: p.shape, segments: segments))
        }
        if map.tensors.count != new.count {
            let extra = Set(map.tensors.keys).subtracting(new.map(\.name)).sorted()
            throw GrowthError(internal: "weight plan: makes tensors the grown model does not have: \(extra.joined(separator: ", "))")
        }
        self.tensors = tensors
    }

    /// Writes `tensor`'s values into `out` (`tensor.count` elements): copied rows from `source`
    /// (an old tensor's values by name), zero or constant rows, and random rows from `normal`, which
    /// fills a buffer with the first values of a named normal(0, std) stream.
    public static func materialise(_ tensor: Tensor, into out: UnsafeMutableBufferPointer<Float>,
                                   source: (String) -> UnsafeBufferPointer<Float>,
                                   normal: (_ stream: String, _ std: Double, _ out: UnsafeMutableBufferPointer<Float>) -> Void) {
        precondition(out.count == tensor.count, "buffer size does not match \(tensor.name)")
        let width = tensor.rowSize
        var row = 0
        for segment in tensor.segments {
            let target = UnsafeMutableBufferPointer(rebasing: out[(row * width)..<((row + segment.count) * width)])
            switch segment {
            case .copy(let from, let start, let count):
                let values = source(from)
                let slice = UnsafeBufferPointer(rebasing: values[(start * width)..<((start + count) * width)])
                if let base = target.baseAddress, let src = slice.baseAddress { base.update(from: src, count: slice.count) }
            case .fill(.zero, _):
                target.update(repeating: 0)
            case .fill(.constant(let value), _):
                target.update(repeating: Float(value))
            case .fill(.normal(let std, let stream, let skip), let count):
                if skip == 0 {
                    normal(stream, std, target)
                } else {
                    // A slice from inside a stream: draw the rows before it too, keep the tail.
                    let all = UnsafeMutableBufferPointer<Float>.allocate(capacity: (skip + count) * width)
                    defer { all.deallocate() }
                    all.initialize(repeating: 0)
                    normal(stream, std, all)
                    if let base = target.baseAddress, let src = all.baseAddress { base.update(from: src + skip * width, count: count * width) }
                }
            }
            row += segment.count
        }
    }

    /// What the plan does, in numbers.
    public struct Summary: Equatable, Sendable {
        /// Tensors copied unchanged, under a new name, grown by rows, or made fresh.
        public var unchanged = 0, renamed = 0, grown = 0, fresh = 0
        /// Elements copied from the old model, set to zero (or a constant), drawn at random.
        public var copiedElements = 0, zeroElements = 0, randomElements = 0
    }

    public var summary: Summary {
        var s = Summary()
        for t in tensors {
            let hasCopy = t.segments.contains { if case .copy = $0 { return true } else { return false } }
            if t.isUnchanged { s.unchanged += 1 } else if t.renamedFrom != nil { s.renamed += 1 } else if hasCopy { s.grown += 1 } else { s.fresh += 1 }
            for segment in t.segments {
                let elements = segment.count * t.rowSize
                switch segment {
                case .copy: s.copiedElements += elements
                case .fill(.normal, _): s.randomElements += elements
                case .fill: s.zeroElements += elements
                }
            }
        }
        return s
    }

    /// One line per tensor that is not an unchanged copy, e.g.
    /// `layers.0.mlp.key_param_tokens [512, 64] = layers.0.mlp.key_param_tokens[0..<256] ++ 256 zero rows`.
    public var description: String {
        tensors.filter { !$0.isUnchanged }.map { t in
            let parts = t.segments.map { segment -> String in
                switch segment {
                case .copy(let from, let start, let count):
                    return start == 0 && from != t.name ? "\(from)[..<\(count)]" : "\(from)[\(start)..<\(start + count)]"
                case .fill(.zero, let count): return "\(count) zero rows"
                case .fill(.constant(let v), let count): return "\(count) rows of \(v)"
                case .fill(.normal(let std, _, _), let count): return "\(count) rows of normal(0, \(std))"
                }
            }
            return "\(t.name) \(t.shape) = \(parts.joined(separator: " ++ "))"
        }.joined(separator: "\n")
    }
}
