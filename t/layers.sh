#!/usr/bin/python3
# The layering of libmail/ (README "Layout"): each folder is a layer, and an
# #include may not point the forbidden ways below. Prints one line per
# violation and exits 1 on any. Usage: t/layers.sh [SOURCE_DIR]
import pathlib, re, sys

ROOT = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).resolve().parent.parent)
LAYERS = ["base", "mail", "smtp", "io", "auth", "store", "policy", "app", "daemon", "tool"]
# layer -> the layers it may not import
FORBIDDEN = {
    "base": set(LAYERS) - {"base"},
    "mail": {"policy", "store", "app", "daemon", "tool"},
    "smtp": {"policy", "store", "app", "daemon", "tool", "io"},
    "auth": {"store", "policy", "app", "daemon", "tool"},
    "store": {"policy", "auth"},
    "daemon": {"tool"},
}
INCLUDE = re.compile(r'^\s*#\s*include\s*"libmail/([^"]+)"')


def layer_of(rel):
    parts = pathlib.PurePosixPath(rel).parts
    return parts[0] if len(parts) > 1 else "(none)"


def is_program_body(rel):
    return layer_of(rel) == "tool" and pathlib.PurePosixPath(rel).stem.endswith("_cmd")


bad = 0
lib = ROOT / "libmail"
for path in sorted(p for p in lib.rglob("*") if p.suffix in (".hpp", ".cpp")):
    rel = path.relative_to(lib).as_posix()
    a = layer_of(rel)
    if a not in LAYERS:
        print(f"libmail/{rel}: not in a layer folder ({', '.join(LAYERS)})")
        bad += 1
    for line in path.read_text(errors="replace").splitlines():
        m = INCLUDE.match(line)
        if not m:
            continue
        inc = m.group(1)
        b = layer_of(inc)
        why = None
        if b == a and pathlib.PurePosixPath(inc).stem == path.stem:
            continue  # a file's own header
        if b in FORBIDDEN.get(a, ()):
            why = f"layer {a} may not import layer {b}"
        elif b == "tool" and a != "tool":
            why = f"layer {a} may not import layer tool"
        elif is_program_body(rel) and is_program_body(inc):
            why = "a program body (*_cmd) may not import another"
        if why:
            print(f"libmail/{rel}: includes libmail/{inc} ({why})")
            bad += 1
sys.exit(1 if bad else 0)
