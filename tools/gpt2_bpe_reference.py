#!/usr/bin/python3
"""Independent Python reference for mll's gpt2-bpe tokenizer (src/tokenize/gpt2_bpe.cpp).

GPT-2's byte-level BPE as OpenAI published it (openai/gpt-2 src/encoder.py, which Hugging Face's
GPT2Tokenizer and RobertaTokenizer repeat): the `regex` module's pattern
  's|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+
bytes mapped to the printable alphabet, merges by rank, ids from the id map. Without --raw, text is
first cleaned as open_clip's HFTokenizer does (whitespace_clean(basic_clean(text)): ftfy.fix_text when
--deps names ../shared/deps, html.unescape twice, strip, " ".join(split())) and framed by the start
and end ids (<s> and </s> of a RoBERTa id map, else <|endoftext|>).

Run with Debian's /usr/bin/python3 (needs python3-regex):
  encode --vocab encoder.json[.gz] --merges vocab.bpe[.gz] [--raw] [--deps DIR]
      one JSON string per stdin line -> space-separated ids per line
"""

import argparse
import gzip
import html
import json
import os
import sys
import tarfile
import tempfile
import types

import regex

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "data", "gpt2")
PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def read_text(path):
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return data.decode("utf-8")


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\xa1"), ord("\xac") + 1)) + \
        list(range(ord("\xae"), ord("\xff") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


class Encoder:
    def __init__(self, vocab, merges):
        self.encoder = json.loads(read_text(vocab))
        lines = read_text(merges).split("\n")[1:-1]
        self.bpe_ranks = dict(zip([tuple(m.split()) for m in lines], range(len(lines))))
        self.byte_encoder = bytes_to_unicode()
        self.pat = regex.compile(PATTERN)
        e = self.encoder
        if "<s>" in e and "</s>" in e:
            self.start, self.end, self.unk = e["<s>"], e["</s>"], e.get("<unk>")
        else:
            self.start = self.end = e["<|endoftext|>"]
            self.unk = None

    def bpe(self, token):
        word = tuple(token)
        while len(word) > 1:
            pairs = set(zip(word, word[1:]))
            bigram = min(pairs, key=lambda p: self.bpe_ranks.get(p, float("inf")))
            if bigram not in self.bpe_ranks:
                break
            first, second = bigram
            new_word = []
            i = 0
            while i < len(word):
                try:
                    j = word.index(first, i)
                except ValueError:
                    new_word.extend(word[i:])
                    break
                new_word.extend(word[i:j])
                i = j
                if word[i] == first and i < len(word) - 1 and word[i + 1] == second:
                    new_word.append(first + second)
                    i += 2
                else:
                    new_word.append(word[i])
                    i += 1
            word = tuple(new_word)
        return word

    def encode_raw(self, text):
        ids = []
        for token in self.pat.findall(text):
            token = "".join(self.byte_encoder[b] for b in token.encode("utf-8"))
            for piece in self.bpe(token):
                ids.append(self.encoder[piece] if piece in self.encoder or self.unk is None
                           else self.unk)
        return ids


def load_ftfy(deps):
    tmp = tempfile.mkdtemp(prefix="mll-ftfy-")
    with tarfile.open(os.path.join(deps, "ftfy-6.3.1.tar.gz")) as t:
        t.extractall(tmp)
    sys.path.insert(0, os.path.join(tmp, "ftfy-6.3.1"))
    try:
        import wcwidth  # noqa: F401
    except ImportError:
        stub = types.ModuleType("wcwidth")
        stub.wcwidth = lambda c: 1
        stub.wcswidth = lambda s: len(s)
        sys.modules["wcwidth"] = stub
    import ftfy
    return ftfy.fix_text


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("encode")
    e.add_argument("--vocab", default=os.path.join(DATA, "encoder.json.gz"))
    e.add_argument("--merges", default=os.path.join(DATA, "vocab.bpe.gz"))
    e.add_argument("--raw", action="store_true")
    e.add_argument("--deps")
    args = p.parse_args()
    enc = Encoder(args.vocab, args.merges)
    fix_text = load_ftfy(args.deps) if args.deps else (lambda t: t)
    for line in sys.stdin:
        if not line.strip():
            continue
        text = json.loads(line)
        if args.raw:
            ids = enc.encode_raw(text)
        else:
            text = html.unescape(html.unescape(fix_text(text))).strip()
            text = " ".join(text.split()).strip()
            ids = [enc.start] + enc.encode_raw(text) + [enc.end]
        print(" ".join(map(str, ids)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
