# The tokenizer of a compiled shared library (ctypes) against HF tokenizers: encode texts, files and random
# Unicode, decode random id lists. Run by Tests/CLITests/CompileTokenizerTests.swift:
#   python3 compiled_tokenizer_ctypes.py libNAME.so TOKENIZER.json REQUEST.json [SIDE_FILE]   (prints a JSON summary)
# Without SIDE_FILE the library's own NAME.tokenizer is opened (tfc_model_tokenizer_open(NULL)).
import ctypes, json, random, sys
import tokenizers

lib_path, tokenizer_json, request_path = sys.argv[1:4]
side_file = sys.argv[4] if len(sys.argv) > 4 else None
lib = ctypes.CDLL(lib_path)
lib.tfc_model_tokenizer_open.restype = ctypes.c_void_p
lib.tfc_model_tokenizer_open.argtypes = [ctypes.c_char_p]
lib.tfc_tokenizer_error.restype = ctypes.c_char_p
lib.tfc_tokenizer_error.argtypes = [ctypes.c_void_p]
lib.tfc_tokenizer_encode.restype = ctypes.c_int64
lib.tfc_tokenizer_encode.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_int32), ctypes.c_int64]
lib.tfc_tokenizer_decode.restype = ctypes.c_int64
lib.tfc_tokenizer_decode.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_int32), ctypes.c_int64, ctypes.c_char_p, ctypes.c_size_t]
lib.tfc_tokenizer_close.argtypes = [ctypes.c_void_p]
lib.tfc_tokenizer_open.restype = ctypes.c_void_p
lib.tfc_tokenizer_open.argtypes = [ctypes.c_char_p]

tok = lib.tfc_tokenizer_open(side_file.encode()) if side_file else lib.tfc_model_tokenizer_open(None)
if not tok:
    print(json.dumps({"error": lib.tfc_tokenizer_error(None).decode()})); sys.exit(1)
hf = tokenizers.Tokenizer.from_file(tokenizer_json)

def encode(text):
    data = text.encode("utf-8")
    n = lib.tfc_tokenizer_encode(tok, data, len(data), None, 0)
    if n < 0: raise RuntimeError(lib.tfc_tokenizer_error(tok).decode())
    ids = (ctypes.c_int32 * max(n, 1))()
    assert lib.tfc_tokenizer_encode(tok, data, len(data), ids, n) == n
    return list(ids[:n])

def decode(ids):
    arr = (ctypes.c_int32 * max(len(ids), 1))(*ids)
    n = lib.tfc_tokenizer_decode(tok, arr, len(ids), None, 0)
    if n < 0: raise RuntimeError(lib.tfc_tokenizer_error(tok).decode())
    out = ctypes.create_string_buffer(n + 1)
    assert lib.tfc_tokenizer_decode(tok, arr, len(ids), out, n + 1) == n
    return out.raw[:n].decode("utf-8")

request = json.load(open(request_path))
texts = list(request["texts"])
for path in request["files"]:
    texts.append(open(path, encoding="utf-8").read())
# Random Unicode over several scripts, with combining marks and jamo to exercise NFC.
rng = random.Random(request.get("seed", 1))
ranges = [(0x20, 0x7E), (0xC0, 0x24F), (0x300, 0x36F), (0x370, 0x3FF), (0x591, 0x5C7), (0x600, 0x6FF), (0x900, 0x97F),
          (0xE00, 0xE7F), (0xF00, 0xFD4), (0x1100, 0x11FF), (0x1E00, 0x1FFF), (0x2000, 0x206F), (0x3040, 0x30FF),
          (0x4E00, 0x4FFF), (0xAC00, 0xD7A3), (0xF900, 0xFAFF), (0x1D15E, 0x1D1AD), (0x1F300, 0x1F6FF), (0x1F3FB, 0x1F3FF)]
for _ in range(request.get("random", 0)):
    chars = []
    for _ in range(rng.randrange(1, 40)):
        lo, hi = rng.choice(ranges)
        c = rng.randrange(lo, hi + 1)
        if not 0xD800 <= c <= 0xDFFF: chars.append(chr(c))
        if rng.random() < 0.15: chars.append(" ")
    texts.append("".join(chars))
mismatches, tokens = [], 0
for i, text in enumerate(texts):
    mine, theirs = encode(text), hf.encode(text).ids
    tokens += len(mine)
    if mine != theirs:
        k = next((j for j in range(min(len(mine), len(theirs))) if mine[j] != theirs[j]), min(len(mine), len(theirs)))
        mismatches.append({"text": i, "at": k, "tfc": mine[max(0, k - 3):k + 3], "hf": theirs[max(0, k - 3):k + 3]})
# Decoding: random ids (splitting characters apart) and the encoded texts.
rng = random.Random(7)
vocab = hf.get_vocab_size()
decoded = 0
for trial in range(300):
    ids = [rng.randrange(vocab) for _ in range(rng.randrange(1, 12))]
    if decode(ids) != hf.decode(ids, skip_special_tokens=False):
        mismatches.append({"decode": ids})
    decoded += 1
for text in texts[:50]:
    ids = hf.encode(text).ids
    if decode(ids) != hf.decode(ids, skip_special_tokens=False): mismatches.append({"decode_text": text[:40]})
    decoded += 1
lib.tfc_tokenizer_close(tok)
print(json.dumps({"texts": len(texts), "tokens": tokens, "decoded": decoded, "mismatches": mismatches[:20], "mismatch_count": len(mismatches)}))
