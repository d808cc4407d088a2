/// The fused backend's side of `tfc bench kernels` (implemented in TFDriver's `BenchFusedSide`
/// over TFCodegen's kernels). Without a provider, every fused figure is "n/a" in the table and
/// null in the JSON.
///
/// For each case the bench allocates a `KernelWorkload` (random inputs, weights by checkpoint
/// name, output, KV caches), then calls `prepare` once, untimed. `prepare` does everything that
/// is not the kernel itself — JIT compilation, weight packing, scratch allocation, copying the
/// KV cache into the fused layout — and returns a closure that runs the kernel once on the
/// workload: read `inputs` (and the caches), write `output` with the same values the naive
/// side writes (the bench compares the two after timing and reports the largest difference).
/// Only that closure is timed, alternately with the naive side.
///
/// What each `workload.kernel.op` means (rows = `kernel.rows`, first position = `kernel.position`):
/// - `.fusedPattention(f)`: `inputs[0]` is `[rows, f.sites[0].inFeatures]`; output
///   `[rows, f.outFeatures]`, the sites side by side; the prologue, rotary epilogues (at
///   positions `position ..< position + rows`) and residual (`inputs[1]`) as the op says.
///   Weights: `workload.weight(site.keyName)`, `workload.weight(site.valueName)`.
/// - `.attention(a)`: `inputs` are q, k, v `[rows, heads·headDim]`; append k, v to the caches at
///   rows `position ..< position + rows`, attend (causally, or to every cached key when
///   `a.causal` is false), write `[rows, heads·headDim]`.
/// - `.layerNorm(ln)`: `inputs[0]` `[rows, d]` → output `[rows, d]`.
/// - `.logits(table)`: `inputs[0]` `[rows, hidden]` · `weight(table)ᵀ` → `[rows, vocab]`.
///
/// Return nil for a case the fused backend has no kernel for (it shows as n/a); throw to report
/// an error for that case (the bench prints it and goes on).
public protocol FusedKernelProvider: AnyObject {
    func prepare(_ workload: KernelWorkload) throws -> (() -> Void)?
}
