/// The globals a PyTorch checkpoint may build (the `weights_only` allow-list, reduced to what a
/// state dict needs). Everything else stays an inert placeholder.
enum TorchGlobals {
    /// `Unpickler.Build` for PyTorch pickles; `path` names the file in errors.
    static func build(path: String) -> Unpickler.Build {
        return { global, args in
            func fail(_ message: String) -> CheckpointError { CheckpointError(path: path, "\(global): \(message)") }
            switch global {
            case "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor":
                // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
                guard args.count >= 4 else { throw fail("expected at least 4 arguments, got \(args.count)") }
                guard case .storage(let storage) = args[0] else { throw fail("the first argument is \(args[0]), not a storage") }
                guard let offset = args[1].asInt else { throw fail("bad storage offset \(args[1])") }
                guard let shape = args[2].asTuple?.compactMap(\.asInt), shape.count == args[2].asTuple?.count else { throw fail("bad size \(args[2])") }
                guard let stride = args[3].asTuple?.compactMap(\.asInt), stride.count == shape.count else { throw fail("bad stride \(args[3]) for size \(shape)") }
                var count = 1
                for size in shape {
                    let (product, overflow) = count.multipliedReportingOverflow(by: size)
                    guard size >= 0, !overflow else { throw fail("bad size \(shape)") }
                    count = product
                }
                return .tensor(TorchTensor(storage: storage, offset: offset, shape: shape, stride: stride))
            case "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state":
                // (data, requires_grad, backward_hooks[, state]): a Parameter is its tensor.
                guard let data = args.first else { throw fail("no arguments") }
                return data
            case "torch._utils._rebuild_from_type_v2":
                // (func, type, args, state): a tensor subclass rebuilt by an allowed function.
                guard args.count >= 3, case .global(let m, let n) = args[0], let inner = args[2].asTuple else { return nil }
                return try build(path: path)("\(m).\(n)", inner)
            case "collections.OrderedDict", "builtins.dict":
                return .dict(PickleDict())
            case "builtins.list":
                return .list(PickleList(args.first?.asTuple ?? []))
            case "builtins.set", "builtins.frozenset":
                return .set(PickleList(args.first?.asTuple ?? []))
            case "torch.Size", "builtins.tuple":
                return .tuple(args.first?.asTuple ?? [])
            default:
                return nil
            }
        }
    }

    /// The storage named by a persistent id `('storage', storage_type, key, location, numel[, view])`.
    static func storage(_ pid: PickleValue, path: String) throws -> TorchStorageRef {
        guard let t = pid.asTuple, t.count >= 5, t[0].asString == "storage" else {
            throw CheckpointError(path: path, "unexpected persistent id \(pid) (expected a storage)")
        }
        let className: String
        switch t[1] {
        case .global(_, let name): className = name
        case .string(let s): className = s
        default: throw CheckpointError(path: path, "storage type \(t[1]) is not a class")
        }
        guard let dtype = TorchDType(storageClass: className) else {
            throw CheckpointError(path: path, "unsupported storage type \(className)")
        }
        let key: String
        switch t[2] {
        case .string(let s): key = s
        case .int(let i): key = String(i)
        default: throw CheckpointError(path: path, "bad storage key \(t[2])")
        }
        guard let count = t[4].asInt, count >= 0 else { throw CheckpointError(path: path, "bad storage size \(t[4])") }
        if t.count > 5, case .tuple = t[5] { throw CheckpointError(path: path, "storage views (legacy format before PyTorch 1.0) are not supported") }
        return TorchStorageRef(key: key, dtype: dtype, count: count)
    }
}
