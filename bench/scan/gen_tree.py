#!/usr/bin/env python3
"""Writes a tree of text files with a few planted secrets, for scanner benchmarks.

usage: gen_tree.py DIR TOTAL_MB [PLANTED] [--synthetic]

By default the tree is real source text: the C/C++ headers, Python, Perl, JavaScript and
CMake files installed on this machine (/usr/include, /usr/lib/python3*, ...), copied over and
over until TOTAL_MB is reached. With --synthetic the lines come from a generated pool of
C++/Python/YAML/JSON-like lines instead, where words like token/password/secret are far more
frequent than in real code (a harder case for the keyword prefilter).

PLANTED secrets (default 20) of several formats go into random files; they are listed in
DIR.planted (one per line) so a benchmark can check that all were found. The secrets are
assembled from pieces here, so this file itself holds none.
"""
import os
import random
import string
import sys

ALNUM = string.ascii_letters + string.digits
WORDS = ("request response handler config value index buffer count total user name id "
         "token password secret key session cache client server route weight release "
         "deploy instance health check status error retry timeout limit size path").split()

PLAIN = "etag digest checksum commit hash revision build object blob".split()


def ident(rng):
    return "_".join(rng.choice(WORDS) for _ in range(rng.randint(1, 3)))


def pool_line(rng):
    k = rng.randint(0, 9)
    if k == 0:
        return f"  // {' '.join(rng.choice(WORDS) for _ in range(rng.randint(3, 12)))}"
    if k == 1:
        return f"  {ident(rng)} = \"{' '.join(rng.choice(WORDS) for _ in range(rng.randint(1, 4)))}\""
    if k == 2:
        return f"    {ident(rng)}: {rng.randint(0, 100000)}"
    if k == 3:
        return f"  if ({ident(rng)} > {rng.randint(0, 999)}) return {ident(rng)}({ident(rng)});"
    if k == 4:
        return f"def {ident(rng)}(self, {ident(rng)}, {ident(rng)}=None):"
    if k == 5:
        return f"  \"{rng.choice(PLAIN)}_{rng.choice(PLAIN)}\": \"{''.join(rng.choice(string.hexdigits) for _ in range(rng.randint(8, 40)))}\","
    if k == 6:
        return f"  auto {ident(rng)} = {ident(rng)}.get_{ident(rng)}();"
    if k == 7:
        return f"  {ident(rng)}_token = os.environ[\"{ident(rng).upper()}\"]"
    if k == 8:
        return ""
    return f"  for (size_t i = 0; i < {ident(rng)}.size(); ++i) {{ {ident(rng)} += i; }}"


def planted(rng, i):
    kinds = [
        lambda: "gh" + "p_" + "".join(rng.choice(ALNUM) for _ in range(36)),
        lambda: "AK" + "IA" + "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(16)),
        lambda: "gl" + "pat-" + "".join(rng.choice(ALNUM) for _ in range(20)),
        lambda: "sk" + "_live_" + "".join(rng.choice(ALNUM) for _ in range(24)),
        lambda: "npm" + "_" + "".join(rng.choice(ALNUM) for _ in range(36)),
    ]
    return f"  credential = {kinds[i % len(kinds)]()}"


SOURCE_DIRS = ["/usr/include", "/usr/lib/python3", "/usr/share/perl", "/usr/share/perl5",
               "/usr/lib/node_modules", "/usr/share/cmake-3.25", "/usr/src"]
SOURCE_EXT = (".h", ".hpp", ".hh", ".hxx", ".c", ".cc", ".cpp", ".inl", ".py", ".pm", ".pl",
              ".js", ".mjs", ".ts", ".json", ".cmake", ".txt", ".md", ".rst", ".yaml", ".yml",
              ".sh", ".toml", ".cfg", ".ini")


def real_sources():
    files = []
    for base in SOURCE_DIRS + sorted(d for d in os.listdir("/usr/lib") if d.startswith("python3.")):
        base = base if base.startswith("/") else os.path.join("/usr/lib", base)
        for dirpath, _, names in os.walk(base):
            for name in names:
                p = os.path.join(dirpath, name)
                if name.endswith(SOURCE_EXT) and os.path.isfile(p) and not os.path.islink(p):
                    size = os.path.getsize(p)
                    if 0 < size < (1 << 20):
                        files.append((p, size))
    files.sort()
    return files


def write_real(root, total, nplant, rng, manifest):
    sources = real_sources()
    corpus = sum(s for _, s in sources)
    copies = max(1, -(-total // corpus))
    plan = []
    written = 0
    for c in range(copies):
        for i, (p, size) in enumerate(sources):
            if written >= total:
                break
            plan.append((c, i, p))
            written += size
    plant_at = set(rng.sample(range(len(plan)), min(nplant, len(plan))))
    written = 0
    for n, (c, i, p) in enumerate(plan):
        with open(p, "rb") as f:
            data = f.read()
        if n in plant_at:
            secret_line = planted(rng, n)
            manifest.append(secret_line.split(" = ", 1)[1])
            cut = data.find(b"\n", len(data) // 2) + 1
            data = data[:cut] + secret_line.encode() + b"\n" + data[cut:]
        out = os.path.join(root, f"copy{c}", p.lstrip("/"))
        os.makedirs(os.path.dirname(out), exist_ok=True)
        with open(out, "wb") as f:
            f.write(data)
        written += len(data)
    return len(plan), written


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    root, total_mb = args[0], float(args[1])
    nplant = int(args[2]) if len(args) > 2 else 20
    rng = random.Random(42)
    manifest = []
    if "--synthetic" not in sys.argv:
        files, written = write_real(root, int(total_mb * (1 << 20)), nplant, rng, manifest)
        with open(root.rstrip("/") + ".planted", "w") as f:
            f.write("\n".join(manifest) + "\n")
        print(f"files={files} bytes={written} planted={len(manifest)}")
        return
    pool = [pool_line(rng) + "\n" for _ in range(50000)]
    blob = "".join(pool)
    total = int(total_mb * (1 << 20))
    sizes = []
    while sum(sizes) < total:
        sizes.append(int(rng.choice([2, 8, 16, 32, 64, 128, 512]) * 1024 * rng.uniform(0.5, 1.5)))
    plant_at = set(rng.sample(range(len(sizes)), min(nplant, len(sizes))))
    written = 0
    for n, size in enumerate(sizes):
        start = rng.randrange(0, len(blob) - size - 1) if len(blob) > size + 1 else 0
        text = blob[start:start + size]
        while len(text) < size:
            text += blob[: size - len(text)]
        text = text[text.find("\n") + 1:]
        if n in plant_at:
            cut = text.find("\n", len(text) // 2) + 1
            secret_line = planted(rng, n)
            manifest.append(secret_line.split(" = ", 1)[1])
            text = text[:cut] + secret_line + "\n" + text[cut:]
        ext = rng.choice([".cpp", ".py", ".yaml", ".json", ".go", ".ts"])
        d = os.path.join(root, f"d{n % 97:02d}", f"s{n % 13}")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"f{n}{ext}"), "w") as f:
            f.write(text)
        written += len(text)
    with open(root.rstrip("/") + ".planted", "w") as f:
        f.write("\n".join(manifest) + "\n")
    print(f"files={len(sizes)} bytes={written} planted={len(manifest)}")


if __name__ == "__main__":
    main()
