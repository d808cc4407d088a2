/// The abstract syntax of a spec file, exactly as written (constants unevaluated, ops unresolved).
/// Equality ignores source locations, so `parse(print(spec)) == spec` is a meaningful test.

public enum BinaryOperator: String, Sendable, CaseIterable {
    case add = "+", subtract = "-", multiply = "*", divide = "/", remainder = "%"

    /// Binding strength: `*` `/` `%` bind tighter than `+` `-`; all are left-associative.
    public var precedence: Int {
        switch self {
        case .add, .subtract: return 1
        case .multiply, .divide, .remainder: return 2
        }
    }
}

/// An expression: a literal, a (possibly dotted) name, arithmetic, or an op call with labelled arguments.
public struct Expr: Equatable, Sendable {
    public indirect enum Kind: Equatable, Sendable {
        case integer(Int)
        case float(Double)
        case boolean(Bool)
        case string(String)
        /// `hidden`, `l2_norm_gelu`, or a dotted site name such as `attention.query`.
        case name([String])
        case negate(Expr)
        case binary(BinaryOperator, Expr, Expr)
        /// `layernorm(x)`, `pattention(h, site: mlp, tokens: ffn)`.
        case call(String, [Argument])
    }

    public var kind: Kind
    public var location: SourceLocation

    public init(_ kind: Kind, at location: SourceLocation) {
        self.kind = kind
        self.location = location
    }

    public static func == (a: Expr, b: Expr) -> Bool { a.kind == b.kind }
}

/// One argument of a call: positional (`x`) or labelled (`tokens: ffn`).
public struct Argument: Equatable, Sendable {
    public var label: String?
    public var value: Expr
    public var location: SourceLocation

    public init(label: String?, value: Expr, at location: SourceLocation) {
        self.label = label
        self.value = value
        self.location = location
    }

    public static func == (a: Argument, b: Argument) -> Bool { a.label == b.label && a.value == b.value }
}

/// `name = expr`: a model field, a top-level `let`, or a statement in a block.
public struct Binding: Equatable, Sendable {
    public var name: String
    public var value: Expr
    public var location: SourceLocation

    public init(name: String, value: Expr, at location: SourceLocation) {
        self.name = name
        self.value = value
        self.location = location
    }

    public static func == (a: Binding, b: Binding) -> Bool { a.name == b.name && a.value == b.value }
}

/// `model "name" { field = expr ... }`: the hyper-parameters.
public struct ModelDecl: Equatable, Sendable {
    public var name: String
    public var fields: [Binding]
    public var location: SourceLocation

    public init(name: String, fields: [Binding], at location: SourceLocation) {
        self.name = name
        self.fields = fields
        self.location = location
    }

    public static func == (a: ModelDecl, b: ModelDecl) -> Bool { a.name == b.name && a.fields == b.fields }
}

/// `block(x) { name = expr ... return expr }`: one layer as a dataflow of ops, repeated `layers` times.
/// Statements may appear in any order; the compiler orders them by their data dependencies.
public struct BlockDecl: Equatable, Sendable {
    public var parameter: String
    public var statements: [Binding]
    public var result: Expr
    public var location: SourceLocation

    public init(parameter: String, statements: [Binding], result: Expr, at location: SourceLocation) {
        self.parameter = parameter
        self.statements = statements
        self.result = result
        self.location = location
    }

    public static func == (a: BlockDecl, b: BlockDecl) -> Bool {
        a.parameter == b.parameter && a.statements == b.statements && a.result == b.result
    }
}

public enum Item: Equatable, Sendable {
    case model(ModelDecl)
    /// `let name = expr`
    case constant(Binding)
    case block(BlockDecl)
}

/// A whole spec file.
public struct Spec: Equatable, Sendable {
    public var items: [Item]
    /// Where the spec came from (for diagnostics found after parsing).
    public var file: String

    public init(items: [Item], file: String) {
        self.items = items
        self.file = file
    }

    public static func == (a: Spec, b: Spec) -> Bool { a.items == b.items }

    public var model: ModelDecl? {
        for case .model(let m) in items { return m }
        return nil
    }

    public var constants: [Binding] { items.compactMap { if case .constant(let b) = $0 { return b } else { return nil } } }

    public var block: BlockDecl? {
        for case .block(let b) in items { return b }
        return nil
    }
}
