"""Rust names and doc comments for botocore's shapes, members and enum values."""

import html
import re
import textwrap

from botocore_model import is_enum, is_struct

RUST_KEYWORDS = set(
    "as async await break const continue crate dyn else enum extern false fn for gen if impl "
    "in let loop match mod move mut pub ref return self Self static struct super trait true "
    "try type unsafe use where while abstract become box do final macro override priv typeof "
    "unsized virtual yield".split()
)
# Names the generated code uses unqualified: a shape with one of these names is renamed.
RESERVED_TYPE_NAMES = {
    "Option", "Some", "None", "Result", "Ok", "Err", "Vec", "Box", "String", "BTreeMap",
    "DateTime", "Utc", "Blob", "Empty", "Serialize", "Deserialize", "Default", "Clone",
    "Debug", "PartialEq", "Eq", "Hash", "Copy", "Operation", "OperationInfo",
    "OperationVisitor", "Service", "StringEnum", "Self",
}


def snake(name):
    out = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    out = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", out)
    out = re.sub(r"[^A-Za-z0-9]+", "_", out).strip("_").lower()
    if not out or out[0].isdigit():
        out = "n_" + out
    return out + "_" if out in RUST_KEYWORDS else out


def pascal(text):
    """A PascalCase identifier from a model name or enum value ('t2.micro' -> 'T2Micro')."""
    out = ""
    for p in (p for p in re.split(r"[^A-Za-z0-9]+", text) if p):
        if out[-1:].isdigit() and p[0].isdigit():
            out += "_"  # 'a1.2xlarge' -> 'A1_2xlarge', not 'A12xlarge'
        out += p[0].upper() + (p[1:].lower() if p.isupper() else p[1:])
    if not out or out[0].isdigit():
        out = "V" + out
    return out


def type_names(shapes, names):
    """The Rust type name of each structure and enum shape: its own name when that is a valid,
    unreserved identifier, else a sanitized one that collides with nothing."""
    named = sorted(n for n in names if is_struct(shapes[n]) or is_enum(shapes[n]))
    result, taken = {}, set(RESERVED_TYPE_NAMES)
    valid = [n for n in named if re.fullmatch(r"[A-Z][A-Za-z0-9]*", n) and n not in taken]
    for n in valid:
        result[n] = n
        taken.add(n)
    for n in named:
        if n in result:
            continue
        base = pascal(n)
        candidate, i = base, 1
        while candidate in taken:
            candidate = f"{base}Shape{'' if i == 1 else i}"
            i += 1
        result[n] = candidate
        taken.add(candidate)
    return result


def first_sentence(doc):
    text = re.sub(r"<[^>]*>", " ", doc or "")
    text = " ".join(html.unescape(text).split())
    for m in re.finditer(r"\.(\s|$)", text):
        before = text[: m.start()].lower()
        if before.endswith(("e.g", "i.e", "etc", "vs")):
            continue
        text = text[: m.start() + 1]
        break
    if len(text) > 300:
        text = text[:300].rsplit(" ", 1)[0] + " …"
    text = text.replace("\\", "\\\\")
    for c in "[]<>*_`":
        text = text.replace(c, "\\" + c)
    # A bare URL as an autolink (rustdoc warns on bare URLs), without the escapes above.
    url = re.compile(r"(https?://[^\s)]*[^\s).])")
    return url.sub(lambda m: "<" + m.group(1).replace("\\", "") + ">", text)


def doc_lines(text, indent=""):
    if not text:
        return []
    return [f"{indent}/// {line}" for line in textwrap.wrap(
        text, 96 - len(indent), break_long_words=False, break_on_hyphens=False)]


def rust_str(value):
    return value.replace("\\", "\\\\").replace('"', '\\"')
