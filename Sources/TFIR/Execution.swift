/// A row-major float32 matrix: what executors return (logits `[T, vocab]`).
public struct Matrix: Equatable, Sendable {
    public var rows: Int
    public var columns: Int
    public var data: [Float]

    public init(rows: Int, columns: Int, data: [Float]? = nil) {
        self.rows = rows
        self.columns = columns
        self.data = data ?? [Float](repeating: 0, count: rows * columns)
    }

    /// Row `i` as an array.
    public func row(_ i: Int) -> ArraySlice<Float> { data[(i * columns)..<((i + 1) * columns)] }
}

/// What every backend offers the commands: forward passes that continue from a KV cache.
public protocol ModelExecutor: AnyObject {
    var graph: Graph { get }
    /// Tokens already in the KV caches (the position of the next token).
    var position: Int { get }
    /// Runs `tokens` at positions `position ..< position + tokens.count`; returns logits `[T, vocab]`.
    /// The caller has checked the ids and that the context is not exceeded.
    func forward(_ tokens: [Int32]) -> Matrix
    /// Empties the KV caches.
    func reset()
}
