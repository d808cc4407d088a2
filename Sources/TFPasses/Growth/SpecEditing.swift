import TFSpec

/// Small edits on a spec's AST, for the growth rewrites.
extension Expr {
    /// Pre-order rewrite: where `transform` returns a replacement it is used as is; elsewhere the
    /// children are rewritten.
    func rewritten(_ transform: (Expr) -> Expr?) -> Expr {
        if let replacement = transform(self) { return replacement }
        var copy = self
        switch kind {
        case .negate(let e): copy.kind = .negate(e.rewritten(transform))
        case .binary(let op, let a, let b): copy.kind = .binary(op, a.rewritten(transform), b.rewritten(transform))
        case .call(let name, let args):
            copy.kind = .call(name, args.map { arg in
                var a = arg
                a.value = arg.value.rewritten(transform)
                return a
            })
        default: break
        }
        return copy
    }

    /// Calls `visit` on this expression and every sub-expression; labelled `site:` arguments are
    /// skipped (they name weights, not constants).
    func visit(_ visit: (Expr) -> Void) {
        visit(self)
        switch kind {
        case .negate(let e): e.visit(visit)
        case .binary(_, let a, let b): a.visit(visit); b.visit(visit)
        case .call(_, let args): for arg in args where arg.label != "site" { arg.value.visit(visit) }
        default: break
        }
    }

    /// The site name of a `pattention(..., site: NAME, ...)` call, or nil.
    var pattentionSite: String? {
        guard case .call("pattention", let args) = kind,
              let site = args.first(where: { $0.label == "site" }), case .name(let path) = site.value.kind else { return nil }
        return path.joined(separator: ".")
    }
}

extension Spec {
    /// Every top-level expression: model fields, `let`s, block statements and result.
    func forEachExpression(_ body: (Expr) -> Void) {
        for item in items {
            switch item {
            case .model(let m): m.fields.forEach { body($0.value) }
            case .constant(let b): body(b.value)
            case .block(let b): b.statements.forEach { body($0.value) }; body(b.result)
            }
        }
    }

    /// Applies `transform` (see `Expr.rewritten`) to every expression of the block, or of the
    /// whole spec when `blockOnly` is false.
    mutating func rewriteExpressions(blockOnly: Bool = false, _ transform: (Expr) -> Expr?) {
        for i in items.indices {
            switch items[i] {
            case .model(var m) where !blockOnly:
                for j in m.fields.indices { m.fields[j].value = m.fields[j].value.rewritten(transform) }
                items[i] = .model(m)
            case .constant(var b) where !blockOnly:
                b.value = b.value.rewritten(transform)
                items[i] = .constant(b)
            case .block(var b):
                for j in b.statements.indices { b.statements[j].value = b.statements[j].value.rewritten(transform) }
                b.result = b.result.rewritten(transform)
                items[i] = .block(b)
            default: break
            }
        }
    }

    /// How many times the bare name `name` is read anywhere (site names do not count).
    func references(to name: String) -> Int {
        var count = 0
        forEachExpression { $0.visit { e in if case .name([name]) = e.kind { count += 1 } } }
        return count
    }

    /// Every `pattention` call in the block, outermost first.
    var pattentionCalls: [Expr] {
        var calls: [Expr] = []
        guard let block else { return calls }
        for e in block.statements.map(\.value) + [block.result] {
            e.visit { if $0.pattentionSite != nil { calls.append($0) } }
        }
        return calls
    }

    /// Replaces the arguments of the `pattention` call of `site` by `edit(arguments)`.
    mutating func editSite(_ site: String, _ edit: ([Argument]) -> [Argument]) {
        rewriteExpressions(blockOnly: true) { e in
            guard e.pattentionSite == site, case .call(let name, let args) = e.kind else { return nil }
            // Each site appears once, so the call's operands (which may hold other sites) stay as they are.
            var copy = e
            copy.kind = .call(name, edit(args))
            return copy
        }
    }

    /// The `let` called `name`, if there is one.
    func constant(_ name: String) -> Binding? {
        constants.first { $0.name == name }
    }

    /// Sets the value of the `let` called `name`.
    mutating func setConstant(_ name: String, to value: Expr) {
        for i in items.indices {
            if case .constant(var b) = items[i], b.name == name {
                b.value = value
                items[i] = .constant(b)
            }
        }
    }

    /// Sets the model field `name` (adding it if absent).
    mutating func setModelField(_ name: String, to value: Expr) {
        for i in items.indices {
            guard case .model(var m) = items[i] else { continue }
            if let j = m.fields.firstIndex(where: { $0.name == name }) {
                m.fields[j].value = value
            } else {
                m.fields.append(Binding(name: name, value: value, at: m.location))
            }
            items[i] = .model(m)
        }
    }

    /// The model field `name`, if present.
    func modelField(_ name: String) -> Binding? {
        model?.fields.first { $0.name == name }
    }
}

extension Argument {
    /// A labelled argument at `location`.
    static func labelled(_ label: String, _ kind: Expr.Kind, at location: SourceLocation) -> Argument {
        Argument(label: label, value: Expr(kind, at: location), at: location)
    }
}
