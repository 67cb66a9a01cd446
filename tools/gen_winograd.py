#!/usr/bin/env python3
"""gen_winograd.py: derives the Winograd F(m,3) transforms (Toom-Cook, exact
fractions) for cl/winograd.cl and prints them as OpenCL C functions.

1-D correlation y_i = sum_j d_(i+j) g_j (i < m, alpha = m + 2 inputs) is
    y = A^T [(G g) . (B^T d)],  A^T = V_m^T, G = V_3, B^T = V^-T,
V the alpha x alpha Vandermonde matrix of the points (plus infinity). Rows of
B^T are scaled to small integers and G by the inverse. The point sets are
closed under t -> 1/t (0 <-> inf), so the transform of the flipped filter is
a signed permutation of the filter's transform: (G J g)_a = s_a (G g)_pi(a).
The backward pass (correlation with the flipped, transposed kernel) then
reuses the forward's transformed weights U with
    Bb^T row b = s_pi(b) * B^T row pi(b),   Ab^T column b = A^T column pi(b).
Usage: tools/gen_winograd.py > /tmp/w.cl, then paste between the markers."""
from fractions import Fraction as F
from math import gcd, lcm

INF = None


def vrow(t, n):
    return [F(0)] * (n - 1) + [F(1)] if t is INF else [F(t) ** i for i in range(n)]


def inverse(m):
    n = len(m)
    a = [row[:] + [F(int(i == j)) for j in range(n)] for i, row in enumerate(m)]
    for c in range(n):
        p = next(r for r in range(c, n) if a[r][c] != 0)
        a[c], a[p] = a[p], a[c]
        pv = a[c][c]
        a[c] = [x / pv for x in a[c]]
        for r in range(n):
            if r != c and a[r][c] != 0:
                f = a[r][c]
                a[r] = [x - f * y for x, y in zip(a[r], a[c])]
    return [row[n:] for row in a]


def transpose(m):
    return [list(r) for r in zip(*m)]


def derive(m, pts):
    alpha = m + 2
    pts = list(pts) + [INF]
    V = [vrow(t, alpha) for t in pts]
    AT = transpose([vrow(t, m) for t in pts])
    G = [vrow(t, 3) for t in pts]
    BT = transpose(inverse(V))
    for a in range(alpha):  # integer rows of B^T, G scaled inversely
        lam = F(lcm(*[x.denominator for x in BT[a]]))
        lam /= gcd(*[(x * lam).numerator for x in BT[a]])
        BT[a] = [x * lam for x in BT[a]]
        G[a] = [x / lam for x in G[a]]
    # flip relation: G J row a = s_a * G row pi(a)
    pi, s = [], []
    for a in range(alpha):
        gj = G[a][::-1]
        for b in range(alpha):
            k = next((gj[i] / G[b][i] for i in range(3) if G[b][i] != 0), None)
            if k is not None and all(gj[i] == k * G[b][i] for i in range(3)):
                pi.append(b)
                s.append(k)
                break
        else:
            raise SystemExit("point set not closed under inversion")
    BbT = [[s[pi[b]] * x for x in BT[pi[b]]] for b in range(alpha)]
    AbT = [[AT[i][pi[b]] for b in range(alpha)] for i in range(m)]
    return dict(BT=BT, BbT=BbT, AT=AT, AbT=AbT, G=G)


def lit(x):
    if x.denominator == 1:
        return "%d.0f" % x.numerator
    return "(%d.0f / %d.0f)" % (x.numerator, x.denominator) if x > 0 else \
        "(-%d.0f / %d.0f)" % (-x.numerator, x.denominator)


def body(M, width):
    """The statements out[i*os] = ... of M, wrapped to width columns."""
    lines = []
    for i, row in enumerate(M):
        terms = []
        for j, x in enumerate(row):
            if x == 0:
                continue
            v = "in[%d * is]" % j
            terms.append(v if x == 1 else "-" + v if x == -1 else "%s * %s" % (lit(x), v))
        expr = " + ".join(terms).replace("+ -", "- ") if terms else "0.0f"
        line = "    out[%d * os] = %s;" % (i, expr)
        while len(line) > width:  # wrap before a + or - that fits
            cut = max(line.rfind(" + ", 0, width), line.rfind(" - ", 0, width))
            lines.append(line[:cut])
            line = "        " + line[cut + 1:]
        lines.append(line)
    return lines


def emit(name, M):
    print("/* out[i*os] = sum_j %s[i][j] * in[j*is] */" % name)
    print("void %s(const float *in, const int is, float *out, const int os) {" % name)
    print("\n".join(body(M, 100)))
    print("}")


def emit_lanes(name, M):
    """M once, as a macro of the element type, then on floats (name) and on
    float8 lanes (name8), for the CPU kernels' 8 tiles at once."""
    macro = name.upper() + "_OF"
    print("/* out[i*os] = sum_j %s[i][j] * in[j*is], on floats (%s) and float8 lanes "
          "(%s8) */" % (name, name, name))
    lines = ["#define %s(NAME, T)" % macro,
             "    void NAME(const T *in, const int is, T *out, const int os) {"]
    lines += ["    " + l for l in body(M, 88)] + ["    }"]
    for l in lines[:-1]:
        print(l + " " * max(1, 93 - len(l)) + "\\")
    print(lines[-1])
    print("%s(%s, float)" % (macro, name))
    print("%s(%s8, float8)" % (macro, name))


def main():
    for m, pts in ((2, (0, 1, -1)), (4, (0, 1, -1, 2, F(1, 2)))):
        d = derive(m, pts)
        print("/* F(%dx%d,3x3), points %s, inf */" % (m, m, ", ".join(str(p) for p in pts)))
        for k in ("BT", "BbT", "AT", "AbT", "G"):
            if m == 4 and k != "G":  # the CPU kernels take these on float8 lanes too
                emit_lanes("wg%d_%s" % (m, k.lower()), d[k])
            else:
                emit("wg%d_%s" % (m, k.lower()), d[k])
        print()


if __name__ == "__main__":
    main()
