import TFIR
import TFSpec

/// The front half of the compiler, shared by every command: file → AST → verified IR.
struct LoadedSpec {
    var source: SourceFile
    var spec: Spec
    var graph: Graph

    init(path: String) throws {
        source = try SourceFile.load(path)
        spec = try parse(source)
        graph = try lower(spec, source: source)
    }
}
