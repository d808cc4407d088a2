/// Owns every list, dict and object of one unpickling, so that tearing a value down is flat:
/// a hostile pickle can nest lists a million deep (LIST of LIST of …), and releasing such a chain
/// recursively would overflow the call stack. The arena first empties every container (each
/// still held here), then releases them one by one. Values stay valid while their arena lives.
public final class PickleArena {
    private var lists: [PickleList] = []
    private var dicts: [PickleDict] = []
    private var objects: [PickleObject] = []
    private var seen = Set<ObjectIdentifier>()

    public init() {}

    func register(_ value: PickleValue) {
        switch value {
        case .list(let l), .set(let l): if seen.insert(ObjectIdentifier(l)).inserted { lists.append(l) }
        case .dict(let d): if seen.insert(ObjectIdentifier(d)).inserted { dicts.append(d) }
        case .object(let o): if seen.insert(ObjectIdentifier(o)).inserted { objects.append(o) }
        default: break
        }
    }

    deinit {
        for l in lists { l.items = [] }
        for d in dicts { d.entries = [] }
        for o in objects { o.clear() }
    }
}
