import TFRuntime
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Random initial weights for `tfc init`, reproducible from a seed.
///
/// Each tensor draws from its own stream, so its values depend only on (seed, name, size)
/// and not on which other tensors exist or their order: the stream is the runtime's
/// splitmix64 started at `tfc_mix64(seed ^ fnv1a64(name))`, turned into normal(0, initStd)
/// samples by Box–Muller in double precision (`tfc_fill_normal`, see tfc_random.h).
/// A spec with `initStd == 0` gets zeros.
public enum WeightInit {
    /// Elements generated per step when streaming to a file (even, so Box–Muller pairs never
    /// straddle two steps and chunked output equals one-shot output).
    static let chunk = 1 << 20

    /// The splitmix64 starting state for tensor `name` under `seed`.
    public static func initialState(seed: UInt64, name: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325  // FNV-1a 64 over the name's UTF-8 bytes
        for byte in name.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        return tfc_mix64(seed ^ hash)
    }

    /// Fills `buffer` with the first `buffer.count` values of `spec`'s stream.
    public static func fill(_ buffer: UnsafeMutableBufferPointer<Float>, for spec: TensorSpec, seed: UInt64) {
        var state = initialState(seed: seed, name: spec.name)
        fill(buffer, std: spec.initStd, state: &state)
    }

    static func fill(_ buffer: UnsafeMutableBufferPointer<Float>, std: Float, state: inout UInt64) {
        guard let base = buffer.baseAddress, !buffer.isEmpty else { return }
        if std == 0 { memset(base, 0, buffer.count * MemoryLayout<Float>.stride); return }
        tfc_fill_normal(base, buffer.count, std, &state)
    }

    /// All values of one tensor (for tests and small tensors; files are streamed instead).
    public static func values(for spec: TensorSpec, seed: UInt64) -> [Float] {
        [Float](unsafeUninitializedCapacity: spec.count) { buffer, count in
            buffer.initialize(repeating: 0)
            fill(buffer, for: spec, seed: seed)
            count = spec.count
        }
    }

    /// Writes a safetensors file with every tensor of `specs`, streaming one chunk at a time
    /// so memory stays small whatever the model size. `metadata` is stored with the seed
    /// added as `tfc.init.seed`.
    public static func write(_ specs: [TensorSpec], seed: UInt64, to path: String,
                             metadata: [String: String] = [:]) throws {
        var meta = metadata
        meta["tfc.init.seed"] = String(seed)
        var writer = SafetensorsWriter(metadata: meta)
        for spec in specs {
            var state = initialState(seed: seed, name: spec.name)
            writer.add(spec.name, shape: spec.shape, chunk: chunk) { _, buffer in
                fill(buffer, std: spec.initStd, state: &state)
            }
        }
        try writer.write(to: path)
    }
}
