import Foundation
import TFWeights

/// Compiled model code kept on disk, keyed by everything that determines it: the fused IR and
/// the kernel plan (so the spec and its sizes), the target CPU and features, the LLVM version
/// and tfc's version. A second run loads the object instead of optimising and generating code
/// again. An entry is `MAGIC key length checksum payload`; one that is truncated, fails its
/// checksum or carries another key is rebuilt.
public struct CompiledCodeCache {
    public let directory: String

    static let magic = Array("TFCOBJ1\n".utf8)

    /// `$TFC_CACHE_DIR`, else `$XDG_CACHE_HOME/tfc`, else `~/.cache/tfc`.
    public static var defaultDirectory: String {
        let env = ProcessInfo.processInfo.environment
        if let dir = env["TFC_CACHE_DIR"], !dir.isEmpty { return dir }
        if let xdg = env["XDG_CACHE_HOME"], !xdg.isEmpty { return xdg + "/tfc" }
        return NSHomeDirectory() + "/.cache/tfc"
    }

    public init(directory: String = CompiledCodeCache.defaultDirectory) {
        self.directory = directory
    }

    public func path(for key: String) -> String { "\(directory)/\(stableHash(key)).tfcobj" }

    public enum Lookup {
        case hit([UInt8])
        case miss
        /// The entry exists but is damaged or belongs to another key; why.
        case invalid(String)
    }

    public func load(key: String) -> Lookup {
        guard let data = FileManager.default.contents(atPath: path(for: key)) else { return .miss }
        let bytes = [UInt8](data)
        let keyBytes = Array(key.utf8)
        let header = Self.magic.count + 8 + keyBytes.count + 16
        guard bytes.count >= header, Array(bytes[0..<Self.magic.count]) == Self.magic else { return .invalid("bad header") }
        var offset = Self.magic.count
        func readU64() -> UInt64 {
            defer { offset += 8 }
            return bytes[offset..<offset + 8].enumerated().reduce(0) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        }
        let keyLength = Int(readU64())
        guard keyLength == keyBytes.count, Array(bytes[offset..<offset + keyLength]) == keyBytes else { return .invalid("stale entry (another key)") }
        offset += keyLength
        let length = Int(readU64()), checksum = readU64()
        guard bytes.count - offset == length else { return .invalid("truncated (\(bytes.count - offset) of \(length) bytes)") }
        let payload = Array(bytes[offset...])
        guard Self.checksum(payload) == checksum else { return .invalid("checksum mismatch") }
        return .hit(payload)
    }

    /// Writes an entry atomically (temporary file, then rename); failures only cost a recompile.
    public func store(key: String, object: [UInt8]) {
        var out = Self.magic
        func appendU64(_ v: UInt64) { for i in 0..<8 { out.append(UInt8(truncatingIfNeeded: v >> (8 * UInt64(i)))) } }
        let keyBytes = Array(key.utf8)
        appendU64(UInt64(keyBytes.count))
        out += keyBytes
        appendU64(UInt64(object.count))
        appendU64(Self.checksum(object))
        out += object
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let target = path(for: key)
        let temporary = target + ".tmp\(getpid())"
        let registration = InterruptCleanup.add(temporary)  // an interrupt leaves no partial entry
        defer { InterruptCleanup.remove(registration) }
        guard FileManager.default.createFile(atPath: temporary, contents: Data(out)) else { return }
        if rename(temporary, target) != 0 { unlink(temporary) }
    }

    /// The object for `key` from `cache` when it holds a sound entry, else `build()`'s, stored for
    /// the next run; a damaged entry is reported through `notes` and rebuilt. Nil `cache`
    /// builds every time. Returns the object and whether it came from the cache.
    public static func object(for key: String, in cache: CompiledCodeCache?, notes: (String) -> Void,
                              build: () throws -> [UInt8]) rethrows -> (object: [UInt8], hit: Bool) {
        if let cache {
            switch cache.load(key: key) {
            case .hit(let bytes): return (bytes, true)
            case .miss: break
            case .invalid(let why): notes("note: compiled-code cache entry \(cache.path(for: key)) is invalid (\(why)); rebuilding it")
            }
        }
        let object = try build()
        cache?.store(key: key, object: object)
        return (object, false)
    }

    /// FNV-1a over the payload, 64-bit.
    static func checksum(_ bytes: [UInt8]) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return h
    }
}
