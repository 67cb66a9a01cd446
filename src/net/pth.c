/* pth.c: PyTorch checkpoints (torch.save of a state_dict) without Python.
 *
 * Two containers exist:
 *  - zip (torch >= 1.6): stored entries PREFIX/data.pkl (the pickle) and
 *    PREFIX/data/KEY (raw little-endian storages); PREFIX is the archive's
 *    name, not necessarily "archive";
 *  - legacy (torchvision's vgg19-dcbb9e9d.pth): pickles in a row (magic
 *    number, protocol 1001, sys_info, the object, the list of storage keys),
 *    then per key an int64 element count and the raw storage.
 * The object pickle is run by a tiny VM that knows only what a state_dict
 * needs: containers, numbers, strings, collections.OrderedDict and
 * torch._utils._rebuild_tensor{,_v2} / _rebuild_parameter over Float, Half
 * and BFloat16 storages. Any other global, opcode or call is refused: a
 * checkpoint can never make us run code. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "nst_int.h"
#include "weights.h"

#define MAX_VALUES (1 << 22)
#define MAX_MEMO (1 << 20)
#define MAX_ITEMS (1 << 20)
#define MAX_PICKLE ((size_t)64 << 20)
#define MAX_NUMEL ((int64_t)1 << 40)

/* ---- values ------------------------------------------------------------ */

enum { V_NONE, V_BOOL, V_INT, V_FLOAT, V_STR, V_TUPLE, V_LIST, V_DICT, V_GLOBAL, V_STORAGE,
       V_TENSOR, V_MARK };
enum { G_ODICT, G_REBUILD, G_REBUILD_V2, G_REBUILD_PARAM, G_F32, G_F16, G_BF16 };

typedef struct val val;
struct val {
    int kind;
    int64_t i;          /* int, bool, global id, storage dtype (G_F32..) */
    const char *s;      /* str (not NUL-terminated; into the pickle buffer) */
    size_t len;         /* str length */
    val **items;        /* tuple/list items; dict: key, value, key, value... */
    size_t n, cap;
    /* storage: s/len = key, numel; tensor: st, offset, rank, size, stride */
    int64_t numel, offset;
    val *st;
    int rank;
    int64_t size[4], stride[4];
};

typedef struct vm {
    const char *path;
    const unsigned char *p;
    size_t len, pos;
    val **all;          /* every value, freed together */
    size_t nall, capall;
    val **stack;
    size_t sp, capstack;
    val **memo;
    size_t nmemo;
    nst_msg *msg;
    val mark;           /* the MARK pushed by '(' (kind V_MARK), the VM's own */
} vm;

static void vm_free(vm *m) {
    for (size_t i = 0; i < m->nall; i++) {
        free(m->all[i]->items);
        free(m->all[i]);
    }
    free(m->all);
    free(m->stack);
    free(m->memo);
    memset(m, 0, sizeof *m);
}

static nst_status bad(vm *m, const char *what) {
    return nst_fail(m->msg, NST_ERR_FORMAT, "%s: pickle at byte %zu: %s", m->path, m->pos, what);
}

static val *vnew(vm *m, int kind) {
    if (m->nall >= MAX_VALUES) return NULL;
    if (m->nall == m->capall) {
        size_t c = m->capall ? 2 * m->capall : 256;
        val **a = realloc(m->all, c * sizeof *a);
        if (!a) return NULL;
        m->all = a, m->capall = c;
    }
    val *v = calloc(1, sizeof *v);
    if (!v) return NULL;
    v->kind = kind;
    m->all[m->nall++] = v;
    return v;
}

static int vadd(val *c, val *x) {
    if (c->n >= 2 * MAX_ITEMS) return 0;
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 8;
        val **a = realloc(c->items, cap * sizeof *a);
        if (!a) return 0;
        c->items = a, c->cap = cap;
    }
    c->items[c->n++] = x;
    return 1;
}

static int push(vm *m, val *v) {
    if (!v) return 0;
    if (m->sp == m->capstack) {
        if (m->capstack >= MAX_ITEMS) return 0;
        size_t c = m->capstack ? 2 * m->capstack : 64;
        val **a = realloc(m->stack, c * sizeof *a);
        if (!a) return 0;
        m->stack = a, m->capstack = c;
    }
    m->stack[m->sp++] = v;
    return 1;
}

static int streq(const val *v, const char *s) {
    return v && v->kind == V_STR && v->len == strlen(s) && !memcmp(v->s, s, v->len);
}

/* ---- the VM ------------------------------------------------------------ */

static const char *const gname[] = {"collections.OrderedDict", "torch._utils._rebuild_tensor",
                              "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_parameter",
                              "torch.FloatStorage", "torch.HalfStorage", "torch.BFloat16Storage"};

static nst_status global(vm *m, const char *mod, size_t ml, const char *name, size_t nl) {
    char full[128];
    snprintf(full, sizeof full, "%.*s.%.*s", (int)(ml < 60 ? ml : 60), mod,
             (int)(nl < 60 ? nl : 60), name);
    for (int g = 0; g < (int)(sizeof gname / sizeof gname[0]); g++)
        if (!strcmp(full, gname[g])) {
            val *v = vnew(m, V_GLOBAL);
            if (!v || !push(m, v)) return bad(m, "out of memory");
            v->i = g;
            return NST_OK;
        }
    return nst_fail(m->msg, NST_ERR_FORMAT,
                    "%s: the pickle refers to %s, which a weights file has no business using; "
                    "refused (only tensors and ordered dicts are loaded, nothing is ever run)",
                    m->path, full);
}

static int as_int(const val *v, int64_t *out) {
    if (!v || (v->kind != V_INT && v->kind != V_BOOL)) return 0;
    *out = v->i;
    return 1;
}

/* Fills a tensor from (storage, offset, size, stride). */
static nst_status make_tensor(vm *m, val *const *a, val **out) {
    val *st = a[0], *sz = a[2], *sd = a[3];
    int64_t off;
    if (st->kind != V_STORAGE || !as_int(a[1], &off) || sz->kind != V_TUPLE ||
        sd->kind != V_TUPLE || sz->n != sd->n)
        return bad(m, "a tensor needs (storage, offset, size tuple, stride tuple)");
    if (sz->n < 1 || sz->n > 4) return bad(m, "a tensor has a rank outside 1..4");
    val *t = vnew(m, V_TENSOR);
    if (!t) return bad(m, "out of memory");
    t->st = st;
    t->offset = off;
    t->rank = (int)sz->n;
    for (int i = 0; i < t->rank; i++)
        if (!as_int(sz->items[i], &t->size[i]) || !as_int(sd->items[i], &t->stride[i]))
            return bad(m, "a tensor's size or stride is not an integer");
    *out = t;
    return NST_OK;
}

static nst_status reduce(vm *m, val *fn, val *args) {
    if (fn->kind != V_GLOBAL || args->kind != V_TUPLE)
        return bad(m, "REDUCE of something that is not an allowed callable");
    val *r = NULL;
    nst_status st;
    switch (fn->i) {
    case G_ODICT:
        if (args->n != 0) return bad(m, "OrderedDict built from arguments");
        r = vnew(m, V_DICT);
        break;
    case G_REBUILD:
    case G_REBUILD_V2:
        if (args->n < 4 || args->n > 7)
            return bad(m, "_rebuild_tensor called with the wrong number of arguments");
        if ((st = make_tensor(m, args->items, &r))) return st;
        break;
    case G_REBUILD_PARAM:
        if (args->n < 1 || args->items[0]->kind != V_TENSOR)
            return bad(m, "_rebuild_parameter of something that is not a tensor");
        r = args->items[0];
        break;
    default:
        return nst_fail(m->msg, NST_ERR_FORMAT, "%s: the pickle calls %s; refused", m->path,
                        gname[fn->i]);
    }
    return push(m, r) ? NST_OK : bad(m, "out of memory");
}

/* A persistent id: ('storage', StorageType, key, location, numel[, view]). */
static nst_status persid(vm *m, val *pid) {
    if (pid->kind != V_TUPLE || pid->n < 1) return bad(m, "persistent id is not a tuple");
    if (streq(pid->items[0], "module"))
        return nst_fail(m->msg, NST_ERR_FORMAT,
                        "%s: this checkpoint holds a whole pickled model, not a state_dict; "
                        "save model.state_dict() instead", m->path);
    if (!streq(pid->items[0], "storage") || pid->n < 5 || pid->n > 6)
        return bad(m, "persistent id is not ('storage', type, key, location, numel)");
    val *ty = pid->items[1], *key = pid->items[2];
    val *v = vnew(m, V_STORAGE);
    if (!v) return bad(m, "out of memory");
    if (ty->kind != V_GLOBAL || ty->i < G_F32)
        return bad(m, "storage type is not Float, Half or BFloat16");
    if (key->kind != V_STR || key->len == 0 || key->len > 40)
        return bad(m, "storage key is not a short string");
    if (!as_int(pid->items[4], &v->numel) || v->numel < 0 || v->numel > MAX_NUMEL)
        return bad(m, "storage size is not an integer in 0..2^40");
    if (pid->n == 6 && pid->items[5]->kind != V_NONE)
        return bad(m, "storage views are not supported");
    v->i = ty->i;
    v->s = key->s;
    v->len = key->len;
    return push(m, v) ? NST_OK : bad(m, "out of memory");
}

#define NEED(k)                                                                    \
    do {                                                                           \
        if (m->len - m->pos < (size_t)(k)) return bad(m, "stream ends early (truncated file?)"); \
    } while (0)
#define POP(v)                                                                     \
    do {                                                                           \
        if (m->sp == 0 || m->stack[m->sp - 1]->kind == V_MARK)                     \
            return bad(m, "stack underflow");                                      \
        (v) = m->stack[--m->sp];                                                   \
    } while (0)

static uint64_t le(const unsigned char *p, int n) {
    uint64_t x = 0;
    for (int i = n - 1; i >= 0; i--) x = x << 8 | p[i];
    return x;
}

/* Index of the topmost MARK, or fails. */
static nst_status find_mark(vm *m, size_t *at) {
    for (size_t i = m->sp; i-- > 0;)
        if (m->stack[i]->kind == V_MARK) {
            *at = i;
            return NST_OK;
        }
    return bad(m, "no MARK on the stack");
}

/* Runs one pickle from m->pos to its STOP; *out is the result. */
static nst_status vm_run(vm *m, val **out) {
    nst_status st;
    m->sp = 0;
    m->nmemo = 0; /* each pickle has its own memo */
    m->mark.kind = V_MARK;
    for (;;) {
        NEED(1);
        size_t at = m->pos;
        unsigned char op = m->p[m->pos++];
        val *v = NULL, *a = NULL, *b = NULL;
        size_t mk = 0;
        uint64_t k;
        switch (op) {
        case 0x80: NEED(1); m->pos++; break;                      /* PROTO */
        case 0x95: NEED(8); m->pos += 8; break;                   /* FRAME */
        case '.':                                                 /* STOP */
            POP(v);
            *out = v;
            return NST_OK;
        case '(': if (!push(m, &m->mark)) return bad(m, "stack too deep"); break;
        case 'N': v = vnew(m, V_NONE); goto pushv;
        case 0x88: case 0x89: v = vnew(m, V_BOOL); if (v) v->i = op == 0x88; goto pushv;
        case 'K': NEED(1); v = vnew(m, V_INT); if (v) v->i = m->p[m->pos]; m->pos += 1; goto pushv;
        case 'M': NEED(2); v = vnew(m, V_INT); if (v) v->i = (int64_t)le(m->p + m->pos, 2);
            m->pos += 2; goto pushv;
        case 'J': NEED(4); v = vnew(m, V_INT); if (v) v->i = (int32_t)(uint32_t)le(m->p + m->pos, 4);
            m->pos += 4; goto pushv;
        case 0x8a:                                                /* LONG1 */
            NEED(1); k = m->p[m->pos++];
            if (k > 8) return bad(m, "integer wider than 64 bits");
            NEED(k);
            v = vnew(m, V_INT);
            if (v) {
                uint64_t x = le(m->p + m->pos, (int)k);
                if (k > 0 && k < 8 && (m->p[m->pos + k - 1] & 0x80)) x |= ~0ULL << (8 * k);
                v->i = (int64_t)x;
            }
            m->pos += k;
            goto pushv;
        case 'G': {                                               /* BINFLOAT */
            NEED(8);
            v = vnew(m, V_FLOAT); /* the value itself is never needed */
            m->pos += 8;
            goto pushv;
        }
        case 'X': case 'T': case 'B': case 'U': case 0x8c: case 'C': { /* strings, bytes */
            int w = (op == 'U' || op == 0x8c || op == 'C') ? 1 : 4;
            NEED(w);
            k = le(m->p + m->pos, w);
            m->pos += w;
            NEED(k);
            v = vnew(m, V_STR);
            if (v) v->s = (const char *)m->p + m->pos, v->len = (size_t)k;
            m->pos += k;
            goto pushv;
        }
        case ')': v = vnew(m, V_TUPLE); goto pushv;
        case ']': v = vnew(m, V_LIST); goto pushv;
        case '}': v = vnew(m, V_DICT); goto pushv;
        case 0x85: case 0x86: case 0x87: {                        /* TUPLE1..3 */
            size_t n = (size_t)(op - 0x84);
            if (m->sp < n) return bad(m, "stack underflow");
            v = vnew(m, V_TUPLE);
            if (!v) return bad(m, "out of memory");
            for (size_t i = m->sp - n; i < m->sp; i++)
                if (m->stack[i]->kind == V_MARK || !vadd(v, m->stack[i]))
                    return bad(m, "bad tuple");
            m->sp -= n;
            goto pushv;
        }
        case 't': case 'e': case 'u': {                           /* TUPLE, APPENDS, SETITEMS */
            if ((st = find_mark(m, &mk))) return st;
            if (op == 't') {
                v = vnew(m, V_TUPLE);
            } else {
                if (mk == 0) return bad(m, "APPENDS/SETITEMS without a container");
                v = m->stack[mk - 1];
                if (v->kind != (op == 'e' ? V_LIST : V_DICT))
                    return bad(m, op == 'e' ? "APPENDS to a non-list" : "SETITEMS to a non-dict");
                if (op == 'u' && (m->sp - mk - 1) % 2) return bad(m, "odd SETITEMS");
            }
            if (!v) return bad(m, "out of memory");
            for (size_t i = mk + 1; i < m->sp; i++)
                if (!vadd(v, m->stack[i])) return bad(m, "container too large");
            m->sp = mk;
            if (op == 't') goto pushv;
            break;
        }
        case 'a': case 's':                                       /* APPEND, SETITEM */
            POP(a);
            if (op == 's') POP(b);
            if (m->sp == 0) return bad(m, "stack underflow");
            v = m->stack[m->sp - 1];
            if (v->kind != (op == 'a' ? V_LIST : V_DICT)) return bad(m, "APPEND/SETITEM target");
            if ((b && !vadd(v, b)) || !vadd(v, a)) return bad(m, "container too large");
            break;
        case 'q': case 'r': case 0x94:                            /* BINPUT, LONG_BINPUT, MEMOIZE */
            if (op == 0x94) k = m->nmemo;
            else {
                int w = op == 'q' ? 1 : 4;
                NEED(w);
                k = le(m->p + m->pos, w);
                m->pos += w;
            }
            if (m->sp == 0 || m->stack[m->sp - 1]->kind == V_MARK) return bad(m, "memo of nothing");
            if (k >= MAX_MEMO) return bad(m, "memo index beyond the limit");
            if (k >= m->nmemo) {
                val **a2 = realloc(m->memo, (k + 1) * sizeof *a2);
                if (!a2) return bad(m, "out of memory");
                for (size_t i = m->nmemo; i <= k; i++) a2[i] = NULL;
                m->memo = a2, m->nmemo = (size_t)k + 1;
            }
            m->memo[k] = m->stack[m->sp - 1];
            break;
        case 'h': case 'j': {                                     /* BINGET, LONG_BINGET */
            int w = op == 'h' ? 1 : 4;
            NEED(w);
            k = le(m->p + m->pos, w);
            m->pos += w;
            if (k >= m->nmemo || !m->memo[k]) return bad(m, "memo lookup of an unset index");
            v = m->memo[k];
            goto pushv;
        }
        case 'c': {                                               /* GLOBAL "mod\nname\n" */
            const char *s = (const char *)m->p + m->pos;
            const char *e1 = memchr(s, '\n', m->len - m->pos);
            if (!e1) return bad(m, "stream ends early (truncated file?)");
            const char *e2 = memchr(e1 + 1, '\n', m->len - m->pos - (size_t)(e1 + 1 - s));
            if (!e2) return bad(m, "stream ends early (truncated file?)");
            m->pos += (size_t)(e2 + 1 - s);
            if ((st = global(m, s, (size_t)(e1 - s), e1 + 1, (size_t)(e2 - e1 - 1)))) return st;
            break;
        }
        case 0x93:                                                /* STACK_GLOBAL */
            POP(b);
            POP(a);
            if (a->kind != V_STR || b->kind != V_STR) return bad(m, "STACK_GLOBAL of non-strings");
            if ((st = global(m, a->s, a->len, b->s, b->len))) return st;
            break;
        case 'R':                                                 /* REDUCE */
            POP(b);
            POP(a);
            if ((st = reduce(m, a, b))) return st;
            break;
        case 'Q':                                                 /* BINPERSID */
            POP(a);
            if ((st = persid(m, a))) return st;
            break;
        case 'b':                                                 /* BUILD */
            POP(b);
            if (m->sp == 0) return bad(m, "stack underflow");
            /* Only an OrderedDict's own attributes (state_dict's _metadata). */
            if (m->stack[m->sp - 1]->kind != V_DICT || b->kind != V_DICT)
                return bad(m, "BUILD of an object that is not an OrderedDict; refused");
            break;
        default: {
            char what[96];
            snprintf(what, sizeof what,
                     "opcode 0x%02x ('%c') is not allowed in a weights file; refused", op,
                     op >= 32 && op < 127 ? op : '?');
            m->pos = at;
            return bad(m, what);
        }
        }
        continue;
    pushv:
        if (!push(m, v)) return bad(m, "out of memory or stack too deep");
    }
}

/* ---- file access -------------------------------------------------------- */

typedef struct src {
    const char *path;
    FILE *f;
    uint64_t size;
} src;

static nst_status read_at(src *s, uint64_t off, void *buf, size_t n, nst_msg *msg) {
    if (off > s->size || n > s->size - off)
        return nst_fail(msg, NST_ERR_FORMAT, "%s: data at byte %llu (+%zu) lies beyond the end "
                        "of the file (truncated?)", s->path, (unsigned long long)off, n);
    if (fseeko(s->f, (off_t)off, SEEK_SET) || fread(buf, 1, n, s->f) != n)
        return nst_fail(msg, NST_ERR_IO, "%s: cannot read: %s", s->path, NST_STRERROR(errno));
    return NST_OK;
}

static uint32_t crc32_of(const unsigned char *p, size_t n) {
    uint32_t tab[256]; /* the call's own: 2048 steps against a whole tensor's bytes */
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int j = 0; j < 8; j++) c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
        tab[i] = c;
    }
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) c = tab[(c ^ p[i]) & 0xff] ^ (c >> 8);
    return c ^ 0xffffffffu;
}

/* Where a storage's bytes are: file offset, length, CRC (zip only). */
typedef struct loc {
    uint64_t off, len;
    int has_crc;
    uint32_t crc;
} loc;

/* ---- zip --------------------------------------------------------------- */

typedef struct zip {
    unsigned char *cd; /* the central directory */
    size_t cdlen;
    const char *prefix; /* into cd; e.g. "archive/" */
    size_t plen;
} zip;

/* Finds entry name (prefix + rest) and fills its location. */
static nst_status zip_find(src *s, zip *z, const char *rest, loc *l, int *found, nst_msg *msg) {
    size_t rl = strlen(rest);
    *found = 0;
    for (size_t o = 0; o + 46 <= z->cdlen;) {
        const unsigned char *e = z->cd + o;
        if (le(e, 4) != 0x02014b50u)
            return nst_fail(msg, NST_ERR_FORMAT, "%s: corrupt zip central directory", s->path);
        size_t nl = le(e + 28, 2), xl = le(e + 30, 2), cl = le(e + 32, 2);
        if (o + 46 + nl + xl + cl > z->cdlen)
            return nst_fail(msg, NST_ERR_FORMAT, "%s: corrupt zip central directory", s->path);
        const char *name = (const char *)e + 46;
        if (nl == z->plen + rl && !memcmp(name, z->prefix, z->plen) &&
            !memcmp(name + z->plen, rest, rl)) {
            uint64_t csize = le(e + 20, 4), usize = le(e + 24, 4), lho = le(e + 42, 4);
            if (le(e + 8, 2) & 1)
                return nst_fail(msg, NST_ERR_FORMAT, "%s: zip entry %.*s is encrypted", s->path,
                                (int)nl, name);
            if (le(e + 10, 2) != 0)
                return nst_fail(msg, NST_ERR_FORMAT,
                                "%s: zip entry %.*s is compressed (method %d); PyTorch writes "
                                "stored entries: re-save it with torch.save", s->path, (int)nl,
                                name, (int)le(e + 10, 2));
            if (csize == 0xffffffffu || usize == 0xffffffffu || lho == 0xffffffffu)
                return nst_fail(msg, NST_ERR_FORMAT, "%s: zip64 entries are not supported",
                                s->path);
            if (csize != usize)
                return nst_fail(msg, NST_ERR_FORMAT, "%s: zip entry %.*s has inconsistent sizes",
                                s->path, (int)nl, name);
            unsigned char lh[30];
            nst_status st = read_at(s, lho, lh, 30, msg);
            if (st) return st;
            if (le(lh, 4) != 0x04034b50u)
                return nst_fail(msg, NST_ERR_FORMAT, "%s: zip entry %.*s: bad local header",
                                s->path, (int)nl, name);
            l->off = lho + 30 + le(lh + 26, 2) + le(lh + 28, 2);
            l->len = usize;
#ifndef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
            l->has_crc = 1; /* (fuzz builds skip CRCs so mutations reach the pickle) */
#endif
            l->crc = (uint32_t)le(e + 16, 4);
            if (l->off > s->size || l->len > s->size - l->off)
                return nst_fail(msg, NST_ERR_FORMAT,
                                "%s: zip entry %.*s lies beyond the end of the file (truncated?)",
                                s->path, (int)nl, name);
            *found = 1;
            return NST_OK;
        }
        o += 46 + nl + xl + cl;
    }
    return NST_OK;
}

static nst_status zip_open(src *s, zip *z, nst_msg *msg) {
    nst_status st;
    unsigned char tail[65536 + 22];
    size_t tl = s->size < sizeof tail ? (size_t)s->size : sizeof tail;
    if ((st = read_at(s, s->size - tl, tail, tl, msg))) return st;
    size_t e = (size_t)-1;
    for (size_t i = tl >= 22 ? tl - 22 + 1 : 0; i-- > 0;)
        if (le(tail + i, 4) == 0x06054b50u) {
            e = i;
            break;
        }
    if (e == (size_t)-1)
        return nst_fail(msg, NST_ERR_FORMAT,
                        "%s: zip end record not found (truncated or not a PyTorch checkpoint)",
                        s->path);
    uint64_t cdlen = le(tail + e + 12, 4), cdoff = le(tail + e + 16, 4);
    if (le(tail + e + 4, 2) || le(tail + e + 6, 2))
        return nst_fail(msg, NST_ERR_FORMAT, "%s: multi-disk zips are not supported", s->path);
    if (cdoff == 0xffffffffu || cdlen == 0xffffffffu)
        return nst_fail(msg, NST_ERR_FORMAT, "%s: zip64 archives (over 4 GiB) are not supported",
                        s->path);
    if (cdlen > MAX_PICKLE || cdoff + cdlen > s->size)
        return nst_fail(msg, NST_ERR_FORMAT,
                        "%s: zip central directory lies beyond the end of the file", s->path);
    z->cd = malloc(cdlen ? cdlen : 1);
    if (!z->cd) return nst_fail(msg, NST_ERR_NOMEM, "%s: zip directory", s->path);
    z->cdlen = (size_t)cdlen;
    if ((st = read_at(s, cdoff, z->cd, z->cdlen, msg))) return st;
    /* The prefix: whatever precedes "data.pkl" in the entry that ends so. */
    for (size_t o = 0; o + 46 <= z->cdlen;) {
        const unsigned char *c = z->cd + o;
        if (le(c, 4) != 0x02014b50u) break;
        size_t nl = le(c + 28, 2);
        if (o + 46 + nl > z->cdlen) break;
        const char *name = (const char *)c + 46;
        if (nl >= 8 && !memcmp(name + nl - 8, "data.pkl", 8) &&
            (nl == 8 || name[nl - 9] == '/')) {
            z->prefix = name;
            z->plen = nl - 8;
            return NST_OK;
        }
        o += 46 + nl + le(c + 30, 2) + le(c + 32, 2);
    }
    return nst_fail(msg, NST_ERR_FORMAT, "%s: zip holds no data.pkl: not a PyTorch checkpoint",
                    s->path);
}

/* ---- loading ------------------------------------------------------------ */

static const unsigned char LEGACY_MAGIC[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46,
                                             0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e};

static int esize(int g) { return g == G_F32 ? 4 : 2; }

/* Checks a tensor's shape, strides and extent within its storage. */
static nst_status check_tensor(const src *s, const char *name, size_t nl, const val *t,
                               nst_msg *msg) {
    int64_t count = 1;
    for (int i = 0; i < t->rank; i++) {
        if (t->size[i] < 1 || t->size[i] > ((int64_t)1 << 31))
            return nst_fail(msg, NST_ERR_FORMAT, "%s: tensor %.*s: dimension %d is %lld", s->path,
                            (int)nl, name, i, (long long)t->size[i]);
        count *= t->size[i];
        if (count > MAX_NUMEL)
            return nst_fail(msg, NST_ERR_TOO_LARGE, "%s: tensor %.*s: more than 2^40 elements",
                            s->path, (int)nl, name);
    }
    int64_t want = 1;
    for (int i = t->rank - 1; i >= 0; i--) {
        if (t->size[i] != 1 && t->stride[i] != want)
            return nst_fail(msg, NST_ERR_FORMAT,
                            "%s: tensor %.*s is not contiguous (stride %lld in dimension %d); "
                            "save tensor.contiguous()", s->path, (int)nl, name,
                            (long long)t->stride[i], i);
        want *= t->size[i];
    }
    const val *sv = t->st;
    if (t->offset < 0 || t->offset > sv->numel || count > sv->numel - t->offset)
        return nst_fail(msg, NST_ERR_FORMAT,
                        "%s: tensor %.*s: elements %lld..%lld lie outside its storage of %lld",
                        s->path, (int)nl, name, (long long)t->offset,
                        (long long)(t->offset + count), (long long)sv->numel);
    return NST_OK;
}

/* Reads tensor t (name; checked) out of storage bytes at l into the table. */
static nst_status add_tensor(src *s, const char *name, size_t nl, const val *t, const loc *l,
                             nst_weights *w, nst_msg *msg) {
    nst_status st = NST_OK;
    unsigned char *buf = NULL;
    const val *sv = t->st;
    int es = esize((int)sv->i);
    if (l->len != (uint64_t)sv->numel * (uint64_t)es)
        return nst_fail(msg, NST_ERR_FORMAT,
                        "%s: tensor %.*s: its storage holds %llu bytes, not %lld elements",
                        s->path, (int)nl, name, (unsigned long long)l->len, (long long)sv->numel);
    char nm[64];
    if (nl >= sizeof nm)
        return nst_fail(msg, NST_ERR_FORMAT, "%s: tensor name %.60s... is too long", s->path,
                        name);
    memcpy(nm, name, nl);
    nm[nl] = 0;
    if (nst_weights_find(w, nm))
        return nst_fail(msg, NST_ERR_FORMAT, "%s: tensor %s appears twice", s->path, nm);
    buf = malloc(l->len ? (size_t)l->len : 1);
    if (!buf) return nst_fail(msg, NST_ERR_NOMEM, "%s: tensor %s", s->path, nm);
    NST_TRY(read_at(s, l->off, buf, (size_t)l->len, msg));
    if (l->has_crc && crc32_of(buf, (size_t)l->len) != l->crc) {
        st = nst_fail(msg, NST_ERR_FORMAT, "%s: tensor %s: storage fails its CRC check (corrupt "
                      "file)", s->path, nm);
        goto fail;
    }
    nst_weight *o = nst_weights_add(w, nm, t->rank, t->size);
    if (!o) {
        st = nst_fail(msg, NST_ERR_NOMEM, "%s: tensor %s", s->path, nm);
        goto fail;
    }
    const unsigned char *p = buf + (size_t)t->offset * (size_t)es;
    for (size_t i = 0; i < o->count; i++) {
        if (es == 4) {
            uint32_t u = (uint32_t)le(p + 4 * i, 4);
            memcpy(&o->data[i], &u, 4);
        } else {
            uint16_t h = (uint16_t)le(p + 2 * i, 2);
            o->data[i] = sv->i == G_F16 ? nst_f16_to_f32(h) : nst_bf16_to_f32(h);
        }
        if (!isfinite(o->data[i])) {
            st = nst_fail(msg, NST_ERR_NUMERIC, "%s: tensor %s: element %zu is %s", s->path, nm,
                          i, isnan(o->data[i]) ? "NaN" : "infinite");
            goto fail;
        }
    }
fail:
    free(buf);
    return st;
}

/* The state_dict: the top dict, or its "state_dict" entry. */
static const val *state_dict(const val *root) {
    if (root->kind != V_DICT) return NULL;
    for (size_t i = 0; i + 1 < root->n; i += 2)
        if (streq(root->items[i], "state_dict") && root->items[i + 1]->kind == V_DICT)
            return root->items[i + 1];
    return root;
}

nst_status nst_pth_read(FILE *f, uint64_t size, const char *path, int max_index,
                        nst_weights **out, nst_msg *msg) {
    nst_status st = NST_OK;
    src s = {path, f, size};
    zip z = {0};
    vm m = {0};
    unsigned char *pk = NULL;
    nst_weights *w = NULL;
    loc *locs = NULL;
    val *root = NULL, *keys = NULL;

    unsigned char head[16] = {0};
    NST_TRY(read_at(&s, 0, head, s.size < 16 ? (size_t)s.size : 16, msg));
    int legacy = s.size >= sizeof LEGACY_MAGIC && !memcmp(head, LEGACY_MAGIC, sizeof LEGACY_MAGIC);
    loc pkl = {0};
    if (legacy) {
        pkl.off = 0;
        pkl.len = s.size < MAX_PICKLE ? s.size : MAX_PICKLE;
    } else {
        int found;
        NST_TRY(zip_open(&s, &z, msg));
        NST_TRY(zip_find(&s, &z, "data.pkl", &pkl, &found, msg));
        if (pkl.len > MAX_PICKLE) {
            st = nst_fail(msg, NST_ERR_TOO_LARGE, "%s: data.pkl is over 64 MB", path);
            goto fail;
        }
    }
    pk = malloc(pkl.len ? (size_t)pkl.len : 1);
    if (!pk) {
        st = nst_fail(msg, NST_ERR_NOMEM, "%s: pickle", path);
        goto fail;
    }
    NST_TRY(read_at(&s, pkl.off, pk, (size_t)pkl.len, msg));
    if (pkl.has_crc && crc32_of(pk, (size_t)pkl.len) != pkl.crc) {
        st = nst_fail(msg, NST_ERR_FORMAT, "%s: data.pkl fails its CRC check (corrupt file)", path);
        goto fail;
    }
    m.path = path, m.p = pk, m.len = (size_t)pkl.len, m.msg = msg;
    if (legacy) {
        val *v;
        m.pos = sizeof LEGACY_MAGIC;
        NST_TRY(vm_run(&m, &v));
        if (v->kind != V_INT || v->i != 1001) {
            st = nst_fail(msg, NST_ERR_FORMAT, "%s: legacy checkpoint protocol is not 1001", path);
            goto fail;
        }
        NST_TRY(vm_run(&m, &v));
        for (size_t i = 0; v->kind == V_DICT && i + 1 < v->n; i += 2)
            if (streq(v->items[i], "little_endian") && v->items[i + 1]->kind == V_BOOL &&
                !v->items[i + 1]->i) {
                st = nst_fail(msg, NST_ERR_FORMAT, "%s: big-endian checkpoints are not supported",
                              path);
                goto fail;
            }
        NST_TRY(vm_run(&m, &root));
        NST_TRY(vm_run(&m, &keys));
        if (keys->kind != V_LIST) {
            st = nst_fail(msg, NST_ERR_FORMAT, "%s: legacy storage key list is missing", path);
            goto fail;
        }
    } else {
        NST_TRY(vm_run(&m, &root));
    }
    const val *sd = state_dict(root);
    if (!sd) {
        st = nst_fail(msg, NST_ERR_FORMAT, "%s: the checkpoint is not a state_dict (a dict of "
                      "tensors)", path);
        goto fail;
    }
    /* Legacy: storages follow the pickles in key-list order; each needs the
     * element size of its type, known from the tensors that use it. */
    if (legacy) {
        locs = calloc(keys->n ? keys->n : 1, sizeof *locs);
        if (!locs) {
            st = nst_fail(msg, NST_ERR_NOMEM, "%s: storage table", path);
            goto fail;
        }
        uint64_t at = m.pos;
        for (size_t k = 0; k < keys->n; k++) {
            const val *key = keys->items[k], *sv = NULL;
            for (size_t i = 1; !sv && i < sd->n; i += 2) {
                const val *t = sd->items[i];
                if (t->kind == V_TENSOR && t->st->len == key->len &&
                    key->kind == V_STR && !memcmp(t->st->s, key->s, key->len))
                    sv = t->st;
            }
            if (!sv) {
                st = nst_fail(msg, NST_ERR_FORMAT, "%s: storage %zu is used by no tensor", path, k);
                goto fail;
            }
            unsigned char nb[8];
            NST_TRY(read_at(&s, at, nb, 8, msg));
            uint64_t numel = le(nb, 8);
            if (numel != (uint64_t)sv->numel) {
                st = nst_fail(msg, NST_ERR_FORMAT, "%s: storage %.*s holds %llu elements, its "
                              "tensors say %lld", path, (int)key->len, key->s,
                              (unsigned long long)numel, (long long)sv->numel);
                goto fail;
            }
            locs[k].off = at + 8;
            locs[k].len = numel * (uint64_t)esize((int)sv->i);
            if (locs[k].off > s.size || locs[k].len > s.size - locs[k].off) {
                st = nst_fail(msg, NST_ERR_FORMAT, "%s: storage %.*s lies beyond the end of the "
                              "file (truncated?)", path, (int)key->len, key->s);
                goto fail;
            }
            at = locs[k].off + locs[k].len;
        }
    }
    w = calloc(1, sizeof *w);
    if (!w) {
        st = nst_fail(msg, NST_ERR_NOMEM, "%s: weights table", path);
        goto fail;
    }
    for (size_t i = 0; i + 1 < sd->n; i += 2) {
        const val *k = sd->items[i], *t = sd->items[i + 1];
        if (k->kind != V_STR || t->kind != V_TENSOR) continue; /* e.g. an epoch counter */
        char nm[64];
        snprintf(nm, sizeof nm, "%.*s", (int)(k->len < 63 ? k->len : 63), k->s);
        if (k->len < 64 && !nst_weights_keep(nm, max_index)) continue;
        NST_TRY(check_tensor(&s, k->s, k->len, t, msg));
        loc l = {0};
        if (legacy) {
            size_t j = 0;
            while (j < keys->n && !(keys->items[j]->len == t->st->len &&
                                    !memcmp(keys->items[j]->s, t->st->s, t->st->len)))
                j++;
            if (j == keys->n) {
                st = nst_fail(msg, NST_ERR_FORMAT, "%s: tensor %s: its storage is not in the file",
                              path, nm);
                goto fail;
            }
            l = locs[j];
        } else {
            char rest[64];
            int found;
            snprintf(rest, sizeof rest, "data/%.*s", (int)t->st->len, t->st->s);
            NST_TRY(zip_find(&s, &z, rest, &l, &found, msg));
            if (!found) {
                st = nst_fail(msg, NST_ERR_FORMAT, "%s: tensor %s: storage entry %.*s%s is missing",
                              path, nm, (int)z.plen, z.prefix, rest);
                goto fail;
            }
        }
        NST_TRY(add_tensor(&s, k->s, k->len, t, &l, w, msg));
    }
    if (w->count == 0) {
        st = nst_fail(msg, NST_ERR_FORMAT, "%s: the checkpoint holds no tensors%s", path,
                      max_index >= 0 ? " named features.N up to conv5_1" : "");
        goto fail;
    }
    *out = w;
    w = NULL;
fail:
    nst_weights_free(w);
    free(locs);
    vm_free(&m);
    free(pk);
    free(z.cd);
    return st;
}
