import TFWeights

/// The small files of a training directory (JSON journal, CSV log, SVG curve), written by tfc's
/// output policy like every other output: a temporary file renamed over a regular file, a device
/// or FIFO written in place, a symbolic link written through.
public enum TrainingFile {
    public static func write(_ text: String, to path: String) throws {
        do {
            let file = try AtomicFile(OutputPolicy.check(role: "--out", path: path))
            do { try file.write(Array(text.utf8)); try file.commit() } catch { file.abandon(); throw error }
        } catch let error as OutputError {
            throw TrainingError(error.description)
        }
    }
}
