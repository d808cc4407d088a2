import XCTest
import TFSpec
@testable import TFIR

/// `tokenizer = "NAME.tokenizer.json"`: a model field that names the model's tokenizer.
final class TokenizerFieldTests: XCTestCase {
    func spec(_ field: String) -> String {
        """
        model "t" {
            vocab = 32
            hidden = 16
            heads = 2
            layers = 1
            context = 8
            \(field)
        }
        block(x) {
            return x + pattention(layernorm(x), site: mlp, tokens: 8)
        }
        """
    }

    func lowered(_ text: String) throws -> Graph {
        let source = SourceFile(path: "t.tfs", text: text)
        return try lower(try parse(source), source: source)
    }

    func testFieldIsReadAsWritten() throws {
        XCTAssertEqual(try lowered(spec(#"tokenizer = "../tokenizers/t.tokenizer.json""#)).config.tokenizer, "../tokenizers/t.tokenizer.json")
        XCTAssertNil(try lowered(spec("")).config.tokenizer)
    }

    func testPrinterRoundTrip() throws {
        let text = spec(#"tokenizer = "dir with \"quotes\"/t.tokenizer.json""#)
        let ast = try parse(SourceFile(path: "t.tfs", text: text))
        let again = try parse(SourceFile(path: "t.tfs", text: ast.printed))
        XCTAssertEqual(again.printed, ast.printed)
        XCTAssertTrue(ast.printed.contains(#"tokenizer = "dir with \"quotes\"/t.tokenizer.json""#), ast.printed)
        XCTAssertEqual(try lowered(ast.printed).config.tokenizer, #"dir with "quotes"/t.tokenizer.json"#)
    }

    func testNonStringIsAnError() {
        for bad in ["tokenizer = 5", #"tokenizer = """#, "tokenizer = true"] {
            let source = SourceFile(path: "t.tfs", text: spec(bad))
            XCTAssertThrowsError(try lower(try parse(source), source: source), bad) { error in
                let headline = (error as? Diagnostic)?.headline ?? "\(error)"
                XCTAssertEqual(headline, "t.tfs:7:17: error: 'tokenizer' must be a non-empty string naming a tokenizer.json (relative to the spec file)", bad)
            }
        }
    }
}
