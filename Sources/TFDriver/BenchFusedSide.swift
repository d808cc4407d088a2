import TFBench
import TFIR

/// Where the fused backend plugs into `tfc bench` — the only place to change when it lands.
/// While these return nil, every fused figure is "n/a" in the table and null in the JSON.
enum BenchFusedSide {
    /// `tfc bench kernels`: an object that compiles one fused kernel per case (see
    /// `FusedKernelProvider` in TFBench for exactly what each case's op, inputs and output mean).
    /// Called once per run, after the thread count is set; nil = no fused kernels.
    static func kernelProvider(graph: Graph, threads: Int) throws -> FusedKernelProvider? {
        nil
    }

    /// `tfc bench model`: a factory making the fused `ModelExecutor` for `graph` (the unfused,
    /// lowered graph: run the passes inside) over `weights` (`weights.lookup` by checkpoint name,
    /// `weights.file` when a checkpoint was given). The bench times the factory call as the compile
    /// time, so do all compilation and weight packing inside it. nil = no fused backend.
    static func modelFactory(graph: Graph, weights: BenchWeights, threads: Int) -> ExecutorFactory? {
        nil
    }
}
