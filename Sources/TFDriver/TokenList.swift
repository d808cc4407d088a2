import Foundation
import TFIR

/// Parses `--tokens 1,2,3` and checks the ids against the model: non-empty, in the vocabulary,
/// and no longer than the context.
func parseTokens(_ text: String, config: ModelConfig, alreadyCached: Int = 0) throws -> [Int32] {
    let pieces = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
    if pieces.count == 1 && pieces[0].isEmpty {
        throw UserError("error: --tokens: the token list is empty; give comma-separated ids such as 1,2,3")
    }
    var tokens: [Int32] = []
    for (index, piece) in pieces.enumerated() {
        guard let id = Int(piece) else {
            throw UserError("error: --tokens: '\(piece)' (item \(index + 1)) is not an integer token id")
        }
        guard id >= 0 && id < config.vocab else {
            throw UserError("error: --tokens: token id \(id) (item \(index + 1)) is outside the vocabulary 0..<\(config.vocab)")
        }
        tokens.append(Int32(id))
    }
    if alreadyCached + tokens.count > config.context {
        throw UserError("error: --tokens: \(tokens.count) tokens exceed the model's context of \(config.context)\(alreadyCached > 0 ? " (with \(alreadyCached) already cached)" : "")")
    }
    return tokens
}
