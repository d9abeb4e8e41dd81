#!/usr/bin/env python3
"""Writes the hand-made seeds of each target into fuzz/corpus/<target>/seed-*: samples of the
formats from the tests and README, and config/hookpipe.toml. Each seed starts with the choice
bytes its target reads first (see the target's source). Run from fuzz/: seeds/make_seeds.py"""
import base64, hashlib, hmac, os, pathlib

def write(target, name, data):
    d = pathlib.Path("corpus") / target
    d.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    (d / f"seed-{name}").write_bytes(data)

PATHS = ["data", "data.items", "items", "a.b", "0", "a.0", "orders.order", "root.item", "a.b.c", "x"]
def path(p):
    return bytes([1 + 4 * PATHS.index(p)]) if p else b"\x00"

# JSON: path, content type, depth, body
for i, (p, body) in enumerate([
    (None, '[{"a":1},{"a":2}]'),
    (None, '{"id":"ord-1","total":12.50,"n":-1e3,"s":"caf\\u00e9 \\ud83d\\ude00","t":true,"z":null,"l":[1,[2,{}]]}'),
    (None, ' \n[ {"id" : 1 } , "x", 3 ] '),
    ("data.items", '{"data":{"items":[{"id":1},{"id":2}]},"id":"x"}'),
    ("0", '[{"a":[1,2]},{"a":3}]'),
    ("a.b", '{"a":{"b":{"c":1}},"a":{"b":[]}}'),
    (None, '\ufeff{"bom":1}'),
    (None, '[' * 20 + ']' * 20),
]):
    write("parse_json", str(i), path(p) + b"\x00\x00" + body.encode())
write("parse_json", "utf16", b"\x00\x04\x00" + '[{"é":"ü"}]'.encode("utf-16le"))

# NDJSON: path, depth, max_lines, content type, body
for i, (p, body) in enumerate([
    (None, '{"a":1}\n{"a":2}\r\n\n[1,2]\n"x"'),
    ("data", '{"data":{"id":1}}\n{"data":[{"id":2},{"id":3}]}\n'),
    (None, '  \n\t\n{"id":"x"}'),
]):
    write("parse_ndjson", str(i), path(p) + b"\x00\x00\x00" + body.encode())

# Form: path, max fields, content type, body
for i, (p, body) in enumerate([
    (None, "name=Jane+Doe&tag=a&tag=caf%C3%A9&empty=&flag"),
    (None, "a=1&&b=%41%42&c=x%2By"),
    ("x", "x=1&x=2"),
    (None, ""),
]):
    write("parse_form", str(i), path(p) + b"\x00\x00" + body.encode())

# Multipart, raw half: flag 0, path, boundary choice, charset, small limits, body
B = "----WebKitFormBoundary7MA4YWxkTrZu0gW"
mp = (f"--{B}\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nJane Doe\r\n"
      f"--{B}\r\nContent-Disposition: form-data; name=\"tag\"\r\n\r\na\r\n"
      f"--{B}\r\nContent-Disposition: form-data; name=\"tag\"\r\nContent-Type: text/plain; charset=utf-8\r\n\r\ncaf\u00e9\r\n"
      f"--{B}\r\nContent-Disposition: form-data; name=\"avatar\"; filename=\"me.png\"\r\nContent-Type: image/png\r\n\r\n\x89PNG\x00\x01\r\n"
      f"--{B}\r\nContent-Disposition: form-data; name=\"f2\"; filename*=UTF-8''na%C3%AFve.txt\r\n\r\n\r\n"
      f"--{B}--\r\n").encode("utf-8")
write("parse_multipart", "raw-0", b"\x00\x00\x01\x00\x00" + mp)
write("parse_multipart", "raw-1", b"\x00\x00\x00\x00\x00" + b"--b\r\nContent-Disposition: form-data; name=_charset_\r\n\r\niso-8859-1\r\n--b\r\nContent-Disposition: form-data; name=x\r\n\r\n\xe9\r\n--b--")
# built half: flag 1, boundary, small limits, count, then per part: name, is_file, [filename], content type, content
def piece(b):
    b = b.encode() if isinstance(b, str) else b
    return bytes([len(b)]) + b
built = b"\x01\x00\x00\x03" + piece("name") + b"\x00" + b"\x00" + piece("Jane") \
    + piece('a "q" \\') + b"\x01" + piece("f.txt") + b"\x01" + piece(b"\x00\xff\r\n") \
    + piece("name") + b"\x00" + b"\x00" + piece("two")
write("parse_multipart", "built-0", built)

# CSV, raw half: flag 0, delimiter, quote, max_rows, columns flag, content type, body
csv = 'id,name,note\r\n1,Jane,\r\n2,"Doe, John","said ""hi""\nthen left"\r\n'
write("parse_csv", "raw-0", b"\x00\x00\x00\x00\x00\x00" + csv.encode())
write("parse_csv", "raw-1", b"\x00\x01\x02\x00\x00\x00" + b"a;b\n1;2\r3;4\n\n5;6")
# built half: flag 1, delimiter, quote, max_rows, width, height, names..., header flag, fields..., line end
def table(width, height, names, fields, header=1):
    out = b"\x01\x00\x00\x00" + bytes([width - 1, height]) + b"".join(piece(n) for n in names) + bytes([header])
    return out + b"".join(piece(f) for f in fields) + b"\x00"
write("parse_csv", "built-0", table(2, 2, ["id", "note"], ["1", "a,b", "2", 'say "x"\nok']))

# XML: path, content type, depth, body
xml = ('<?xml version="1.0" encoding="UTF-8"?>\n<orders xmlns:x="urn:x"><order id="1"><sku>A1</sku>'
       '<qty>2</qty></order><order id="2"><sku>B&amp;2</sku><note><![CDATA[<hi>]]></note>text&#233;</order>'
       '<!-- c --><?pi x?></orders>')
write("parse_xml", "0", path("orders.order") + b"\x00\x00" + xml.encode())
write("parse_xml", "1", b"\x00\x00\x00" + xml.encode())
write("parse_xml", "2", path("root.item") + b"\x00\x00" + b"<root><item>1</item><item><a b='c'/></item><other/></root>")
write("parse_xml", "3", b"\x00\x00\x00" + b'<?xml version="1.0" encoding="ISO-8859-1"?><a>\xe9</a>')
write("parse_xml", "4", b"\x00\x00\x00" + b'<!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>')

# decode: mode (even: round trip), limit, header piece, body
write("decode", "roundtrip-gzip", b"\x02\xff" + piece("gzip") + b'{"hello":"world"}' * 20)
write("decode", "roundtrip-deflate", b"\x04\x10" + piece(" Deflate ") + b"abcabcabcabc")
import gzip, zlib
write("decode", "raw-gzip", b"\x03\xff" + piece("x-gzip") + gzip.compress(b"[1,2,3]" * 50))
write("decode", "raw-zlib", b"\x05\xff" + piece("br") + zlib.compress(b"a" * 5000))
raw_deflate = zlib.compressobj(wbits=-15); rd = raw_deflate.compress(b"xyz" * 100) + raw_deflate.flush()
write("decode", "raw-deflate", b"\x05\x20" + piece("identity") + rd)

# verify, signed half: flag 1, scheme, [scheme options], key piece, skew, id piece, tamper, body
for s in range(8):
    opts = b"\x01\x01\x00" if s == 0 else b""
    write("verify", f"signed-{s}", b"\x01" + bytes([s]) + opts + piece("s3cr3t") + b"\x80" + piece(b"\x01\x02") + bytes([s]) + b'{"id":"evt_1","type":"x"}')
write("verify", "signed-recipe", b"\x01\x08\x01\x01\x00\x00\x03\x00\x05" + piece(".") + b"\x04" + piece("k") + b"\x80" + piece(b"\x07") + b"\x00" + b"body")
# hostile half: flag 0, kind (3 = basic/token/secret-url), ...
write("verify", "hostile-stripe", b"\x00\x00\x02" + piece("t=1700000000,v1=abcd,v0=ef") + piece("") + piece("") + b"{}")
write("verify", "hostile-sw", b"\x00\x00\x05" + piece("v1,AAAA v2,BBBB") + piece("1700000000") + piece("msg_1") + b"{}")
write("verify", "hostile-basic", b"\x00\x03\x00" + piece("user:pass") + piece("user:pass") + piece("") + b"\x01")
write("verify", "hostile-token", b"\x00\x03\x01" + piece("tok-abc") + piece("Bearer tok-abc") + piece("token=tok%2Dabc&x=1"))
write("verify", "hostile-url", b"\x00\x03\x02" + piece("abcdefghijklmnop1234") + piece("abcdefghijklmnop1234?x=1") + piece(""))

# recipe_template: the template itself
for i, t in enumerate(["{body}", "v0:{timestamp}:{body}", "{id}.{timestamp}.{body}", "{url}{form_params}",
                       "{method} {url}\n{{x}}:{body}", "é{unknown}", "{body", "}}{{{body}"]):
    write("recipe_template", str(i), t)

# config: TOML, NUL, overrides
toml = pathlib.Path("../config/hookpipe.toml").read_text()
write("config", "example", toml.encode() + b"\x00KAFKA__BROKERS=127.0.0.1:9092\nLISTENERS__ORDERS__PAGE_SIZE=5\n")
base = '[server]\npublic_id_secret = "0123456789abcdef0123"\n[[listeners]]\nid = "orders"\n'
write("config", "base", base)
write("config", "listener", base + 'resource_path = "data.items"\ntrace_key_template = "{{id}}"\n[listeners.content]\naccept = ["json", "csv"]\n[listeners.verification]\ntype = "hmac"\nalgorithm = "sha256"\nencoding = "hex"\nheader = "X-Sig"\nsecrets = ["s"]\n')

# templates: flag (1: hostile records), template index, strict, record(s)
records = ['{"a":"x","b":"y"}', '{"sku":"A1","tags":["red","big"]}', '{"email":"Ada@Example.COM"}',
           '{"created_at":"2024-03-05T23:30:00-02:00","ts":1709681400000,"date":"05.03.2024"}',
           '{"qty":"4","total":10,"discount":2.5}', '{"customer":{"id":7,"tags":["a"]},"user":"hello"}',
           '[{"id":1,"items":[{"sku":"A"},{"sku":"B"}]},{"id":"x"}]', '{"data":{"id":"d","type":"t"},"phone":"555-123"}']
for i, r in enumerate(records):
    write("templates", f"record-{i}", bytes([1, i * 3, 0]) + r.encode())
for i, t in enumerate(['{{join "_" (lowercase email) (substring id 0 3)}}', "{{#each items}}{{@index}}:{{sku}}{{/each}}",
                       '{{#if t}}{{dateFormat "YYYY" created_at}}{{else}}{{default z "n"}}{{/if}}', "{{#with customer}}{{name}}{{/with}}"]):
    write("templates", f"template-{i}", b"\x00" + t.encode())

# page: flag 1 round trip: listener, page, created, count, then per record fields
rec = piece("r1-0") + piece("r1") + piece("T\"1") + b"\x01" + piece("https://x/1") + piece("2026-01-01T00:00:00.010Z") \
    + b"\x01" + piece("d-1") + b"\x00" + piece('{"id":"o-1","x":[1,2]}')
write("page", "roundtrip", b"\x01" + piece("orders") + piece("p-1") + piece("2026-01-01T00:00:00.000Z") + b"\x02" + rec + rec)
write("page", "raw", b"\x00" + b'{"type":"page","version":1,"listener_id":"orders","page_id":"p1","created_at":"2026-01-01T00:00:00.000Z","records":[{"id":"r-0","trace_key":"A","data":{"x":1}},{"id":"r-1","attempt":3,"data":2}]}')
