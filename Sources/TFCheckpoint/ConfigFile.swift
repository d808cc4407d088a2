import Foundation

/// Reads a model config: `config.json`, or the GPT-NeoX trainer's YAML (which is JSON-like: a
/// flow mapping with `#` comments and trailing commas, or plain `key: value` lines).
enum ConfigFile {
    static func read(_ path: String) throws -> [String: Any] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CheckpointError(path: path, "cannot read the config")
        }
        let text = String(decoding: data, as: UTF8.self)
        if let keys = json(text) { return keys }
        if let keys = json(jsonFromYAML(text)) { return keys }
        if let keys = blockYAML(text) { return keys }
        throw CheckpointError(path: path, "cannot parse the config: neither JSON nor the trainer's YAML")
    }

    private static func json(_ text: String) -> [String: Any]? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) else { return nil }
        return object as? [String: Any]
    }

    /// Drops `#` comments outside strings and commas before `}` or `]`.
    static func jsonFromYAML(_ text: String) -> String {
        var out = "", inString = false, escaped = false, inComment = false
        for c in text {
            if inComment { if c == "\n" { inComment = false; out.append(c) }; continue }
            if inString {
                out.append(c)
                if escaped { escaped = false } else if c == "\\" { escaped = true } else if c == "\"" { inString = false }
                continue
            }
            if c == "#" { inComment = true; continue }
            if c == "\"" { inString = true }
            out.append(c)
        }
        // Trailing commas.
        var cleaned = "", pendingComma = false, whitespace = ""
        for c in out {
            if pendingComma {
                if c.isWhitespace { whitespace.append(c); continue }
                if c != "}" && c != "]" { cleaned.append(",") }
                cleaned += whitespace; whitespace = ""; pendingComma = false
            }
            if c == "," { pendingComma = true; continue }
            cleaned.append(c)
        }
        return cleaned.replacingOccurrences(of: ": True", with: ": true").replacingOccurrences(of: ": False", with: ": false")
    }

    /// `key: value` lines, each value a JSON scalar or list, or a bare string.
    private static func blockYAML(_ text: String) -> [String: Any]? {
        var keys: [String: Any] = [:]
        for raw in jsonFromYAML(text).split(separator: "\n") {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line == "---" { continue }
            guard let colon = line.firstIndex(of: ":") else { return nil }
            var key = line[..<colon].trimmingCharacters(in: .whitespaces)
            if key.hasPrefix("\""), key.hasSuffix("\""), key.count >= 2 { key = String(key.dropFirst().dropLast()) }
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            if let parsed = try? JSONSerialization.jsonObject(with: Data(value.utf8), options: [.fragmentsAllowed]) {
                keys[key] = parsed
            } else {
                keys[key] = value
            }
        }
        return keys.isEmpty ? nil : keys
    }

    /// The attributes of a pickled `argparse.Namespace` (a trainer checkpoint's `args`), as config keys.
    static func keys(fromNamespace value: PickleValue) -> [String: Any]? {
        guard case .object(let object) = value, let state = object.state.asDict else { return nil }
        var keys: [String: Any] = [:]
        for (k, v) in state.entries {
            guard let name = k.asString, let plain = plain(v) else { continue }
            keys[name] = plain
        }
        return keys
    }

    private static func plain(_ value: PickleValue) -> Any? {
        switch value {
        case .none: return NSNull()
        case .bool(let b): return b
        case .int(let i): return i
        case .float(let d): return d
        case .string(let s): return s
        case .tuple(let items): return items.map { plain($0) ?? NSNull() }
        case .list(let list): return list.items.map { plain($0) ?? NSNull() }
        default: return nil
        }
    }
}
