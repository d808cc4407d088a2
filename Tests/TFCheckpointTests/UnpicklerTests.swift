import XCTest
@testable import TFCheckpoint

/// The restricted unpickler on pickles written by CPython's own `pickle` (protocols 0, 2, 4, 5) of
/// {'a': [1, -2, 3.5, 'x', None, True, False, (1,2), (1,2,3,4)], 'b': OrderedDict(k=b'by'),
///  'big': 2**70, 'neg': -300, 'set': {1}, 'f': frozenset([2]), 'self': <the list 'a'>}.
final class UnpicklerTests: XCTestCase {
    static let pickles: [Int: String] = [
        0: "286470300a56610a70310a286c70320a49310a61492d320a6146332e350a6156780a70330a614e614930310a614930300a612849310a49320a7470340a612849310a49320a49330a49340a7470350a617356620a70360a63636f6c6c656374696f6e730a4f726465726564446963740a70370a28745270380a566b0a70390a635f636f646563730a656e636f64650a7031300a285662790a7031310a566c6174696e310a7031320a747031330a527031340a7373566269670a7031350a4c313138303539313632303731373431313330333432344c0a73566e65670a7031360a492d3330300a73567365740a7031370a635f5f6275696c74696e5f5f0a7365740a7031380a28286c7031390a49310a61747032300a527032310a7356660a7032320a635f5f6275696c74696e5f5f0a66726f7a656e7365740a7032330a28286c7032340a49320a61747032350a527032360a735673656c660a7032370a67320a732e",
        2: "80027d71002858010000006171015d7102284b014afeffffff47400c00000000000058010000007871034e88894b014b02867104284b014b024b034b0474710565580100000062710663636f6c6c656374696f6e730a4f726465726564446963740a71072952710858010000006b7109635f636f646563730a656e636f64650a710a58020000006279710b58060000006c6174696e31710c86710d52710e735803000000626967710f8a0900000000000000004058030000006e656771104ad4feffff58030000007365747111635f5f6275696c74696e5f5f0a7365740a71125d71134b01618571145271155801000000667116635f5f6275696c74696e5f5f0a66726f7a656e7365740a71175d71184b026185711952711a580400000073656c66711b6802752e",
        4: "8004959e000000000000007d94288c0161945d94284b014afeffffff47400c0000000000008c0178944e88894b014b028694284b014b024b034b047494658c0162948c0b636f6c6c656374696f6e73948c0b4f726465726564446963749493942952948c016b944302627994738c03626967948a090000000000000000408c036e6567944ad4feffff8c03736574948f94284b01908c016694284b0291948c0473656c66946802752e",
        5: "8005959e000000000000007d94288c0161945d94284b014afeffffff47400c0000000000008c0178944e88894b014b028694284b014b024b034b047494658c0162948c0b636f6c6c656374696f6e73948c0b4f726465726564446963749493942952948c016b944302627994738c03626967948a090000000000000000408c036e6567944ad4feffff8c03736574948f94284b01908c016694284b0291948c0473656c66946802752e",
    ]

    static func bytes(_ hex: String) -> [UInt8] {
        var out: [UInt8] = []
        var i = hex.startIndex
        while i < hex.endIndex {
            let j = hex.index(i, offsetBy: 2)
            out.append(UInt8(hex[i..<j], radix: 16)!)
            i = j
        }
        return out
    }

    /// Holds the containers of what `load` returns.
    let arena = PickleArena()

    func load(_ bytes: [UInt8]) throws -> PickleValue {
        try bytes.withUnsafeBytes { raw in
            try Unpickler.load(raw, path: "test.pkl", into: arena, build: TorchGlobals.build(path: "test.pkl"),
                               persistentLoad: { _ in throw CheckpointError(path: "test.pkl", "no persistent ids") }).0
        }
    }

    func testEveryProtocolBuildsTheSameValue() throws {
        for (protocolVersion, hex) in Self.pickles.sorted(by: { $0.key < $1.key }) {
            let root = try XCTUnwrap(try load(Self.bytes(hex)).asDict, "protocol \(protocolVersion)")
            guard case .list(let a) = try XCTUnwrap(root["a"]) else { return XCTFail("'a' is not a list") }
            XCTAssertEqual(a.items.count, 9)
            XCTAssertEqual(a.items[0].asInt, 1)
            XCTAssertEqual(a.items[1].asInt, -2)
            guard case .float(let f) = a.items[2] else { return XCTFail("not a float: \(a.items[2])") }
            XCTAssertEqual(f, 3.5)
            XCTAssertEqual(a.items[3].asString, "x")
            guard case .none = a.items[4] else { return XCTFail("not None") }
            guard case .bool(true) = a.items[5], case .bool(false) = a.items[6] else { return XCTFail("bools: \(a.items[5]), \(a.items[6])") }
            XCTAssertEqual(a.items[7].asTuple?.compactMap(\.asInt), [1, 2])
            XCTAssertEqual(a.items[8].asTuple?.compactMap(\.asInt), [1, 2, 3, 4])
            XCTAssertEqual(root["neg"]?.asInt, -300)
            guard case .bigInt(let big) = try XCTUnwrap(root["big"]) else { return XCTFail("2**70 is not a big integer") }
            XCTAssertEqual(big, [0, 0, 0, 0, 0, 0, 0, 0, 0x40])
            // The memo gives back the same list object.
            guard case .list(let again) = try XCTUnwrap(root["self"]) else { return XCTFail("'self' is not a list") }
            XCTAssertTrue(again === a)
            XCTAssertNotNil(root["b"]?.asDict)
        }
    }

    func testMalformedPicklesAreOneLineErrors() throws {
        let cases: [([UInt8], String)] = [
            ([0x80, 0x02, 0xFF], "unknown opcode 0xFF"),
            ([0x80, 0x02, 0x58, 0x10, 0, 0, 0, 0x61], "length 16 runs past the end"),
            ([0x80, 0x02, 0x2E], "stack underflow"),
            ([0x80, 0x02, 0x4B], "truncated"),
            ([0x80, 0x02, 0x68, 0x05, 0x2E], "memo entry 5 is not defined"),
            ([0x80, 0x02, 0x4B, 0x01], "truncated"),
            ([0x80, 0x02, 0x74, 0x2E], "no mark on the stack"),
            ([0x80, 0x02, 0x4B, 0x01, 0x61, 0x2E], "stack underflow"),
            ([0x80, 0x02, 0x5D, 0x28, 0x4B, 0x01, 0x4B, 0x02, 0x75, 0x2E], "SETITEMS on a non-dict"),
            ([0x80, 0x09], "unsupported pickle protocol 9"),
        ]
        for (bytes, expected) in cases {
            XCTAssertThrowsError(try load(bytes), "\(bytes)") { error in
                let text = "\(error)"
                XCTAssertTrue(text.hasPrefix("test.pkl: error: "), text)
                XCTAssertTrue(text.contains(expected), "\(text) does not say \(expected)")
                XCTAssertFalse(text.contains("\n"))
            }
        }
    }

    /// 300,000 nested tuples, and 300,000 nested lists: refused, or torn
    /// down without recursion, never a stack overflow.
    func testDeepNestingNeverOverflowsTheStack() throws {
        let tuples: [UInt8] = [0x80, 0x02, 0x4E] + [UInt8](repeating: 0x85, count: 300_000) + [0x2E]
        XCTAssertThrowsError(try load(tuples)) { error in
            XCTAssertTrue("\(error)".contains("tuples nested deeper than 200"), "\(error)")
        }
        // MARK × n, EMPTY_LIST, LIST × n: each LIST wraps the list below it, innermost first.
        let n = 300_000
        let lists: [UInt8] = [0x80, 0x02] + [UInt8](repeating: 0x28, count: n) + [0x5D] + [UInt8](repeating: 0x6C, count: n) + [0x2E]
        do {
            let arena = PickleArena()
            let value = try lists.withUnsafeBytes { raw in
                try Unpickler.load(raw, path: "test.pkl", into: arena, build: TorchGlobals.build(path: "test.pkl"),
                                   persistentLoad: { _ in .none }).0
            }
            guard case .list(let first) = value else { return XCTFail("not a list") }
            XCTAssertEqual(first.items.count, 1)
        }  // the arena and the chain are released here
    }

    func testUnknownGlobalsBecomeInertPlaceholders() throws {
        // GLOBAL 'posix system', ('echo hi',), REDUCE, then BUILD with a state dict.
        var bytes: [UInt8] = [0x80, 0x02, 0x63] + Array("posix\nsystem\n".utf8)
        bytes += [0x58, 7, 0, 0, 0] + Array("echo hi".utf8) + [0x85, 0x52, 0x7D, 0x62, 0x2E]
        guard case .object(let object) = try load(bytes) else { return XCTFail("not a placeholder") }
        XCTAssertEqual(object.callable, "posix.system")
        XCTAssertEqual(object.arguments.first?.asString, "echo hi")
    }
}
