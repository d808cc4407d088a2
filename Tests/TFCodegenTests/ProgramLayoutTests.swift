import XCTest
import TFIR
import TFPasses
import TFTestSupport
@testable import TFCodegen

/// The one program layout the JIT, the weights-file writer and the C host read: every slot
/// placed, nothing overlapping, large regions aligned as mapped files and huge pages need, and
/// the numbers the C host reads kept as earlier builds wrote them.
final class ProgramLayoutTests: XCTestCase {
    func program(_ file: String, _ format: WeightFormat, _ vector: VectorTarget, kv: KVCacheFormat = .f32) throws -> ModelProgram {
        let fused = try PassPipeline.fusion.run(try specGraph(file))
        return try ModelProgram(fused: fused, into: try KernelModule(name: "layout", target: .portable(vector)), weightFormat: format, kvFormat: kv)
    }

    func testEverySlotIsPlacedAndNothingOverlaps() throws {
        for file in ["specs/tiny.tfs", "specs/examples/two-mlp.tfs"] {
            for format in WeightFormat.allCases {
                for vector in [VectorTarget.avx2, .avx512] {
                    let p = try program(file, format, vector)
                    let layout = try ProgramLayout(p)
                    let what = "\(file) \(format) \(vector.name)"
                    XCTAssertEqual(layout.placements.count, p.slots.count, what)

                    // Weights: in order, disjoint, aligned, sized by their kind.
                    var end = 0
                    for e in layout.entries {
                        XCTAssertGreaterThanOrEqual(e.offset, end, "\(what) \(e.name)")
                        XCTAssertEqual(e.offset % (e.bytes >= 1 << 20 ? 4096 : 64), 0, "\(what) \(e.name)")
                        switch e.kind {
                        case .raw: XCTAssertEqual(e.bytes, 4 * e.elements, what)
                        case .rawBF16: XCTAssertEqual(e.bytes, 2 * e.elements, what)
                        case .packed, .packedTransposed: XCTAssertEqual(e.bytes, e.layout!.storedBytes, what)
                        }
                        end = e.offset + e.bytes
                    }
                    XCTAssertLessThanOrEqual(end, layout.weightsBytes, what)

                    // Arena: one region per activation buffer (its column views inside it), per
                    // scratch buffer and per cache; the regions are disjoint.
                    var regions: [String: Range<Int>] = [:]
                    for (slot, placement) in zip(p.slots, layout.placements) {
                        switch (slot, placement) {
                        case (.raw(let name), .weight(let e)), (.rawBF16(let name), .weight(let e)), (.packed(let name, _, _), .weight(let e)):
                            XCTAssertEqual(layout.entries[e].name, name, what)
                        case (.buffer(let index, let column), .arena(let offset, let floats)):
                            let start = offset - 4 * column
                            let region = start ..< start + 4 * (floats + column)
                            XCTAssertEqual(region.count, 4 * layout.rows * p.plan.bufferColumns[index], what)
                            if let known = regions["buffer \(index)"] { XCTAssertEqual(known, region, "\(what): the views of buffer \(index) share it") }
                            regions["buffer \(index)"] = region
                        case (.scratch(let i, _), .arena(let offset, let floats)):
                            regions["scratch \(i)"] = offset ..< offset + 4 * floats
                        case (.keyCache(let i, let floats), .arena(let offset, let placed)), (.valueCache(let i, let floats), .arena(let offset, let placed)):
                            XCTAssertEqual(placed, floats, what)
                            regions["\(slot) \(i)"] = offset ..< offset + 4 * floats
                        case (.tokens, .tokens), (.logits, .logits):
                            break
                        default:
                            XCTFail("\(what): slot \(slot) placed as \(placement)")
                        }
                    }
                    let sorted = regions.values.sorted { $0.lowerBound < $1.lowerBound }
                    for (a, b) in zip(sorted, sorted.dropFirst()) { XCTAssertLessThanOrEqual(a.upperBound, b.lowerBound, "\(what): arena regions overlap") }
                    for r in sorted where r.count >= 4 << 20 { XCTAssertEqual(r.lowerBound % (2 << 20), 0, what) }
                    XCTAssertLessThanOrEqual(sorted.last!.upperBound, layout.arenaBytes, what)
                }
            }
        }
    }

    /// The KV-cache format changes the arena, never the weights (the weights file is shared).
    func testTheCacheFormatLeavesTheWeightsAlone() throws {
        let f32 = try ProgramLayout(try program("specs/tiny.tfs", .f32, .avx512))
        let bf16 = try ProgramLayout(try program("specs/tiny.tfs", .f32, .avx512, kv: .bf16))
        XCTAssertEqual(f32.entries, bf16.entries)
        XCTAssertLessThan(bf16.arenaBytes, f32.arenaBytes)
    }

    /// Raw entries as stored (f32, or each value rounded to bf16); a tensor of the wrong size is a
    /// one-line error.
    func testMaterialiseRawEntries() throws {
        let values: [Float] = [1, -2.5, 3.14159, 1e-3, 65504, -0.0078125, 7]
        let raw = ProgramLayout.WeightEntry(name: "t", kind: .raw, layout: nil, elements: values.count, bytes: 4 * values.count, offset: 0)
        let bf16 = ProgramLayout.WeightEntry(name: "t", kind: .rawBF16, layout: nil, elements: values.count, bytes: 2 * values.count, offset: 0)
        var f = [Float](repeating: .nan, count: values.count)
        var h = [UInt16](repeating: 0xffff, count: values.count)
        try values.withUnsafeBufferPointer { v in
            try f.withUnsafeMutableBytes { try raw.materialise(from: v, into: $0.baseAddress!) }
            try h.withUnsafeMutableBytes { try bf16.materialise(from: v, into: $0.baseAddress!) }
        }
        XCTAssertEqual(f, values)
        // bf16 is the top half of the float32, rounded to nearest even.
        XCTAssertEqual(h, values.map { x -> UInt16 in
            let b = x.bitPattern
            return UInt16((b + 0x7fff + ((b >> 16) & 1)) >> 16)
        })
        XCTAssertThrowsError(try values.dropLast().withUnsafeBufferPointer { v in try f.withUnsafeMutableBytes { try raw.materialise(from: v, into: $0.baseAddress!) } }) {
            XCTAssertEqual("\($0)", "codegen: parameter t has 6 floats, expected 7")
        }
    }

    /// The numbers compiled programs and weights files hold: changing one would misread every
    /// file already written (bump TFC_AOT_FORMAT_VERSION / TFC_WEIGHTS_VERSION instead).
    func testTheCHostsNumbersAreStable() {
        let header = AOTModel.layoutHeader
        for line in ["#define TFC_AOT_FORMAT_VERSION 5", "#define TFC_WEIGHTS_MAGIC \"TFCWGHT1\"", "#define TFC_WEIGHTS_VERSION 4",
                     "enum { TFC_AOT_FORMAT = 0, TFC_AOT_VOCAB = 1, TFC_AOT_HIDDEN = 2, TFC_AOT_CONTEXT = 3, TFC_AOT_END_TOKEN = 4, "
                         + "TFC_AOT_SLOT_COUNT = 5, TFC_AOT_ARENA_BYTES = 6, TFC_AOT_WEIGHTS_BYTES = 7, TFC_AOT_WEIGHT_COUNT = 8, "
                         + "TFC_AOT_LAYOUT_HASH = 9, TFC_AOT_LAST_ROW_ONLY = 10, TFC_AOT_INCREMENTAL = 11, TFC_AOT_WEIGHTS_FORMAT = 12, "
                         + "TFC_AOT_KV_FORMAT = 13 };",
                     "#define TFC_AOT_INFO_COUNT 14","enum { TFC_SLOT_WEIGHT = 0, TFC_SLOT_ARENA = 1, TFC_SLOT_TOKENS = 2, TFC_SLOT_LOGITS = 3 };",
                     "enum { TFC_SLOT_KIND = 0, TFC_SLOT_OFFSET = 1, TFC_SLOT_SIZE = 2, TFC_SLOT_ENTRY = 3 };",
                     "#define TFC_AOT_SLOT_FIELDS 4",
                     "enum { TFC_WEIGHT_RAW = 0, TFC_WEIGHT_PACKED_TRANSPOSED = 1, TFC_WEIGHT_PACKED = 2, TFC_WEIGHT_RAW_BF16 = 3 };",
                     "enum { TFC_WEIGHTS_FORMAT_F32 = 0, TFC_WEIGHTS_FORMAT_BF16 = 1, TFC_WEIGHTS_FORMAT_INT8 = 2 };"] {
            XCTAssertTrue(header.split(separator: "\n").contains(Substring(line)), "\(line)\n\(header)")
        }
    }
}
