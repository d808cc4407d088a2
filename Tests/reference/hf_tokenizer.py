"""Hugging Face `tokenizers` as the reference for tfc's tokenizer (Tests/TFTokenizerTests).

    python3 hf_tokenizer.py TOKENIZER.json REQUEST.json RESPONSE.json

REQUEST is {"encode": [text, ...], "encode_files": [path, ...], "decode": [[id, ...], ...], "normalize": [text, ...]};
RESPONSE is {"encode": [[id, ...], ...], "encode_files": [[id, ...], ...], "decode": [text, ...], "normalize": [text, ...]}
(normalize: the text after the tokenizer's normalizer).
Files are read as UTF-8 with newlines kept as they are.
"""
import json
import sys

from tokenizers import Tokenizer


def main():
    tokenizer = Tokenizer.from_file(sys.argv[1])
    with open(sys.argv[2], encoding="utf-8") as f:
        request = json.load(f)
    files = []
    for path in request.get("encode_files", []):
        with open(path, encoding="utf-8", newline="") as f:
            files.append(f.read())
    response = {
        "encode": [tokenizer.encode(text).ids for text in request.get("encode", [])],
        "encode_files": [tokenizer.encode(text).ids for text in files],
        "decode": [tokenizer.decode(ids, skip_special_tokens=False) for ids in request.get("decode", [])],
        "normalize": [tokenizer.normalizer.normalize_str(text) if tokenizer.normalizer else text
                      for text in request.get("normalize", [])],
    }
    with open(sys.argv[3], "w", encoding="utf-8") as f:
        json.dump(response, f, ensure_ascii=True)


if __name__ == "__main__":
    main()
