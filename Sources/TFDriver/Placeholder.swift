import ArgumentParser
public struct TFCommand: ParsableCommand {
    public init() {}
    public static let configuration = CommandConfiguration(commandName: "tfc", abstract: "A compiler for TokenFormer models.")
}
