import TFWeights
import Foundation
import ZIPFoundation

/// Writes a PyTorch zip checkpoint (`torch.save`'s format): `archive/data.pkl` first (PyTorch takes
/// the folder name from the first entry), then `byteorder`, the storages `data/N`, and `version`.
/// ZIPFoundation writes the container (stored entries, Zip64 past 4 GiB); the file is written under
/// a temporary name and renamed into place.
struct TorchZipWriter {
    /// A storage's bytes, produced on demand: `(offset, count)` → bytes.
    struct Storage {
        var key: String
        var size: Int
        var bytes: (Int, Int) throws -> Data
    }

    static func write(pickle: [UInt8], storages: [Storage], to target: OutputTarget) throws {
        let path = target.path
        // tfc's output policy (AtomicFile): ZIPFoundation builds the archive at the temporary
        // path, which commit() then renames over a regular file or copies into a device or FIFO.
        let file = try AtomicFile(target)
        try file.closeForExternalWriter()
        unlink(file.temporaryPath)  // ZIPFoundation creates the archive itself
        let temporary = URL(fileURLWithPath: file.temporaryPath)
        do {
            let archive = try Archive(url: temporary, accessMode: .create)
            // A fixed date: the same model gives the same bytes.
            let date = Date(timeIntervalSince1970: 315_532_800)
            func add(_ name: String, _ data: Data) throws {
                try archive.addEntry(with: "archive/" + name, type: .file, uncompressedSize: Int64(data.count), modificationDate: date,
                                     compressionMethod: .none) { position, size in data.subdata(in: Int(position) ..< Int(position) + size) }
            }
            try add("data.pkl", Data(pickle))
            try add("byteorder", Data("little".utf8))
            for storage in storages {
                try archive.addEntry(with: "archive/data/" + storage.key, type: .file, uncompressedSize: Int64(storage.size),
                                     modificationDate: date, compressionMethod: .none, bufferSize: 1 << 20) { position, size in
                    try storage.bytes(Int(position), size)
                }
            }
            try add("version", Data("3\n".utf8))
        } catch let error as CheckpointError {
            file.abandon()
            throw error
        } catch {
            file.abandon()
            throw CheckpointError(path: path, "cannot write: \(error)")
        }
        do { try file.commit() } catch let error as OutputError { throw CheckpointError(path: error.path, error.message) }
    }
}
