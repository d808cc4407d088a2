import XCTest
import TFSpec
@testable import TFIR

/// `scale:` must fit float32, where both backends apply it.
final class ScaleRangeTests: XCTestCase {
    func headline(_ scale: String) -> String? {
        let text = """
        model "t" {
            vocab = 32
            hidden = 16
            heads = 2
            layers = 1
            context = 8
        }
        block(x) {
            return x + pattention(layernorm(x), site: mlp, tokens: 4, scale: \(scale))
        }
        """
        let source = SourceFile(path: "t.tfs", text: text)
        do {
            _ = try lower(try parse(source), source: source)
            return nil
        } catch let d as Diagnostic {
            return d.headline
        } catch {
            return "\(error)"
        }
    }

    func testScaleOutsideFloat32IsALocatedError() {
        XCTAssertEqual(headline("1e39"), "t.tfs:9:70: error: 'scale:' 1e+39 does not fit in float32 (1.1754944e-38 to 3.4028235e+38)")
        XCTAssertEqual(headline("1e-40"), "t.tfs:9:70: error: 'scale:' 1e-40 does not fit in float32 (1.1754944e-38 to 3.4028235e+38)")
        XCTAssertNil(headline("3e38"))
        XCTAssertNil(headline("2.5"))
    }
}
