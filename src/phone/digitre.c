/*
 * digitre.c - libphonenumber's digit patterns without ICU (digitre.h).
 *
 * Two steps: a recursive-descent parser builds a small tree (nodes in one
 * array), then the tree is emitted as a program for a backtracking
 * machine (CHR: one digit out of a set; SPLIT: try x, else y; JMP; END:
 * the subject's end, for "$"; MATCH),
 * with counted repeats unrolled. The machine keeps its alternatives on an
 * explicit stack and counts its steps, so no pattern can recurse deeply
 * or run long: past either bound it gives up and says so.
 */
#include "digitre.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ALL_DIGITS  0x3FFu
#define MAX_NODES   8192
#define MAX_PROGRAM 32768
#define MAX_REPEAT  64 /* {n,m} bounds above this are refused */
#define REPEAT_INF  (-1)
#define MAX_STACK   256
#define MAX_STEPS   20000

typedef enum { N_CHR, N_SEQ, N_ALT, N_REP, N_END } node_kind_t;

typedef struct {
    node_kind_t kind;
    uint16_t mask;   /* N_CHR */
    int min, max;    /* N_REP; max REPEAT_INF for * and + */
    bool lazy;       /* N_REP: "??", "*?", "{n,m}?": skipping tried first */
    int child, next; /* first child (N_SEQ, N_ALT, N_REP); next sibling; -1 = none */
} node_t;

typedef enum { OP_CHR, OP_SPLIT, OP_JMP, OP_END, OP_MATCH } op_t;

typedef struct {
    uint8_t op;
    uint16_t mask;
    int32_t x, y;
} inst_t;

struct ts_digitre_s {
    size_t n;
    inst_t prog[]; /* n instructions, the last OP_MATCH */
};

typedef struct {
    const char *p;
    size_t pos, len;
    node_t nodes[MAX_NODES];
    int n_nodes;
    inst_t *prog;
    size_t n_prog;
    bool bad;
} compiler_t;

static int node_add(compiler_t *c, node_kind_t kind) {
    if (c->n_nodes >= MAX_NODES) {
        c->bad = true;
        return -1;
    }
    node_t *n = &c->nodes[c->n_nodes];
    *n = (node_t){.kind = kind, .child = -1, .next = -1};
    return c->n_nodes++;
}

static int peek(const compiler_t *c) { return c->pos < c->len ? (unsigned char)c->p[c->pos] : -1; }

static bool is_digit(int ch) { return ch >= '0' && ch <= '9'; }

/* [...] after the '[': digits, ranges, \d, a leading ^ (over digits). */
static uint16_t parse_class(compiler_t *c) {
    bool negate = peek(c) == '^';
    if (negate) c->pos++;
    uint16_t mask = 0;
    for (int items = 0;; items++) {
        int ch = peek(c);
        if (ch == ']' && items > 0) break;
        c->pos++;
        if (ch == '\\' && peek(c) == 'd') {
            c->pos++;
            mask |= ALL_DIGITS;
        } else if (is_digit(ch) && peek(c) == '-' && c->pos + 1 < c->len &&
                   is_digit((unsigned char)c->p[c->pos + 1])) {
            int hi = (unsigned char)c->p[c->pos + 1];
            c->pos += 2;
            if (hi < ch) c->bad = true;
            for (int d = ch; d <= hi; d++) mask |= (uint16_t)(1u << (d - '0'));
        } else if (is_digit(ch)) {
            mask |= (uint16_t)(1u << (ch - '0'));
        } else {
            c->bad = true; /* letters, other escapes, end of pattern */
        }
        if (c->bad) return 0;
    }
    c->pos++; /* ']' */
    return negate ? (uint16_t)(~mask & ALL_DIGITS) : mask;
}

static int parse_alt(compiler_t *c);

static int chr_node(compiler_t *c, uint16_t mask) {
    int n = node_add(c, N_CHR);
    if (n >= 0) c->nodes[n].mask = mask;
    return n;
}

static int parse_atom(compiler_t *c) {
    int ch = peek(c);
    c->pos++;
    if (is_digit(ch)) return chr_node(c, (uint16_t)(1u << (ch - '0')));
    if (ch == '.') return chr_node(c, ALL_DIGITS);
    if (ch == '$') return node_add(c, N_END); /* end of the subject (CC's "([59]\d{7})$") */
    if (ch == '\\' && peek(c) == 'd') {
        c->pos++;
        return chr_node(c, ALL_DIGITS);
    }
    if (ch == '[') {
        uint16_t mask = parse_class(c);
        return c->bad ? -1 : chr_node(c, mask);
    }
    if (ch == '(') {
        if (peek(c) == '?') { /* only (?:...); lookaround and flags are refused */
            if (c->pos + 1 >= c->len || c->p[c->pos + 1] != ':') return c->bad = true, -1;
            c->pos += 2;
        }
        int inner = parse_alt(c);
        if (c->bad || peek(c) != ')') return c->bad = true, -1;
        c->pos++;
        return inner;
    }
    c->bad = true; /* anchors, letters, other escapes, a stray quantifier */
    return -1;
}

/* "{n}", "{n,}", "{n,m}" after the '{'. */
static bool parse_braces(compiler_t *c, int *min, int *max) {
    int v[2] = {0, 0}, k = 0;
    bool digits = false, open = false;
    for (;;) {
        int ch = peek(c);
        c->pos++;
        if (is_digit(ch)) {
            v[k] = v[k] * 10 + (ch - '0');
            digits = true;
            if (v[k] > MAX_REPEAT) return false;
        } else if (ch == ',' && k == 0 && digits) {
            k = 1;
            open = true;
            digits = false;
        } else if (ch == '}' && (digits || open)) {
            break;
        } else {
            return false;
        }
    }
    *min = v[0];
    *max = k == 0 ? v[0] : digits ? v[1] : REPEAT_INF;
    return *max == REPEAT_INF || *max >= *min;
}

static bool parse_quantifier(compiler_t *c, int *min, int *max, bool *lazy) {
    int ch = peek(c);
    if (ch == '?')
        *min = 0, *max = 1;
    else if (ch == '*')
        *min = 0, *max = REPEAT_INF;
    else if (ch == '+')
        *min = 1, *max = REPEAT_INF;
    else if (ch == '{') {
        c->pos++;
        if (!parse_braces(c, min, max)) return c->bad = true, false;
        c->pos--; /* the common advance below */
    } else {
        return false;
    }
    c->pos++;
    *lazy = peek(c) == '?';
    if (*lazy)
        c->pos++;
    else if (peek(c) == '+')
        return c->bad = true, false; /* possessive */
    return true;
}

static int parse_seq(compiler_t *c) {
    int seq = node_add(c, N_SEQ), last = -1;
    while (seq >= 0 && !c->bad && peek(c) != -1 && peek(c) != '|' && peek(c) != ')') {
        int atom = parse_atom(c), min, max;
        bool lazy = false;
        if (c->bad) return -1;
        if (parse_quantifier(c, &min, &max, &lazy)) {
            int rep = node_add(c, N_REP);
            if (rep < 0) return -1;
            c->nodes[rep].min = min;
            c->nodes[rep].max = max;
            c->nodes[rep].lazy = lazy;
            c->nodes[rep].child = atom;
            atom = rep;
        }
        if (c->bad) return -1;
        if (last < 0)
            c->nodes[seq].child = atom;
        else
            c->nodes[last].next = atom;
        last = atom;
    }
    return c->bad ? -1 : seq;
}

/* A node may be a sibling in only one list: groups are parsed into a
 * fresh SEQ/ALT, so an atom's `next` is free when the sequence links it. */
static int parse_alt(compiler_t *c) {
    int first = parse_seq(c);
    if (c->bad || peek(c) != '|') return first;
    int alt = node_add(c, N_ALT), last = first;
    if (alt < 0) return -1;
    c->nodes[alt].child = first;
    while (!c->bad && peek(c) == '|') {
        c->pos++;
        int s = parse_seq(c);
        if (c->bad) return -1;
        c->nodes[last].next = s;
        last = s;
    }
    return alt;
}

static size_t emit(compiler_t *c, op_t op, uint16_t mask, int32_t x, int32_t y) {
    if (c->n_prog >= MAX_PROGRAM) {
        c->bad = true;
        return 0;
    }
    c->prog[c->n_prog] = (inst_t){.op = (uint8_t)op, .mask = mask, .x = x, .y = y};
    return c->n_prog++;
}

static void emit_node(compiler_t *c, int n);

static void emit_alt(compiler_t *c, const node_t *nd) {
    size_t jumps[MAX_NODES / 8];
    size_t n_jumps = 0;
    for (int k = nd->child; k >= 0 && !c->bad; k = c->nodes[k].next) {
        if (c->nodes[k].next < 0) {
            emit_node(c, k); /* the last alternative falls through */
            break;
        }
        size_t split = emit(c, OP_SPLIT, 0, 0, 0);
        c->prog[split].x = (int32_t)c->n_prog;
        emit_node(c, k);
        if (n_jumps == sizeof jumps / sizeof jumps[0]) {
            c->bad = true;
            return;
        }
        jumps[n_jumps++] = emit(c, OP_JMP, 0, 0, 0);
        c->prog[split].y = (int32_t)c->n_prog;
    }
    for (size_t i = 0; i < n_jumps && !c->bad; i++) c->prog[jumps[i]].x = (int32_t)c->n_prog;
}

/* A SPLIT between entering the body (`enter`) and skipping it (`skip`):
 * greedy tries entering first, lazy skipping (the order ICU tries them,
 * which decides where a prefix match ends). */
static void set_split(compiler_t *c, size_t split, bool lazy, int32_t enter, int32_t skip) {
    if (c->bad) return;
    c->prog[split].x = lazy ? skip : enter;
    c->prog[split].y = lazy ? enter : skip;
}

static void emit_rep(compiler_t *c, const node_t *nd) {
    for (int i = 0; i < nd->min && !c->bad; i++) emit_node(c, nd->child);
    if (nd->max == REPEAT_INF) {
        size_t loop = emit(c, OP_SPLIT, 0, 0, 0);
        int32_t body = (int32_t)c->n_prog;
        emit_node(c, nd->child);
        emit(c, OP_JMP, 0, (int32_t)loop, 0);
        set_split(c, loop, nd->lazy, body, (int32_t)c->n_prog);
        return;
    }
    size_t splits[MAX_REPEAT];
    int32_t bodies[MAX_REPEAT];
    int n = nd->max - nd->min;
    for (int i = 0; i < n && !c->bad; i++) {
        splits[i] = emit(c, OP_SPLIT, 0, 0, 0);
        bodies[i] = (int32_t)c->n_prog;
        emit_node(c, nd->child);
    }
    for (int i = 0; i < n && !c->bad; i++)
        set_split(c, splits[i], nd->lazy, bodies[i], (int32_t)c->n_prog);
}

static void emit_node(compiler_t *c, int n) {
    if (n < 0 || c->bad) return;
    const node_t *nd = &c->nodes[n];
    switch (nd->kind) {
    case N_CHR: emit(c, OP_CHR, nd->mask, 0, 0); break;
    case N_SEQ:
        for (int k = nd->child; k >= 0 && !c->bad; k = c->nodes[k].next) emit_node(c, k);
        break;
    case N_ALT: emit_alt(c, nd); break;
    case N_REP: emit_rep(c, nd); break;
    case N_END: emit(c, OP_END, 0, 0, 0); break;
    }
}

ts_digitre_t *ts_digitre_new(const char *pattern, size_t len) {
    compiler_t *c = calloc(1, sizeof *c);
    ts_digitre_t *re = NULL;
    if (!c || !(c->prog = malloc(MAX_PROGRAM * sizeof *c->prog))) goto out;
    c->p = pattern;
    c->len = len;
    int root = parse_alt(c);
    if (c->bad || c->pos != len) goto out; /* a stray ')' stops the parse early */
    emit_node(c, root);
    emit(c, OP_MATCH, 0, 0, 0);
    if (c->bad || !(re = malloc(sizeof *re + c->n_prog * sizeof *re->prog))) goto out;
    re->n = c->n_prog;
    memcpy(re->prog, c->prog, c->n_prog * sizeof *re->prog);
out:
    if (c) free(c->prog);
    free(c);
    return re;
}

void ts_digitre_destroy(ts_digitre_t *re) { free(re); }

/* Depth-first, an alternative's first branch before its second: the
 * order of a backtracking engine such as ICU's, so in prefix mode the
 * first match found is the one lookingAt() reports (*end). */
static ts_digitre_result_t run(const ts_digitre_t *re, const char *s, size_t len, bool full,
                               size_t *end) {
    if (!re || len > TS_DIGITRE_MAX_SUBJECT) return TS_DIGITRE_GAVE_UP;
    struct {
        int32_t pc;
        uint8_t sp;
    } stack[MAX_STACK];
    size_t top = 0;
    int steps = 0;
    stack[top].pc = 0;
    stack[top++].sp = 0;
    while (top > 0) {
        top--;
        int32_t pc = stack[top].pc;
        size_t sp = stack[top].sp;
        for (;;) {
            if (++steps > MAX_STEPS) return TS_DIGITRE_GAVE_UP;
            const inst_t *in = &re->prog[pc];
            if (in->op == OP_CHR) {
                unsigned d = sp < len ? (unsigned)(s[sp] - '0') : 10u;
                if (d > 9 || !(in->mask >> d & 1u)) break;
                pc++;
                sp++;
            } else if (in->op == OP_JMP) {
                pc = in->x;
            } else if (in->op == OP_END) {
                if (sp != len) break;
                pc++;
            } else if (in->op == OP_SPLIT) {
                if (top == MAX_STACK) return TS_DIGITRE_GAVE_UP;
                stack[top].pc = in->y;
                stack[top++].sp = (uint8_t)sp;
                pc = in->x;
            } else { /* OP_MATCH */
                if (!full || sp == len) {
                    if (end) *end = sp;
                    return TS_DIGITRE_YES;
                }
                break;
            }
        }
    }
    return TS_DIGITRE_NO;
}

ts_digitre_result_t ts_digitre_full(const ts_digitre_t *re, const char *s, size_t len) {
    return run(re, s, len, true, NULL);
}

ts_digitre_result_t ts_digitre_prefix(const ts_digitre_t *re, const char *s, size_t len,
                                      size_t *end) {
    return run(re, s, len, false, end);
}
