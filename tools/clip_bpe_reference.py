#!/usr/bin/python3
"""Independent Python reference for mll's CLIP BPE tokenizer (src/tokenize).

Re-implements open_clip's SimpleTokenizer (the algorithm OpenAI CLIP published) with the same
libraries open_clip uses for text clean-up (html.unescape from the standard library, the `regex`
module), except ftfy, which Debian does not package: this reference skips ftfy.fix_text. The C++
tokenizer ports ftfy; tools/openclip_tokenizer_reference.py runs open_clip 3.3.0 with ftfy 6.3.1 from
../shared/deps and writes the test vectors from the strings defined here.

Run with Debian's /usr/bin/python3 (needs python3-regex). Subcommands:

  encode [--context-length N]   one JSON string per stdin line -> ids per line
  check-published CSV           compare with the published vectors (text,token_ids_unpadded,...)
  vectors OUT.tsv               write vectors without ftfy (the checked-in ones come from
                                tools/openclip_tokenizer_reference.py vectors)
  tables SRC_DIR TEST_DIR       write the generated C++ tables (HTML5 entities, Unicode properties)
                                and the per-code-point test tables
"""

import argparse
import csv
import gzip
import html
import html.entities
import json
import os
import random
import sys

import regex

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_VOCAB = os.path.join(HERE, "..", "data", "clip", "bpe_simple_vocab_16e6.txt.gz")
NUM_MERGES = 49152 - 256 - 2  # the merges CLIP was trained with: 48894
SPECIALS = ["<start_of_text>", "<end_of_text>"]
SPLIT = (r"<start_of_text>|<end_of_text>|'s|'t|'re|'ve|'m|'ll|'d|"
         r"[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+")


def byte_alphabet():
    """The 256 printable stand-ins for bytes, in vocabulary order: (byte, character)."""
    printable = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("\u00a1"), ord("\u00ac") + 1))
                 + list(range(ord("\u00ae"), ord("\u00ff") + 1)))
    order = list(printable)
    chars = list(printable)
    extra = 0
    for b in range(256):
        if b not in printable:
            order.append(b)
            chars.append(256 + extra)
            extra += 1
    return [(b, chr(c)) for b, c in zip(order, chars)]


class ClipBpe:
    def __init__(self, vocab_path=DEFAULT_VOCAB):
        alphabet = byte_alphabet()
        self.byte_char = {b: c for b, c in alphabet}
        with gzip.open(vocab_path) as f:
            lines = f.read().decode("utf-8").split("\n")
        merges = [tuple(line.split()) for line in lines[1:1 + NUM_MERGES]]
        symbols = [c for _, c in alphabet]
        symbols += [c + "</w>" for c in symbols]
        symbols += ["".join(m) for m in merges]
        symbols += SPECIALS
        self.ids = {s: i for i, s in enumerate(symbols)}
        self.rank = {m: i for i, m in enumerate(merges)}
        self.split = regex.compile(SPLIT, regex.IGNORECASE)
        self.sot = self.ids[SPECIALS[0]]
        self.eot = self.ids[SPECIALS[1]]

    def merge(self, piece):
        if piece in SPECIALS:
            return [piece]
        word = list(piece[:-1]) + [piece[-1] + "</w>"]
        while len(word) > 1:
            best = None
            for pair in zip(word, word[1:]):
                r = self.rank.get(pair)
                if r is not None and (best is None or r < best[0]):
                    best = (r, pair)
            if best is None:
                break
            first, second = best[1]
            merged = []
            i = 0
            while i < len(word):
                if i + 1 < len(word) and word[i] == first and word[i + 1] == second:
                    merged.append(first + second)
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = merged
        return word

    def encode(self, text):
        text = html.unescape(html.unescape(text)).strip()
        text = " ".join(text.split()).strip().lower()  # open_clip 3.3.0's whitespace_clean
        out = [self.sot]
        for piece in self.split.findall(text):
            piece = "".join(self.byte_char[b] for b in piece.encode("utf-8"))
            out += [self.ids[s] for s in self.merge(piece)]
        out.append(self.eot)
        return out

    def encode_padded(self, text, context_length=77):
        ids = self.encode(text)
        if len(ids) > context_length:
            ids = ids[:context_length]
            ids[-1] = self.eot
        return ids + [0] * (context_length - len(ids))


def extra_strings():
    """Strings beyond the published vectors: every corner of the clean-up, split and merge steps."""
    s = [
        # the published vectors, so that they are checked even without ../shared
        "a photo of a cat", "the black dog", "a boy", "a running dog", "  WHEEL\n\t and fruit  ",
        "a diagram",
        "", " ", "\t\n ", "a", "A", "I", "cat", "Cat", "CAT", "cAt", "a photo of a cat.",
        "A photo of a {}.", "a photo of the large dog!", "itap of a goldfish",
        "a bad photo of a tench.", "a sculpture of a great white shark.",
        "a rendering of a tiger shark.", "graffiti of a hammerhead shark.",
        "a cropped photo of the electric ray.", "the origami stingray.",
        "a photo of my cock.", "a close-up photo of a hen.", "a bright photo of the ostrich.",
        # punctuation and symbols
        "hello, world!", "what?!?", "...", "--", "a--b", "e-mail", "#hashtag @user",
        "(parenthesis) [brackets] {braces}", "100% sure", "$5.99", "3.14159", "C++", "C#",
        "<b>bold</b>", "a/b\\c", "1/2", "\"quoted\"", "'single'", "~tilde~", "^_^", ":-)",
        "a_b_c", "x*y=z", "|pipe|", "`backtick`", ";;", "&", "&&", "& &", "a & b",
        # numbers are split digit by digit
        "0", "123", "2024-01-31", "1,000,000", "3rd", "4th of july", "route 66",
        "\u0661\u0662\u0663", "\u00bd", "\u2167", "\u2460\u2461", "\u00b2\u00b3", "\u0967\u0968",
        # contractions
        "it's", "don't", "we're", "they've", "i'm", "you'll", "he'd", "IT'S", "DON'T",
        "'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "''s", "'S", "rock 'n' roll",
        "cats' toys", "o'clock", "can't won't shan't", "it\u2019s", "it\u017ft",
        "\u017f", "'\u017f", "'\u212a",
        # letters with accents, other scripts
        "caf\u00e9", "cafe\u0301", "na\u00efve r\u00e9sum\u00e9", "\u00c9COLE", "Stra\u00dfe",
        "STRASSE", "\u1e9e", "\u00c5ngstr\u00f6m", "\u0130stanbul", "I\u0307", "\u0131",
        "\u039f\u0394\u039f\u03a3", "\u03a3\u039f\u03a6\u039f\u03a3 \u03a3", "\u03a3",
        "A\u03a3", "A\u03a3b", "A\u03a3.", "A.\u03a3", "A\u0345\u03a3", "\u03a3\u0345",
        "a\u0345b", "\u0345", "\u1f88", "\u01c5", "\u01c4\u01c6", "\u2126", "\u212b",
        "\u041c\u043e\u0441\u043a\u0432\u0430", "\u041f\u0420\u0418\u0412\u0415\u0422",
        "\u10a0\u10a1", "\u13a0\u13a1", "\u0531\u0532", "\U00010400\U00010401",
        "\u5317\u4eac", "\u6771\u4eac\u30bf\u30ef\u30fc", "\u3053\u3093\u306b\u3061\u306f",
        "\ud55c\uad6d\uc5b4", "\u0627\u0644\u0639\u0631\u0628\u064a\u0629",
        "\u05e2\u05d1\u05e8\u05d9\u05ea", "\u0939\u093f\u0928\u094d\u0926\u0940",
        "\u0e20\u0e32\u0e29\u0e32\u0e44\u0e17\u0e22", "\u1ea0\u1ea1 Vi\u1ec7t",
        "\u00f1and\u00fa", "\u0141\u00f3d\u017a", "\u010cesk\u00fd", "\u00de\u00f0",
        "\uff21\uff22\uff23", "\uff41\uff42\uff43\uff11\uff12", "\ufb01sh", "\u2160\u2161",
        # emoji, symbols outside letters and numbers
        "\U0001f600", "I \u2764\ufe0f NY", "\U0001f436\U0001f431", "\U0001f468\u200d\U0001f469\u200d\U0001f467",
        "\U0001f1fa\U0001f1f8", "\U0001f44d\U0001f3fd", "\u2603", "\u00a9 2024", "\u2122",
        "\u20ac100", "\u00a3\u00a5", "\u00b0C", "\u2192", "\u2014 dash \u2013", "\u2026",
        "\u00bfqu\u00e9?", "\u00a1hola!", "\u00ab\u00bb", "\u201cquoted\u201d",
        # HTML entities: named with and without ';', numeric, invalid, nested escapes
        "&amp;", "&amp", "&lt;b&gt;", "&lt", "&quot;hi&quot;", "&apos;", "&#39;s",
        "caf&eacute;", "caf&eacute", "&nbsp;x&nbsp;", "&copy;", "&copy", "&notin;", "&notit;",
        "&ampx", "&ampfoo;", "&AMP;", "&Amp;", "&unknown;", "&unknown", "& amp;", "&;",
        "&#65;", "&#x41;", "&#X41;", "&#x4a;", "&#65", "&#0;", "&#128;", "&#150;", "&#x80;",
        "&#x9F;", "&#13;", "&#1;", "&#11;", "&#127;", "&#xD800;", "&#x110000;",
        "&#99999999999999999999;", "&#xFFFE;", "&#xFDD0;", "&#x1F600;", "&#;", "&#x;",
        "&#xg;", "&amp;amp;", "&amp;amp;amp;", "&amp;#39;", "&amp;lt;", "fish &amp; chips",
        "&NotNestedGreaterGreater;", "&nGt;", "&acE;", "&b.Delta;", "&",
        "&abcdefghijklmnopqrstuvwxyzabcdefghijklmnop;", "&amp" + "x" * 40,
        "&\u00e9;", "&lt\u00e9", "&\u00e9lt;", "&#\u0661;", "&lt;&gt;&amp;&quot;&apos;",
        "&ltcat", "&gtdog;", "&centpiece", "&notanentity", "&not", "&noti;",
        # whitespace runs and Unicode spaces
        "  a   b  ", "a\tb", "a\nb", "a\r\nb", "a\x0bb", "a\x0cb", "a\x1cb", "a\x1fb",
        "\x1ca\x1c", "a\x85b", "a\u00a0b", "a\u1680b", "a\u2003b", "a\u2028b", "a\u3000b",
        "a\u200bb", "a\u180eb", "a\ufeffb", "\u3000a\u3000", "&#32;a&#32;", "&nbsp;&nbsp;",
        "a&Tab;b", "a&NewLine;b", "\x00", "a\x00b", "a\x7fb", "a\x80b", "\ufffd",
        # literal special tokens, with case and near-misses
        "<start_of_text>", "<end_of_text>", "<START_OF_TEXT>", "a<end_of_text>b",
        "<|startoftext|>", "<|endoftext|>", "<start_of_text", "start_of_text>",
        "<\u017ftart_of_text>",
        # words that exercise long merges and repeated symbols
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "abababababababab", "lollollollol", "zzzzzz",
        "antidisestablishmentarianism", "pneumonoultramicroscopicsilicovolcanoconiosis",
        "supercalifragilisticexpialidocious", "photosynthesis", "xylophone", "qwertyuiop",
        "the the the", "a a a a", "Mississippi", "bookkeeper", "llama", "hmmmmm",
    ]
    # Truncation around the context length: 75, 76, 77 and more tokens.
    for n in (74, 75, 76, 77, 78, 100):
        s.append(" ".join(["cat"] * n))
    s.append("a photo of " + "a very " * 60 + "long dog")
    s.append("\U0001f600" * 50)
    s.append("".join(chr(c) for c in range(0x20, 0x7f)))
    s.append("".join(chr(c) for c in range(0xa0, 0x250)))
    s.append("".join(chr(c) for c in range(0x370, 0x400)))
    # Words from WordNet, as class names are built from them.
    try:
        with open("/usr/share/wordnet/index.noun", encoding="latin-1") as f:
            lemmas = [line.split(" ", 1)[0] for line in f if not line.startswith(" ")]
        rng = random.Random(7)
        for lemma in rng.sample(lemmas, 600):
            s.append(lemma.replace("_", " "))
    except OSError:
        print("clip_bpe_reference: no WordNet, skipping its lemmas", file=sys.stderr)
    # Random mixtures of every kind of character the split distinguishes.
    rng = random.Random(12345)
    pools = [
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", "0123456789", " \t\n",
        "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~", "\u00e9\u00fc\u00df\u00c6\u0130\u03a3\u03c3\u0416",
        "\u4e00\u4e8c\u4e09\u3042\uac00", "\U0001f600\U0001f436\u2764\u2603",
        "\u00a0\u2003\u3000\x1c\x85", "\u0301\u0345\u200d\ufe0f",
    ]
    entities = ["&amp;", "&lt;", "&#39;", "&eacute", "&nbsp;", "&#x1F600;", "&amp;amp;"]
    for _ in range(400):
        parts = []
        for _ in range(rng.randint(1, 25)):
            if rng.random() < 0.08:
                parts.append(rng.choice(entities))
            else:
                pool = rng.choice(pools)
                parts.append("".join(rng.choice(pool) for _ in range(rng.randint(1, 6))))
        s.append("".join(parts))
    # Random code points from the whole range, surrogates excluded.
    for _ in range(200):
        chars = []
        while len(chars) < rng.randint(1, 12):
            c = rng.choice([rng.randint(0, 0x2fff), rng.randint(0, 0xffff), rng.randint(0, 0x10ffff)])
            if not 0xd800 <= c <= 0xdfff:
                chars.append(chr(c))
        s.append("".join(chars))
    seen = set()
    return [x for x in s if not (x in seen or seen.add(x))]


def cmd_encode(args):
    tok = ClipBpe(args.vocab)
    for line in sys.stdin:
        if not line.strip():
            continue
        text = json.loads(line)
        ids = tok.encode_padded(text, args.context_length) if args.context_length else tok.encode(text)
        print(" ".join(map(str, ids)))


def cmd_check_published(args):
    tok = ClipBpe(args.vocab)
    bad = 0
    with open(args.csv, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        # The CSV writes newline and tab as the escapes \n and \t.
        text = row["text"].replace("\\n", "\n").replace("\\t", "\t")
        want = [int(x) for x in row["token_ids_unpadded"].split()]
        got = tok.encode(text)
        status = "ok" if got == want else "MISMATCH"
        bad += got != want
        print(f"{status}: {json.dumps(text)} -> {' '.join(map(str, got))}")
    print(f"{len(rows) - bad} of {len(rows)} published vectors reproduced")
    return 1 if bad else 0


def cmd_vectors(args):
    tok = ClipBpe(args.vocab)
    strings = extra_strings()
    with open(args.out, "w", encoding="utf-8", newline="\n") as f:
        f.write("# Generated by tools/clip_bpe_reference.py vectors (open_clip SimpleTokenizer "
                "without ftfy).\n# JSON text <TAB> unpadded ids <TAB> ids padded to 77, or '=' "
                "where that is the unpadded ids followed by zeros\n")
        for text in strings:
            ids = tok.encode(text)
            padded = " ".join(map(str, tok.encode_padded(text, 77))) if len(ids) > 77 else "="
            f.write(json.dumps(text) + "\t" + " ".join(map(str, ids)) + "\t" + padded + "\n")
    print(f"wrote {len(strings)} vectors to {args.out}")


def ranges(predicate):
    out = []
    start = None
    for c in range(0x110001):
        ok = c <= 0x10ffff and predicate(c)
        if ok and start is None:
            start = c
        elif not ok and start is not None:
            out.append((start, c - 1))
            start = None
    return out


def c_ranges(name, rs):
    body = ",\n".join("    {0x%x, 0x%x}" % r for r in rs)
    return f"constexpr CodeRange {name}[] = {{\n{body},\n}};\n\n"


def c_string(s):
    out = '"'
    for b in s.encode("utf-8"):
        ch = chr(b)
        if ch == '"' or ch == "\\":
            out += "\\" + ch
        elif 0x20 <= b < 0x7f:
            out += ch
        else:
            out += "\\x%02x\"\"" % b
    return out + '"'


def cmd_tables(args):
    header = ("// Generated by tools/clip_bpe_reference.py tables from Python %s (Unicode %s);"
              " do not edit.\n" % (sys.version.split()[0], __import__("unicodedata").unidata_version))
    # Python's str.lower() treats Greek capital sigma by context. Its Cased and Case_Ignorable
    # properties are not exposed, so they are read back through lower() itself.
    def sigma_final(s):
        return s.lower().endswith("\u03c2")

    def ignorable(c):
        return not sigma_final(chr(c) + "\u03a3") and sigma_final("A" + chr(c) + "\u03a3") \
            if not 0xd800 <= c <= 0xdfff else False

    def cased(c):
        return sigma_final(chr(c) + "\u03a3") if not 0xd800 <= c <= 0xdfff else False

    with open(os.path.join(args.src_dir, "unicode_tables.inc"), "w", encoding="utf-8") as f:
        f.write(header)
        f.write("// White_Space, the set `\\s` matches in the regex module (whitespace_clean, split).\n")
        f.write(c_ranges("kRegexSpace", ranges(lambda c: bool(regex.match(r"\s", chr(c))))))
        f.write("// str.isspace(), the set str.strip() removes.\n")
        f.write(c_ranges("kStripSpace", ranges(lambda c: chr(c).isspace())))
        f.write("// Cased and not Case_Ignorable, for the final-sigma rule of str.lower().\n")
        f.write(c_ranges("kCased", ranges(cased)))
        f.write("// Case_Ignorable, for the final-sigma rule of str.lower().\n")
        f.write(c_ranges("kCaseIgnorable", ranges(ignorable)))
    ents = sorted(html.entities.html5.items())
    with open(os.path.join(args.src_dir, "html_entities.inc"), "w", encoding="utf-8") as f:
        f.write(header)
        f.write("// The HTML5 named character references (html.entities.html5), sorted by name;\n"
                "// names ending without ';' are the legacy forms browsers accept bare.\n")
        f.write("constexpr HtmlEntity kHtmlEntities[] = {\n")
        for name, value in ents:
            f.write(f"    {{{c_string(name)}, {c_string(value)}}},\n")
        f.write("};\n\n")
        f.write("// Numeric references the HTML5 spec remaps (html._invalid_charrefs).\n")
        f.write("constexpr CharrefRemap kCharrefRemap[] = {\n")
        for num, value in sorted(html._invalid_charrefs.items()):
            f.write(f"    {{0x{num:x}, {c_string(value)}}},\n")
        f.write("};\n\n")
        f.write("// Numeric references html.unescape drops (html._invalid_codepoints).\n")
        f.write(c_ranges("kCharrefDropped", ranges(lambda c: c in html._invalid_codepoints)))
    # Per-code-point expectations for the C++ tests.
    split = regex.compile(SPLIT, regex.IGNORECASE)

    def klass(c):
        if 0xd800 <= c <= 0xdfff:
            return None
        ch = chr(c)
        m = split.findall("a " + ch + " a")
        if m == ["a", "a"]:
            return "W" if regex.match(r"\s", ch) else "X"  # X: matched by no alternative
        if regex.fullmatch(r"[\p{L}]+", ch, regex.IGNORECASE):
            return "L"
        if regex.fullmatch(r"[\p{N}]", ch, regex.IGNORECASE):
            return "N"
        return "S"

    with open(os.path.join(args.test_dir, "split_classes.tsv"), "w", encoding="utf-8") as f:
        f.write("# Generated by tools/clip_bpe_reference.py tables: which alternative of the CLIP\n"
                "# split regex (regex module, IGNORECASE) takes each code point. first last class\n")
        prev = None
        start = 0
        for c in range(0x110001):
            k = klass(c) if c <= 0x10ffff else "end"
            if k != prev:
                if prev is not None:
                    f.write(f"{start:x}\t{c - 1:x}\t{prev}\n")
                prev, start = k, c
    with open(os.path.join(args.test_dir, "python_lower.tsv"), "w", encoding="utf-8") as f:
        f.write("# Generated by tools/clip_bpe_reference.py tables: code points that str.lower()\n"
                "# changes (alone, outside the sigma rule). code point <TAB> lower-cased code points\n")
        for c in range(0x110000):
            if 0xd800 <= c <= 0xdfff:
                continue
            low = chr(c).lower()
            if low != chr(c):
                f.write(f"{c:x}\t{' '.join('%x' % ord(x) for x in low)}\n")
    print("tables written")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--vocab", default=DEFAULT_VOCAB)
    sub = p.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("encode")
    e.add_argument("--context-length", type=int, default=0)
    c = sub.add_parser("check-published")
    c.add_argument("csv")
    v = sub.add_parser("vectors")
    v.add_argument("out")
    t = sub.add_parser("tables")
    t.add_argument("src_dir")
    t.add_argument("test_dir")
    args = p.parse_args()
    return {"encode": cmd_encode, "check-published": cmd_check_published, "vectors": cmd_vectors,
            "tables": cmd_tables}[args.cmd](args) or 0


if __name__ == "__main__":
    sys.exit(main())
