import TFRuntime

/// Owns the runtime's handle (the mapping and any converted copies); closed when the last
/// `WeightFile` or `WeightTensor` referring to it goes away.
final class WeightStorage: @unchecked Sendable {
    let handle: OpaquePointer

    init(handle: OpaquePointer) { self.handle = handle }

    deinit { tfc_st_close(handle) }
}

/// Calls `body` with a zeroed C error buffer and returns its result and the message.
func withErrorBuffer<T>(_ body: (UnsafeMutablePointer<CChar>, Int) -> T) -> (T, String) {
    let size = 1024
    let buffer = UnsafeMutablePointer<CChar>.allocate(capacity: size)
    defer { buffer.deallocate() }
    buffer.initialize(repeating: 0, count: size)
    let result = body(buffer, size)
    return (result, String(cString: buffer))
}
