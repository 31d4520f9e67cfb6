"""Checks bistro_ctypes against include/bistro.h: every prototype the module
declares against the header's declaration of that function, and every ctypes
struct against the C compiler's layout of the header's struct (size,
alignment, and each field's name, offset and size).

    python3 -m unittest tests/python/test_ctypes_header.py

Needs a C compiler (`cc`, or $CC) for the layouts; no libbistro.
"""
import ctypes
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
HEADER = os.path.join(REPO, "include", "bistro.h")
sys.path.insert(0, HERE)

import bistro_ctypes as bistro  # noqa: E402

# The C struct each ctypes Structure mirrors.
STRUCTS = {
    "bistro_delta_header": bistro._Header,
    "bistro_limits": bistro._Limits,
    "bistro_encoding": bistro._Encoding,
    "bistro_tensor_info": bistro._TensorInfo,
    "bistro_dataset_params": bistro._DatasetParams,
    "bistro_score_rule": bistro._ScoreRule,
    "bistro_verdict": bistro._Verdict,
}

# Handles the module passes as `void *`.
OPAQUE = {"bistro_buffer", "bistro_delta_reader", "bistro_delta_writer"}

SCALARS = {
    "uint8_t": ctypes.c_uint8,
    "uint16_t": ctypes.c_uint16,
    "uint32_t": ctypes.c_uint32,
    "uint64_t": ctypes.c_uint64,
    "size_t": ctypes.c_size_t,
    "float": ctypes.c_float,
    "double": ctypes.c_double,
    "char": ctypes.c_char,
    # enums the header types as uint32_t
    "bistro_status": ctypes.c_uint32,
}


def read_header():
    with open(HEADER) as f:
        text = f.read()
    # Comments out, so that documentation never looks like code.
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def prototypes(text):
    """{name: (return type, [parameter types])} of every function declared."""
    out = {}
    for m in re.finditer(r"([A-Za-z_][\w \*]*?)\b(bistro_\w+)\s*\(([^;{}]*?)\)\s*;", text):
        ret, name, params = m.group(1), m.group(2), m.group(3)
        if name in out:
            continue
        params = [] if params.strip() in ("", "void") else [p.strip() for p in params.split(",")]
        types = [re.sub(r"\s*\b\w+$", "", p) if not p.endswith("*") else p for p in params]
        out[name] = (" ".join(ret.split()), [" ".join(t.split()) for t in types])
    return out


def struct_fields(text, name):
    m = re.search(r"typedef struct %s \{(.*?)\} %s;" % (name, name), text, flags=re.S)
    if m is None:
        raise AssertionError(f"struct {name} not in the header")
    fields = []
    for decl in m.group(1).split(";"):
        decl = " ".join(decl.split())
        if decl:
            fields.append(re.match(r".*?(\w+)(\s*\[\w+\])?$", decl).group(1))
    return fields


def acceptable(c_type):
    """The ctypes types that pass a C type correctly, as a predicate."""
    t = c_type.replace("const ", "").replace("struct ", "").strip()
    if t == "void":
        return lambda x: x is None
    if t.count("*") == 2:
        return lambda x: x == ctypes.POINTER(ctypes.c_void_p)
    if t.endswith("*"):
        base = t[:-1].strip()
        if base in OPAQUE:
            return lambda x: x == ctypes.c_void_p
        if base in STRUCTS:
            return lambda x: x == ctypes.POINTER(STRUCTS[base])
        if base in ("char", "uint8_t"):
            # Bytes in: a `bytes` object (c_char_p); bytes out: a uint8 pointer.
            return lambda x: x in (ctypes.c_char_p, ctypes.POINTER(ctypes.c_uint8))
        if base in SCALARS:
            return lambda x: x == ctypes.POINTER(SCALARS[base])
        raise AssertionError(f"unknown pointer type {c_type!r}")
    if t in SCALARS:
        return lambda x: x == SCALARS[t]
    raise AssertionError(f"unknown type {c_type!r}")


C_LAYOUT = """
#include <stddef.h>
#include <stdio.h>
#include "bistro.h"
#define FIELD(s, f) printf("%s %s %zu %zu\\n", #s, #f, offsetof(s, f), sizeof(((s *)0)->f));
#define STRUCT(s) printf("%s - %zu %zu\\n", #s, sizeof(s), _Alignof(s));
int main(void) {
%s
    return 0;
}
"""


class TestCtypesMatchHeader(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.text = read_header()
        cls.protos = prototypes(cls.text)

    def test_every_prototype_matches_the_header(self):
        self.assertGreater(len(self.protos), 30, "the header parser found too few functions")
        for name, (restype, argtypes) in bistro._PROTOTYPES.items():
            with self.subTest(function=name):
                self.assertIn(name, self.protos, "not declared in include/bistro.h")
                c_ret, c_params = self.protos[name]
                if c_ret == "const char *":
                    self.assertEqual(restype, ctypes.c_char_p)
                else:
                    self.assertTrue(acceptable(c_ret)(restype),
                                    f"returns {c_ret}, the module says {restype}")
                self.assertEqual(len(argtypes), len(c_params),
                                 f"C takes ({', '.join(c_params)})")
                for i, (c_param, argtype) in enumerate(zip(c_params, argtypes)):
                    self.assertTrue(acceptable(c_param)(argtype),
                                    f"parameter {i} is {c_param}, the module says {argtype}")

    def test_every_struct_layout_matches_the_compiler(self):
        cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
        if cc is None:
            self.fail("no C compiler (cc) to lay out the header's structs")
        lines = []
        for name in STRUCTS:
            lines.append(f"    STRUCT({name})")
            for field in struct_fields(self.text, name):
                lines.append(f"    FIELD({name}, {field})")
        with tempfile.TemporaryDirectory() as tmp:
            src = os.path.join(tmp, "layout.c")
            exe = os.path.join(tmp, "layout")
            with open(src, "w") as f:
                f.write(C_LAYOUT.replace("%s\n    return", "\n".join(lines) + "\n    return", 1))
            subprocess.run([cc, "-std=c11", "-I", os.path.join(REPO, "include"), src, "-o", exe],
                           check=True)
            out = subprocess.run([exe], check=True, capture_output=True, text=True).stdout
        c_fields = {}
        for line in out.splitlines():
            struct, field, a, b = line.split()
            c_fields.setdefault(struct, []).append((field, int(a), int(b)))
        for name, cls in STRUCTS.items():
            with self.subTest(struct=name):
                (_, size, align), *fields = c_fields[name]
                self.assertEqual(ctypes.sizeof(cls), size, "sizeof")
                self.assertEqual(ctypes.alignment(cls), align, "alignment")
                py_fields = [(f, getattr(cls, f).offset, getattr(cls, f).size)
                             for f, _ in cls._fields_]
                self.assertEqual(py_fields, fields, "fields (name, offset, size)")


if __name__ == "__main__":
    unittest.main()
