import XCTest
@testable import TFCheckpoint

/// The trainer's YAML in both styles it is written in, and GPT-NeoX's defaults.
final class ConfigFileTests: XCTestCase {
    func read(_ text: String) throws -> OfficialConfig {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("tfc-config-\(UUID().uuidString).yml").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        return try OfficialConfig(keys: try ConfigFile.read(path), path: path)
    }

    func testBlockStyleYAMLWithDefaults() throws {
        let config = try read("""
            # block style, hyphenated keys
            num-layers: 3
            hidden-size: 64
            num-attention-heads: 4
            qkv_slot_num: 16
            proj_slot_num: 8
            ffn_slot_num: 32
            seq-length: 128
            pos-emb: rotary
            norm: layernorm_nonparam   # the blocks' norm
            gpt_j_residual: true
            no_weight_tying: True
            """)
        XCTAssertEqual([config.layers, config.hidden, config.heads, config.qkvTokens, config.projTokens, config.ffnTokens, config.context],
                       [3, 64, 4, 16, 8, 32, 128])
        XCTAssertTrue(config.parallelBlock)
        XCTAssertFalse(config.tieEmbeddings)
        // Absent: GPT-NeoX's defaults.
        XCTAssertEqual(config.rotaryFraction, 1.0)
        XCTAssertEqual(config.rotaryBase, 10000)
        XCTAssertEqual(config.normEps, 1e-5)
        XCTAssertTrue(config.finalNormAffine)
        XCTAssertEqual(config.pattentionNorm, .l2NormGelu)
    }

    func testFlowStyleYAMLWithCommentsAndTrailingCommas() throws {
        let config = try read("""
            {
              # comment with "quotes" and a comma,
              "num_layers": 2, "hidden_size": 32, "num_attention_heads": 2,
              "qkv_slot_num": 8, "proj_slot_num": 8, "ffn_slot_num": 16,
              "max_position_embeddings": 64, "pos_emb": "rotary", "rotary_pct": 0.5,
              "norm": "layernorm_nonparam", "final_norm": "layernorm_nonparam", "layernorm_epsilon": 1.0e-6,
              "norm_activation_type": "softmax", "attention_config": [[["tokenformer"], 2]],
            }
            """)
        XCTAssertEqual(config.context, 64)
        XCTAssertEqual(config.rotaryFraction, 0.5)
        XCTAssertEqual(config.normEps, 1e-6)
        XCTAssertFalse(config.finalNormAffine)
        XCTAssertEqual(config.pattentionNorm, .softmax)
    }
}
