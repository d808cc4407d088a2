/// The entries of a zip archive held in a `MappedFile`, with the offset of each entry's data.
///
/// Why not ZIPFoundation here: its `Entry` (0.9.20) keeps the data offset and the local header
/// offset internal, and it reads entries by copying them through `FileHandle` chunks. A PyTorch
/// checkpoint's tensors must be read in place from the mapping (random access, strides, a 6 GB
/// file), so this reader only parses the central directory (with Zip64) and hands out byte ranges
/// of the mapping. Writing (`TorchZipWriter`) uses ZIPFoundation.
struct ZipDirectory {
    struct Entry {
        var path: String
        /// Where the entry's bytes start in the file, and how many there are.
        var dataOffset: Int
        var size: Int
    }

    let entries: [Entry]

    init(_ file: MappedFile) throws {
        func fail(_ message: String) -> CheckpointError { CheckpointError(path: file.path, "corrupt zip archive: \(message)") }
        guard let all = file.bytes(0, file.count) else { throw fail("unreadable") }
        // End of central directory: the last "PK\5\6" within the final 64 KiB + 22 bytes.
        let minEOCD = 22
        guard file.count >= minEOCD else { throw fail("too short for a zip archive") }
        var eocd = -1
        var at = file.count - minEOCD
        let lowest = max(0, file.count - minEOCD - 65535)
        while at >= lowest {
            if all.le(UInt32.self, at: at) == 0x0605_4b50 { eocd = at; break }
            at -= 1
        }
        guard eocd >= 0 else { throw fail("no end-of-central-directory record") }
        var entryCount = Int(all.le(UInt16.self, at: eocd + 10))
        var directorySize = Int(all.le(UInt32.self, at: eocd + 12))
        var directoryOffset = Int(all.le(UInt32.self, at: eocd + 16))
        // Zip64: a locator just before the EOCD points at the 64-bit record.
        if eocd >= 20, all.le(UInt32.self, at: eocd - 20) == 0x0706_4b50 {
            let record = all.le(UInt64.self, at: eocd - 20 + 8)
            guard file.count >= 56, record <= UInt64(file.count - 56), all.le(UInt32.self, at: Int(record)) == 0x0606_4b50 else {
                throw fail("bad Zip64 end-of-central-directory record")
            }
            let r = Int(record)
            let count64 = all.le(UInt64.self, at: r + 32), size64 = all.le(UInt64.self, at: r + 40), offset64 = all.le(UInt64.self, at: r + 48)
            guard count64 < 1 << 32, size64 < UInt64(file.count), offset64 < UInt64(file.count) else { throw fail("bad Zip64 sizes") }
            entryCount = Int(count64); directorySize = Int(size64); directoryOffset = Int(offset64)
        }
        guard directoryOffset <= file.count, directorySize <= file.count - directoryOffset else {
            throw fail("central directory lies outside the file")
        }

        var entries: [Entry] = []
        var p = directoryOffset
        let end = directoryOffset + directorySize
        for index in 0..<entryCount {
            guard p + 46 <= end, all.le(UInt32.self, at: p) == 0x0201_4b50 else { throw fail("bad central directory entry \(index)") }
            let flags = all.le(UInt16.self, at: p + 8)
            let method = all.le(UInt16.self, at: p + 10)
            var compressed = UInt64(all.le(UInt32.self, at: p + 20))
            var size = UInt64(all.le(UInt32.self, at: p + 24))
            let nameLength = Int(all.le(UInt16.self, at: p + 28))
            let extraLength = Int(all.le(UInt16.self, at: p + 30))
            let commentLength = Int(all.le(UInt16.self, at: p + 32))
            var local = UInt64(all.le(UInt32.self, at: p + 42))
            guard p + 46 + nameLength + extraLength + commentLength <= end else { throw fail("entry \(index) runs past the central directory") }
            let name = String(decoding: UnsafeRawBufferPointer(rebasing: all[(p + 46) ..< (p + 46 + nameLength)]), as: UTF8.self)
            // Zip64 extended information: the 64-bit values of the fields set to 0xFFFFFFFF, in order.
            var e = p + 46 + nameLength
            let extraEnd = e + extraLength
            while e + 4 <= extraEnd {
                let id = all.le(UInt16.self, at: e), length = Int(all.le(UInt16.self, at: e + 2))
                guard e + 4 + length <= extraEnd else { throw fail("entry '\(name)': bad extra field") }
                if id == 0x0001 {
                    var q = e + 4
                    func next() throws -> UInt64 {
                        guard q + 8 <= e + 4 + length else { throw fail("entry '\(name)': short Zip64 field") }
                        defer { q += 8 }
                        return all.le(UInt64.self, at: q)
                    }
                    if size == 0xFFFF_FFFF { size = try next() }
                    if compressed == 0xFFFF_FFFF { compressed = try next() }
                    if local == 0xFFFF_FFFF { local = try next() }
                }
                e += 4 + length
            }
            if flags & 1 != 0 { throw CheckpointError(path: file.path, "zip entry '\(name)' is encrypted") }
            if method != 0 || compressed != size {
                throw CheckpointError(path: file.path, "zip entry '\(name)' is compressed (method \(method)); PyTorch checkpoints store entries uncompressed")
            }
            guard file.count >= 30, local <= UInt64(file.count - 30), all.le(UInt32.self, at: Int(local)) == 0x0403_4b50 else {
                throw fail("entry '\(name)': bad local header offset \(local)")
            }
            let l = Int(local)
            let data = l + 30 + Int(all.le(UInt16.self, at: l + 26)) + Int(all.le(UInt16.self, at: l + 28))
            guard size <= UInt64(file.count), data <= file.count - Int(size) else {
                throw fail("entry '\(name)' (\(size) bytes) runs past the end of the file")
            }
            entries.append(Entry(path: name, dataOffset: data, size: Int(size)))
            p += 46 + nameLength + extraLength + commentLength
        }
        self.entries = entries
    }

    /// Whether the file starts like a zip archive.
    static func looksLikeZip(_ file: MappedFile) -> Bool {
        guard let head = file.bytes(0, 4) else { return false }
        return head.le(UInt32.self, at: 0) == 0x0403_4b50
    }
}
