/* The Postfix block scanner of pipeline/parsers/postfix_block.py, compiled.
 *
 * scan_numpy() in postfix_block.py defines what a block's lines are (one RE2 pattern, FAST_RE,
 * and numpy arithmetic on the positions of ": ", "," and "@"); this file does the same in one
 * pass over the block, without the GIL (it is called through ctypes). tests/test_postfix_scan.py
 * holds the two to the same output on every test input and on mutated lines.
 *
 * Plain C99, no Python headers: built by hatch_build.py with the system's C compiler when there
 * is one; without it, postfix_block.py uses scan_numpy().
 *
 * Also here: gather() (cut many slices of a block into one Arrow string buffer), event_ids()
 * (BLAKE2b, RFC 7693, 10-byte digests in hex: pipeline.records.event_id_for of many rows) and
 * mask_addresses() (classify.mask_addresses of many texts, for ingest's annotate) and
 * join_block() (postfix_join.join_numpy: a block's queue-id join, computed; the caller applies
 * it to the parser state).
 */
#define _GNU_SOURCE /* memmem */
#include <stdint.h>
#include <stdlib.h> /* malloc: code_of's grown table */
#include <string.h>

enum { K_FEED = 0, K_DELIVERY = 1, K_FROM = 2, K_REMOVED = 3, K_MSGID = 4 };
enum { C_SKIP = 0, C_FEED = 1, C_FAST = 2, C_RAW = 3 };
#define MAX_FIELDS 8 /* commas of a delivery line looked at up to status= (as scan_numpy) */
#define MAX_STOPS 8  /* line-start prefixes scan_block stops at */

static int is_upper(uint8_t c) { return c >= 'A' && c <= 'Z'; }
static int is_lower(uint8_t c) { return c >= 'a' && c <= 'z'; }
static int is_digit(uint8_t c) { return c >= '0' && c <= '9'; }
static int is_alnum(uint8_t c) { return is_upper(c) || is_lower(c) || is_digit(c); }
/* \w of an ASCII text (Python's word characters there) */
static int is_word(uint8_t c) { return is_alnum(c) || c == '_'; }
/* 1 when a byte of [p, end) is non-ASCII (the bytes OR-ed in a local: a loop the compiler vectorises) */
static inline uint8_t any_high(const uint8_t *p, const uint8_t *end) {
    uint8_t h = 0;
    while (p < end) h |= *p++;
    return h >> 7;
}
/* [0-9A-Za-z._-] */
static int is_host(uint8_t c) { return is_alnum(c) || c == '.' || c == '_' || c == '-'; }
/* [0-9A-Za-z._/-] */
static int is_prog(uint8_t c) { return is_host(c) || c == '/'; }
/* [!#-+\--;=?-~]: printable but space " , < > */
static int is_addr(uint8_t c) {
    return c == '!' || (c >= '#' && c <= '+') || (c >= '-' && c <= ';') || c == '=' || (c >= '?' && c <= '~');
}
/* [!-;=?-~]: printable but space < > */
static int is_msgid(uint8_t c) { return (c >= '!' && c <= ';') || c == '=' || (c >= '?' && c <= '~'); }
/* [^,=<>"] */
static int is_value(uint8_t c) { return c != ',' && c != '=' && c != '<' && c != '>' && c != '"'; }
/* [0-9A-F] */
static int is_qid_short(uint8_t c) { return is_digit(c) || (c >= 'A' && c <= 'F'); }
/* [0-9B-DF-HJ-NP-TV-Zb-df-hj-np-tv-z] */
static int is_qid_long(uint8_t c) {
    if (is_digit(c)) return 1;
    if (!is_upper(c) && !is_lower(c)) return 0;
    uint8_t u = c & 0xDF;
    return u != 'A' && u != 'E' && u != 'I' && u != 'O' && u != 'U';
}

/* The same classes as one table made of the predicates above (one load per byte instead of a
   chain of compares: the loops of match_fast read it). */
enum { CL_HOST = 1, CL_PROG = 2, CL_ADDR = 4, CL_MSGID = 8, CL_VALUE = 16, CL_QID_SHORT = 32, CL_QID_LONG = 64 };
static uint8_t CLASS[256];
static volatile int class_ready = 0;

static void make_classes(void) {
    for (int c = 0; c < 256; c++) {
        uint8_t b = (uint8_t)c, v = 0;
        if (is_host(b)) v |= CL_HOST;
        if (is_prog(b)) v |= CL_PROG;
        if (is_addr(b)) v |= CL_ADDR;
        if (is_msgid(b)) v |= CL_MSGID;
        if (is_value(b)) v |= CL_VALUE;
        if (is_qid_short(b)) v |= CL_QID_SHORT;
        if (is_qid_long(b)) v |= CL_QID_LONG;
        CLASS[c] = v;
    }
    class_ready = 1;
}
#if defined(__GNUC__)
__attribute__((constructor)) static void classes_at_load(void) { make_classes(); }
#endif

/* [c, c + n) == lit[0, n): compared here, not by a call to memcmp (the literals are short and a
   candidate mostly differs in its first bytes) */
static inline int same(const uint8_t *c, const char *lit, size_t n) {
    for (size_t k = 0; k < n; k++)
        if (c[k] != (uint8_t)lit[k]) return 0;
    return 1;
}

/* (always inlined where the compiler can be asked to: the literal and its length are then known
   when compiling, and the compare is a few instructions instead of a call to memcmp, which is
   what the scan's many starts_with() were: 3 % of a scan) */
#if defined(__GNUC__)
#define ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define ALWAYS_INLINE inline
#endif
/* [c, c + n) == lit[0, n) for a literal: 4 to 16 bytes as two overlapping words each side (the
   literal's words are constants once inlined), no branch per byte */
static ALWAYS_INLINE int same_lit(const uint8_t *c, const char *lit, size_t n) {
    if (n >= 8 && n <= 16) {
        uint64_t a, b, x, y;
        memcpy(&a, c, 8), memcpy(&b, c + n - 8, 8), memcpy(&x, lit, 8), memcpy(&y, lit + n - 8, 8);
        return ((a ^ x) | (b ^ y)) == 0;
    }
    if (n >= 4 && n < 8) {
        uint32_t a, b, x, y;
        memcpy(&a, c, 4), memcpy(&b, c + n - 4, 4), memcpy(&x, lit, 4), memcpy(&y, lit + n - 4, 4);
        return ((a ^ x) | (b ^ y)) == 0;
    }
    return same(c, lit, n);
}
static ALWAYS_INLINE int starts_with_n(const uint8_t *p, const uint8_t *end, const char *lit, size_t n) {
    return (size_t)(end - p) >= n && same_lit(p, lit, n);
}
/* a literal's length known at compile time */
#define starts_with(p, end, lit) starts_with_n((p), (end), (lit), sizeof(lit) - 1)

static inline const uint8_t *find(const uint8_t *p, const uint8_t *end, const char *lit) {
    size_t n = strlen(lit);
    while (p + n <= end) {
        const uint8_t *c = memchr(p, lit[0], (size_t)(end - p) - n + 1);
        if (!c) return NULL;
        if (same(c + 1, lit + 1, n - 1)) return c;
        p = c + 1;
    }
    return NULL;
}

/* --- syslog stamps (common.SYSLOG_STAMP; what the per-line parsers make of them) ------------
 * Traditional `Mon DD hh:mm:ss`, with a fraction too (journalctl -o short-precise), its year and
 * zone the file's: the minute goes to Python as its 9 characters packed 7 bits each, top bit 0;
 * or RFC 3339 as rsyslog writes it by default
 * (`2024-08-26T01:33:38.572449+09:00`) and journalctl -o short-iso (`…T01:33:38+0900`): a
 * valid date and time, 'T', an optional fraction (its first 6 digits are the microseconds, as
 * datetime.fromisoformat reads them), an optional zone (Z, +hh:mm or +hhmm). Its minute key has
 * the top bit set: with a zone, bit 62 too and the minute since the epoch in UTC; without one,
 * the local year, month, day, hour and minute packed (the file's zone turns it into time).
 * Anything else (a leap second, Feb 30, a year before 1971, a space for 'T') is left to the
 * per-line parser. */
#define STAMP_ISO ((uint64_t)1 << 63)
#define STAMP_UTC ((uint64_t)1 << 62)

static inline int two(const uint8_t *p) { return (p[0] - '0') * 10 + (p[1] - '0'); }

/* days from 1970-01-01 to y-m-d (proleptic Gregorian; H. Hinnant's days_from_civil) */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int days_in_month(int y, int m) {
    static const int dim[13] = {0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 ? 28 + leap : dim[m];
}

/* `.` and digits at x: their value as microseconds (the first 6 digits, as the parsers read a
 * fraction), x moved past them; 0 with x unmoved when no '.' is there; -1 for a '.' alone. */
static int64_t fraction_at(const uint8_t **x, const uint8_t *end) {
    const uint8_t *f = *x;
    if (f >= end || *f != '.') return 0;
    f++;
    const uint8_t *f0 = f;
    int64_t frac = 0;
    int digits = 0;
    while (f < end && is_digit(*f)) {
        if (digits < 6) frac = frac * 10 + (*f - '0'), digits++;
        f++;
    }
    if (f == f0) return -1;
    for (; digits < 6; digits++) frac *= 10;
    *x = f;
    return frac;
}

/* The stamp at p (a line's start; end: its newline): where the host starts (after the stamp
 * and one space), with the minute key and the microseconds within the minute; 0 when the line
 * does not start with a stamp read here. */
static int64_t stamp_at(const uint8_t *p, const uint8_t *end, uint64_t *key, int64_t *us) {
    int64_t n = end - p;
    if (n >= 16 && is_upper(p[0])) {
        /* [A-Z][a-z]{2} [ 0-9][0-9] [0-9]{2}:[0-9]{2}:[0-9]{2} */
        if (!is_lower(p[1]) || !is_lower(p[2]) || p[3] != ' ') return 0;
        if (!(p[4] == ' ' || is_digit(p[4])) || !is_digit(p[5]) || p[6] != ' ') return 0;
        if (!is_digit(p[7]) || !is_digit(p[8]) || p[9] != ':' || !is_digit(p[10]) || !is_digit(p[11])) return 0;
        if (p[12] != ':' || !is_digit(p[13]) || !is_digit(p[14])) return 0;
        const uint8_t *x = p + 15;
        int64_t frac = fraction_at(&x, end);
        if (frac < 0 || x >= end || *x != ' ') return 0;
        static const int at[9] = {0, 1, 2, 4, 5, 7, 8, 10, 11};
        uint64_t k = 0;
        for (int i = 0; i < 9; i++) k = k << 7 | p[at[i]];
        *key = k;
        *us = (int64_t)two(p + 13) * 1000000 + frac;
        return x + 1 - p;
    }
    /* [0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2} */
    if (n < 20) return 0;
    for (int i = 0; i < 19; i++) {
        int want = i == 4 || i == 7 ? '-' : i == 10 ? 'T' : i == 13 || i == 16 ? ':' : 0;
        if (want ? p[i] != want : !is_digit(p[i])) return 0;
    }
    int y = two(p) * 100 + two(p + 2), mo = two(p + 5), d = two(p + 8), hh = two(p + 11), mi = two(p + 14),
        ss = two(p + 17);
    if (y < 1971 || y > 9998 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || hh > 23 || mi > 59 ||
        ss > 59)
        return 0;
    const uint8_t *x = p + 19;
    int64_t frac = fraction_at(&x, end);
    if (frac < 0) return 0;
    int zoned = 0, offset = 0; /* minutes east of UTC */
    if (x < end && *x == 'Z') {
        zoned = 1;
        x++;
    } else if (x < end && (*x == '+' || *x == '-')) {
        int sign = *x == '-' ? -1 : 1;
        x++;
        if (end - x < 4 || !is_digit(x[0]) || !is_digit(x[1])) return 0;
        int oh = two(x);
        x += 2;
        if (*x == ':') x++;
        if (end - x < 2 || !is_digit(x[0]) || !is_digit(x[1])) return 0;
        int om = two(x);
        x += 2;
        if (oh > 23 || om > 59) return 0;
        zoned = 1;
        offset = sign * (oh * 60 + om);
    }
    if (x >= end || *x != ' ') return 0;
    if (zoned) {
        int64_t minute = days_from_civil(y, mo, d) * 1440 + hh * 60 + mi - offset;
        *key = STAMP_ISO | STAMP_UTC | (uint64_t)minute;
    } else {
        *key = STAMP_ISO | (uint64_t)y << 20 | (uint64_t)mo << 16 | (uint64_t)d << 11 | (uint64_t)hh << 6 | (uint64_t)mi;
    }
    *us = (int64_t)ss * 1000000 + frac;
    return x + 1 - p;
}

/* What one line is, and where its fields are (positions are offsets in the block). */
typedef struct {
    int kind;
    int64_t qs, qe;          /* queue id [qs, qe); qe is the ':' of the ": " after it */
    int64_t vs, ve;          /* from=<…> or message-id=<…>: the value */
    int64_t host_s, host_end, rcpt_end, dom_start, relay_s, relay_e, dsn_s, status_pos, status_end;
    uint64_t key;            /* the stamp's minute (stamp_at) */
    int64_t us;              /* and the microseconds within it */
    int status_code;         /* 1 sent, 2 deferred, 3 bounced, 4 expired, 5 undeliverable */
    int has_text, bad;
} line_t;

static const char *DELIVERY_NAMES[] = {"smtp", "lmtp", "local", "virtual", "pipe", "error", "retry", "discard", NULL};
static const size_t DELIVERY_LENS[] = {4, 4, 5, 7, 4, 5, 5, 7};
static const char *STATUS_WORDS[] = {"sent", "deferred", "bounced", "expired", "undeliverable", NULL};
static const size_t STATUS_LENS[] = {4, 8, 7, 7, 13};

/* A program's `[digits]: ` in [p, end) (a log line glued into a line's message: common.glued_at);
   not `[192.0.2.1]: ` (old Postfix's `connect to host[ip]: Connection timed out (port 25)`). */
static int has_pid_tag(const uint8_t *p, const uint8_t *end) {
    for (const uint8_t *c = find(p, end, "]: "); c; c = find(c + 1, end, "]: ")) {
        const uint8_t *b = c;
        while (b > p && is_digit(b[-1])) b--;
        if (b < c && b > p && b[-1] == '[') return 1;
    }
    return 0;
}

/* FAST_RE of postfix_block.py on the line [s, e) (e: its newline); 1 when it matches. */
/* Does a Unicode space (what Python's str.strip() removes beyond ASCII) start at p / end at end?
   U+0085 U+00A0 U+1680 U+2000-U+200A U+2028 U+2029 U+202F U+205F U+3000 */
static int uspace_at(const uint8_t *p, const uint8_t *end) {
    int64_t n = end - p;
    if (n >= 2 && p[0] == 0xC2 && (p[1] == 0x85 || p[1] == 0xA0)) return 1;
    if (n >= 3 && p[0] == 0xE1 && p[1] == 0x9A && p[2] == 0x80) return 1;
    if (n >= 3 && p[0] == 0xE2 && p[1] == 0x80 && ((p[2] >= 0x80 && p[2] <= 0x8A) || p[2] == 0xA8 || p[2] == 0xA9 || p[2] == 0xAF)) return 1;
    if (n >= 3 && p[0] == 0xE2 && p[1] == 0x81 && p[2] == 0x9F) return 1;
    if (n >= 3 && p[0] == 0xE3 && p[1] == 0x80 && p[2] == 0x80) return 1;
    return 0;
}
static int uspace_before(const uint8_t *start, const uint8_t *end) {
    return (end - start >= 2 && uspace_at(end - 2, end)) || (end - start >= 3 && uspace_at(end - 3, end));
}
/* an address of a non-ASCII line may hold non-ASCII characters, but not begin or end with a
   space that normalise_address()'s strip() would remove */
static int addr_ends_ok(const uint8_t *a, const uint8_t *b, int utf8) {
    return !utf8 || a == b || (!uspace_at(a, b) && !uspace_before(a, b));
}

static int match_fast(const uint8_t *d, int64_t s, int64_t e, line_t *L, int utf8) {
    const uint8_t *p = d + s, *end = d + e; /* end points at the newline */
    int64_t host = stamp_at(p, end, &L->key, &L->us);
    if (!host) return 0;
    p += host;
    L->host_s = p - d;
    const uint8_t *h = p;
    while (p < end && (CLASS[*p] & CL_HOST)) p++;
    if (p == h || p >= end || *p != ' ') return 0;
    L->host_end = p - d;
    p++;
    /* postfix[0-9A-Za-z._/-]* then /name then [ */
    const uint8_t *t = p;
    while (p < end && (CLASS[*p] & CL_PROG)) p++;
    if (p >= end || *p != '[') return 0;
    const uint8_t *t_end = p;
    if (t_end - t < 8 || memcmp(t, "postfix", 7) != 0) return 0;
    int which = -1; /* 0 delivery, 1 qmgr, 2 cleanup */
    for (int i = 0; DELIVERY_NAMES[i]; i++) {
        size_t n = DELIVERY_LENS[i];
        if (t_end[-1] == (uint8_t)DELIVERY_NAMES[i][n - 1] && (size_t)(t_end - t) >= 7 + 1 + n &&
            t_end[-(int64_t)n - 1] == '/' && same(t_end - n, DELIVERY_NAMES[i], n)) {
            which = 0;
            break;
        }
    }
    if (which < 0 && t_end - t >= 12 && memcmp(t_end - 5, "/qmgr", 5) == 0) which = 1;
    if (which < 0 && t_end - t >= 15 && memcmp(t_end - 8, "/cleanup", 8) == 0) which = 2;
    if (which < 0) return 0;
    /* \[[0-9]+\]: */
    p++;
    const uint8_t *pid = p;
    while (p < end && is_digit(*p)) p++;
    if (p == pid || !starts_with(p, end, "]: ")) return 0;
    p += 3;
    /* queue id, then ": " */
    const uint8_t *q = p;
    uint8_t all = CL_QID_SHORT | CL_QID_LONG; /* the classes of every character so far */
    while (p < end && *p != ':') all &= CLASS[*p++];
    int64_t qlen = p - q;
    if (!(((all & CL_QID_SHORT) && qlen >= 5 && qlen <= 20) || ((all & CL_QID_LONG) && qlen >= 11 && qlen <= 20))) return 0;
    if (!starts_with(p, end, ": ")) return 0;
    L->qs = q - d;
    L->qe = p - d;
    p += 2;

    if (which == 1) {
        if (end - p == 7 && memcmp(p, "removed", 7) == 0) {
            L->kind = K_REMOVED;
            return 1;
        }
        if (!starts_with(p, end, "from=<")) return 0;
        p += 6;
        L->vs = p - d;
        while (p < end && ((CLASS[*p] & CL_ADDR) || (utf8 && *p >= 0x80))) p++;
        L->ve = p - d;
        if (!addr_ends_ok(d + L->vs, p, utf8)) return 0;
        if (!starts_with(p, end, ">, size=")) return 0;
        p += 8;
        const uint8_t *n0 = p;
        while (p < end && is_digit(*p)) p++;
        if (p == n0 || !starts_with(p, end, ", nrcpt=")) return 0;
        p += 8;
        n0 = p;
        while (p < end && is_digit(*p)) p++;
        if (p == n0 || end - p != 15 || memcmp(p, " (queue active)", 15) != 0) return 0;
        L->kind = K_FROM;
        return 1;
    }
    if (which == 2) {
        if (!starts_with(p, end, "message-id=<")) return 0;
        p += 12;
        L->vs = p - d;
        while (p < end && (CLASS[*p] & CL_MSGID)) p++;
        L->ve = p - d;
        if (end - p != 1 || *p != '>') return 0;
        L->kind = K_MSGID;
        return 1;
    }
    /* to=<ADDR+>(, orig_to=<…>)?, relay=V(, (conn_use|delay|delays)=V)*, dsn=V, status=WORD( \(|\n$) */
    if (!starts_with(p, end, "to=<")) return 0;
    p += 4;
    const uint8_t *a = p;
    while (p < end && ((CLASS[*p] & CL_ADDR) || (utf8 && *p >= 0x80))) p++;
    if (p == a || p >= end || *p != '>' || !addr_ends_ok(a, p, utf8)) return 0;
    L->rcpt_end = p - d;
    L->dom_start = L->rcpt_end;
    for (const uint8_t *x = p - 1; x >= a; x--)
        if (*x == '@') {
            L->dom_start = x + 1 - d;
            break;
        }
    p++;
    int commas = 0; /* commas of the line so far */
    if (starts_with(p, end, ", orig_to=<")) {
        p += 11;
        while (p < end && *p != '<' && *p != '>' && *p != '"' && *p != ',') p++;
        if (p >= end || *p != '>') return 0;
        p++;
        commas++;
    }
    if (!starts_with(p, end, ", relay=")) return 0;
    commas++;
    p += 8;
    L->relay_s = p - d;
    while (p < end && (CLASS[*p] & CL_VALUE)) p++;
    L->relay_e = p - d;
    for (;;) {
        if (!starts_with(p, end, ", ")) return 0;
        commas++;
        p += 2;
        if (starts_with(p, end, "dsn=")) {
            p += 4;
            break;
        }
        if (starts_with(p, end, "conn_use=")) p += 9;
        else if (starts_with(p, end, "delays=")) p += 7;
        else if (starts_with(p, end, "delay=")) p += 6;
        else return 0;
        while (p < end && (CLASS[*p] & CL_VALUE)) p++;
    }
    L->dsn_s = p - d;
    while (p < end && (CLASS[*p] & CL_VALUE)) p++;
    if (!starts_with(p, end, ", status=")) return 0;
    commas++;
    L->status_pos = p - d;
    p += 9;
    int code = 0;
    for (int i = 0; STATUS_WORDS[i]; i++)
        if (starts_with_n(p, end, STATUS_WORDS[i], STATUS_LENS[i])) {
            code = i + 1;
            p += STATUS_LENS[i];
            break;
        }
    if (!code) return 0;
    L->status_code = code;
    L->status_end = p - d;
    if (p == end) L->has_text = 0;
    else if (end - p >= 2 && p[0] == ' ' && p[1] == '(') L->has_text = 1;
    else return 0;
    /* a `[pid]: ` after the queue id: maybe another log line glued to this one, cut short
       (common.glued_at): feed()'s (scan_numpy: a second one in the line) */
    if (has_pid_tag(d + L->qe + 2, end)) return 0;
    L->kind = K_DELIVERY;
    /* what scan_numpy cannot cut (status= beyond the first MAX_FIELDS commas; a text that does
       not end in ')') it leaves to the parser */
    L->bad = commas - 1 >= MAX_FIELDS || (L->has_text && end[-1] != ')');
    return 1;
}

/* Does PostfixParser.feed look at a line that is not fast? The candidates: a second ": " with
   t, f, m or r after it, or two "]: " (maybe a line cut short within its queue id or message with
   another glued to it: postfix.glued_tail); of those, the ones INTERESTING_RE finds. */
static int is_feed(const uint8_t *d, int64_t s, int64_t e) {
    const uint8_t *p = d + s, *end = d + e;
    const uint8_t *c1 = find(p, end, ": ");
    if (!c1) return 0;
    const uint8_t *c2 = find(c1 + 2, end, ": ");
    if (!c2) return 0;
    uint8_t k = c2[2]; /* c2 + 2 <= end: at worst the newline */
    if (k != 't' && k != 'f' && k != 'm' && k != 'r') {
        const uint8_t *g = find(p, end, "]: ");
        if (!g || !find(g + 3, end, "]: ")) return 0;
    }
    if (find(p, end, " to=") || find(p, end, " from=") || find(p, end, "message-id=")) return 1;
    return end - p >= 9 && memcmp(end - 9, ": removed", 9) == 0;
}

/* Is [p, end) valid UTF-8 as Python's strict decoder sees it (RFC 3629: no overlong forms, no
   surrogates, nothing above U+10FFFF)? */
static int valid_utf8(const uint8_t *p, const uint8_t *end) {
    while (p < end) {
        uint8_t c = *p;
        if (c < 0x80) {
            p++;
            /* a run of ASCII (most of a line: addresses, keywords) 8 bytes at a time */
            for (uint64_t w; end - p >= 8 && (memcpy(&w, p, 8), (w & 0x8080808080808080ULL) == 0);) p += 8;
            continue;
        }
        int64_t left = end - p;
        if (c >= 0xC2 && c <= 0xDF) {
            if (left < 2 || (p[1] & 0xC0) != 0x80) return 0;
            p += 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            if (left < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80) return 0;
            if (c == 0xE0 && p[1] < 0xA0) return 0; /* overlong */
            if (c == 0xED && p[1] > 0x9F) return 0; /* surrogate */
            p += 3;
        } else if (c >= 0xF0 && c <= 0xF4) {
            if (left < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80) return 0;
            if (c == 0xF0 && p[1] < 0x90) return 0; /* overlong */
            if (c == 0xF4 && p[1] > 0x8F) return 0; /* above U+10FFFF */
            p += 4;
        } else {
            return 0;
        }
    }
    return 1;
}

/* What a line [s, e) (without its newline) is to the front door: 0 ASCII without NUL or CR, 1
   valid non-ASCII UTF-8 without NUL or CR, 2 raw. One pass over its bytes (a loop the compiler
   vectorises), then the UTF-8 check for the few lines with a high byte. */
static int kind_of(const uint8_t *d, int64_t s, int64_t e) {
    uint8_t h = 0, bad = 0;
    for (int64_t i = s; i < e; i++) {
        uint8_t c = d[i];
        h |= c;
        bad |= (uint8_t)((c == 0) | (c == '\r'));
    }
    if (bad) return 2;
    if (h & 0x80) return valid_utf8(d + s, d + e) ? 1 : 2;
    return 0;
}

/* The first byte of [p, end) that kind_of looks at a line for (non-ASCII, NUL or CR), or end:
 * scan_block asks it once per such byte, not once per line, and looks at only the lines that
 * hold one (most lines of a log are ASCII). With SSE2 (every x86-64) 16 bytes at a time; the
 * scalar loop finds the same byte (odd_at(..., 1) runs it, for tests/test_postfix_scan.py). */
static inline int is_odd(uint8_t c) { return c >= 0x80 || c == 0 || c == '\r'; }
static const uint8_t *next_odd_scalar(const uint8_t *p, const uint8_t *end) {
    while (p < end && !is_odd(*p)) p++;
    return p;
}
#if defined(__SSE2__)
#include <emmintrin.h>
static const uint8_t *next_odd(const uint8_t *p, const uint8_t *end) {
    const __m128i zero = _mm_setzero_si128(), cr = _mm_set1_epi8('\r');
    for (; end - p >= 16; p += 16) {
        __builtin_prefetch(p + 2048); /* (this pass is the block's first touch in its thread: the
                                          lines ahead are asked for, the scan of a 1M-line log
                                          0.133-0.142 -> 0.128-0.131 s) */
        __m128i v = _mm_loadu_si128((const __m128i *)p);
        unsigned m = (unsigned)_mm_movemask_epi8(_mm_or_si128(v, _mm_or_si128(_mm_cmpeq_epi8(v, zero), _mm_cmpeq_epi8(v, cr))));
        if (m) return p + __builtin_ctz(m); /* (the top bit of each byte: high, or a NUL/CR's 0xFF) */
    }
    return next_odd_scalar(p, end);
}
#else
#define next_odd next_odd_scalar
#endif

/* next_odd of d[from, len) as an offset (len: none), or with `scalar` the portable loop's: a
   test entry point, holding the two to the same answer. */
int64_t odd_at(const uint8_t *d, int64_t len, int64_t from, int scalar) {
    return (scalar ? next_odd_scalar(d + from, d + len) : next_odd(d + from, d + len)) - d;
}

/* Newlines in a block: the caller sizes scan_block's arrays with it. */
int64_t count_lines(const uint8_t *d, int64_t len) {
    int64_t n = 0, i = 0;
    for (; i + 255 <= len; i += 255) { /* a byte counter per 255 bytes: a loop the compiler vectorises */
        uint8_t k = 0;
        for (int j = 0; j < 255; j++) k += d[i + j] == '\n';
        n += k;
    }
    for (; i < len; i++) n += d[i] == '\n';
    return n;
}

/* The queue ids of a block coded by first appearance, as Arrow's dictionary_encode codes them,
 * while scan_block has each line at hand (a later pass over the ids reads the block again, long
 * out of cache by then): a hash table (`table`, size a power of two of at least twice the fast
 * lines) keyed by an id's first and last 8 bytes and its length (all of an id up to 16 bytes),
 * the distinct ids copied out in order (chars + Arrow offsets) and compared there beyond that. */
typedef struct {
    int32_t *table;
    int64_t mask;
    uint64_t *keys; /* 3 per distinct id */
    int32_t *offsets;
    uint8_t *chars;
    int64_t n;
    int32_t *own;   /* a table grown here (malloc), or NULL: the caller's */
    int failed;     /* out of memory */
} coder_t;

static inline uint64_t key_hash(uint64_t a, uint64_t b, int64_t len) {
    uint64_t h = (a * 0x9E3779B97F4A7C15ULL) ^ (b * 0xC2B2AE3D27D4EB4FULL) ^ (uint64_t)len;
    return h ^ (h >> 29) ^ (h >> 47);
}

/* Twice the table, the codes so far put in again (a table kept small stays in cache: the
 * caller sizes it by the last block's ids, and a block with more grows it here). */
static void grow(coder_t *C) {
    int64_t size = 2 * (C->mask + 1);
    int32_t *t = malloc((size_t)size * sizeof(int32_t));
    if (!t) {
        C->failed = 1;
        return;
    }
    memset(t, 0xff, (size_t)size * sizeof(int32_t));
    for (int64_t k = 0; k < C->n; k++) {
        const uint64_t *key = C->keys + 3 * k;
        uint64_t at = key_hash(key[0], key[1], (int64_t)key[2]) & (uint64_t)(size - 1);
        while (t[at] >= 0) at = (at + 1) & (uint64_t)(size - 1);
        t[at] = (int32_t)k;
    }
    free(C->own);
    C->own = C->table = t;
    C->mask = size - 1;
}

static inline void slice_key(const uint8_t *p, int64_t len, uint64_t *a, uint64_t *b) {
    *a = *b = 0;
    if (len >= 8) {
        memcpy(a, p, 8);
        memcpy(b, p + len - 8, 8); /* (overlapping: every byte of up to 16 counts) */
    } else {
        for (int64_t j = 0; j < len; j++) *a = *a << 8 | p[j];
    }
}

/* An id on its way to code_of: its key and hash, worked out two fast lines early, when its
   table slot is asked for (a prefetch: the table and the keys are too big to stay in L1, and
   the misses there were 8 % of a scan); a line on, the slot (in by then) says which key to
   ask for (code_soon); a line after that it is coded (code_of). */
typedef struct {
    int64_t line; /* the fast line to code (-1: none) */
    const uint8_t *p;
    int64_t len;
    uint64_t a, b, hash;
} pending_t;

static inline void code_later(const coder_t *C, pending_t *q, int64_t line, const uint8_t *p, int64_t len) {
    q->line = line;
    q->p = p;
    q->len = len;
    slice_key(p, len, &q->a, &q->b);
    q->hash = key_hash(q->a, q->b, len);
#if defined(__GNUC__)
    __builtin_prefetch(C->table + (q->hash & (uint64_t)C->mask));
#endif
}

/* The key a pending id is likely compared with first, asked for (a hint only: code_of, a line
   later, reads the table again, which the id before may have changed). */
static inline void code_soon(const coder_t *C, const pending_t *q) {
#if defined(__GNUC__)
    int32_t c = C->table[q->hash & (uint64_t)C->mask];
    if (c >= 0) __builtin_prefetch(C->keys + 3 * (int64_t)c);
#else
    (void)C, (void)q;
#endif
}

/* The code of a pending id (code_later): the one it was given at its first appearance, or the
   next one. */
static int32_t code_of(coder_t *C, const pending_t *q) {
    const uint8_t *p = q->p;
    int64_t len = q->len;
    uint64_t a = q->a, b = q->b;
    uint64_t at = q->hash & (uint64_t)C->mask;
    for (;;) {
        int32_t c = C->table[at];
        if (c < 0) {
            int64_t k = C->n++;
            C->table[at] = (int32_t)k;
            C->keys[3 * k] = a;
            C->keys[3 * k + 1] = b;
            C->keys[3 * k + 2] = (uint64_t)len;
            memcpy(C->chars + C->offsets[k], p, (size_t)len);
            C->offsets[k + 1] = C->offsets[k] + (int32_t)len;
            if (2 * C->n > C->mask + 1) grow(C); /* at most half full */
            return (int32_t)k;
        }
        const uint64_t *key = C->keys + 3 * (int64_t)c;
        if (key[0] == a && key[1] == b && key[2] == (uint64_t)len &&
            (len <= 16 || memcmp(C->chars + C->offsets[c], p, (size_t)len) == 0))
            return c;
        at = (at + 1) & (uint64_t)C->mask;
    }
}

static int reply_code_in(const uint8_t *t, const uint8_t *end);
static int phase_in(const uint8_t *t, const uint8_t *end);

/* Scan a block. Out, per line: line_starts[n + 1], cls[n] (C_SKIP / C_FEED / C_FAST / C_RAW);
 * per fast line (in order; n_fast of them): f_line, f_kind, f_qs, f_qe, f_key (the stamp's
 * minute, stamp_at), f_us (the microseconds within it), f_vs, f_ve (from= / message-id= value);
 * per delivery line that is cut here (kind K_DELIVERY; n_deliv of them): d_fast (its number
 * among the fast lines) and the positions of its fields.
 * With f_utf8 (else NULL): per fast line, 1 when it holds non-ASCII characters (valid UTF-8).
 * With d_code and d_phase (else NULL): per delivery line, what text_facts makes of its text
 * (-1 and PH_NONE without one), read while the line is in cache.
 * With `table` (else NULL): f_code (the queue id of each fast line coded: code_of), q_offsets
 * and q_chars (the distinct ids, Arrow offsets and characters: q_chars holds 20 bytes per line),
 * counts[3] = their number; `keys` holds 3 per line, table_size is a power of two (grown here,
 * in memory of its own, when more than half full); all four are the caller's scratch, reused
 * across blocks. -3: out of memory.
 * counts[0..2] = n_lines, n_fast, n_deliv. Returns 0, or -1 when the block holds no newline (or
 * more lines than cap, which count_lines sizes), or 1 (at once) when a line starts with one of
 * the n_stops `stops` (NUL-separated, none empty, at most MAX_STOPS; -2 otherwise): the engine
 * reads such a block line by line (an RFC 5424 line's `<`, another MTA's multilog `@4000`), and
 * this pass sees every line start anyway (one pass over the block fewer than a search for "\n<").
 * The decision is per line: a line with invalid UTF-8, a NUL or a CR, or of max_line bytes or
 * more is C_RAW; one with valid non-ASCII UTF-8 is never fast (C_FEED or C_SKIP by is_feed). */
int scan_block(const uint8_t *d, int64_t len, int64_t max_line, int64_t cap,
               int64_t *line_starts, uint8_t *cls,
               int64_t *f_line, int8_t *f_kind, int64_t *f_qs, int64_t *f_qe, uint64_t *f_key,
               int64_t *f_us, int64_t *f_vs, int64_t *f_ve,
               int64_t *d_fast, int64_t *d_host_s, int64_t *d_host_end, int64_t *d_rcpt_end, int64_t *d_dom_start,
               int64_t *d_relay_s, int64_t *d_relay_e, int64_t *d_dsn_s, int64_t *d_status_pos,
               int64_t *d_status_end, int8_t *d_status_code, uint8_t *d_has_text, int64_t *counts,
               const char *stops, int n_stops, int32_t *table, int64_t table_size, uint64_t *keys, int32_t *f_code,
               int32_t *q_offsets, uint8_t *q_chars, uint8_t *f_utf8, int16_t *d_code, uint8_t *d_phase) {
    int64_t n = 0, nf = 0, nd = 0, s = 0;
    coder_t coder = {table, table_size - 1, keys, q_offsets, q_chars, 0, NULL, 0};
    pending_t pend[2] = {{-1, NULL, 0, 0, 0, 0}, {-1, NULL, 0, 0, 0, 0}}; /* the older first */
    if (table) {
        if (table_size < 2 || (table_size & (table_size - 1))) return -2;
        memset(table, 0xff, (size_t)table_size * sizeof(int32_t));
        q_offsets[0] = 0;
    }
    if (!class_ready) make_classes(); /* (without the constructor: a second thread at once writes the same) */
    /* the stop prefixes (NUL-separated), and which bytes begin one (looked up per line) */
    const char *stop[MAX_STOPS];
    size_t stop_len[MAX_STOPS];
    uint8_t stop_first[256] = {0};
    if (n_stops > MAX_STOPS) return -2;
    for (int k = 0, at = 0; k < n_stops; k++) {
        stop[k] = stops + at;
        stop_len[k] = strlen(stop[k]);
        if (!stop_len[k]) return -2;
        stop_first[(uint8_t)stop[k][0]] = 1;
        at += (int)stop_len[k] + 1;
    }
    /* most lines are ASCII without NUL or CR: only a line holding the next odd byte (non-ASCII,
       NUL, CR: next_odd, asked again past each such line) is looked at by kind_of */
    const uint8_t *odd = next_odd(d, d + len);
    line_starts[0] = 0;
    for (;;) {
        const uint8_t *nl = memchr(d + s, '\n', (size_t)(len - s));
        if (!nl) break;
        int64_t e = nl - d;
        if (n >= cap || coder.failed) {
            free(coder.own);
            return coder.failed ? -3 : -1;
        }
        if (e > s && stop_first[d[s]]) {
            for (int k = 0; k < n_stops; k++)
                if ((size_t)(e - s) >= stop_len[k] && memcmp(d + s, stop[k], stop_len[k]) == 0) {
                    free(coder.own);
                    return 1;
                }
        }
        int kind_of_line = 0; /* 0 ASCII, 1 valid non-ASCII UTF-8, 2 raw */
        if (e - s >= max_line) {
            kind_of_line = 2;
        } else if (odd < nl) { /* (the line's bytes before `odd` are plain ASCII: read from there) */
            kind_of_line = kind_of(d, odd - d, e);
        }
        if (odd < nl) odd = next_odd(nl + 1, d + len); /* (the newline itself is not odd) */
        line_t L; /* the fields match_fast may leave unset (a memset of all of it: 9% of the scan) */
        L.kind = 0;
        L.vs = L.ve = 0;
        L.bad = L.has_text = 0;
        if (kind_of_line == 2) {
            cls[n] = C_RAW;
        } else if (match_fast(d, s, e, &L, kind_of_line == 1)) {
            cls[n] = C_FAST;
            f_line[nf] = n;
            f_kind[nf] = L.bad ? K_FEED : L.kind;
            if (f_utf8) f_utf8[nf] = (uint8_t)kind_of_line; /* (0 or 1: a raw line is never fast) */
            f_qs[nf] = L.qs;
            f_qe[nf] = L.qe;
            if (table) { /* ids in three steps (pending_t): coded two lines on, in line order */
                if (pend[0].line >= 0) f_code[pend[0].line] = code_of(&coder, &pend[0]);
                pend[0] = pend[1];
                if (pend[0].line >= 0) code_soon(&coder, &pend[0]);
                code_later(&coder, &pend[1], nf, d + L.qs, L.qe - L.qs);
            }
            f_key[nf] = L.key;
            f_us[nf] = L.us;
            f_vs[nf] = L.vs;
            f_ve[nf] = L.ve;
            if (L.kind == K_DELIVERY && !L.bad) {
                d_fast[nd] = nf;
                d_host_s[nd] = L.host_s;
                d_host_end[nd] = L.host_end;
                d_rcpt_end[nd] = L.rcpt_end;
                d_dom_start[nd] = L.dom_start;
                d_relay_s[nd] = L.relay_s;
                d_relay_e[nd] = L.relay_e;
                d_dsn_s[nd] = L.dsn_s;
                d_status_pos[nd] = L.status_pos;
                d_status_end[nd] = L.status_end;
                d_status_code[nd] = (int8_t)L.status_code;
                d_has_text[nd] = (uint8_t)L.has_text;
                if (d_code) { /* text_facts of the text, while the line is at hand */
                    const uint8_t *t = d + L.status_end + 2, *t_end = d + e - 1;
                    d_code[nd] = (int16_t)(L.has_text ? reply_code_in(t, t_end) : -1);
                    d_phase[nd] = (uint8_t)(L.has_text ? phase_in(t, t_end) : 0);
                }
                nd++;
            }
            nf++;
        } else {
            cls[n] = is_feed(d, s, e) ? C_FEED : C_SKIP;
        }
        n++;
        s = e + 1;
        line_starts[n] = s;
    }
    for (int k = 0; k < 2; k++)
        if (pend[k].line >= 0 && !coder.failed) f_code[pend[k].line] = code_of(&coder, &pend[k]);
    free(coder.own);
    if (coder.failed) return -3;
    if (n == 0) return -1;
    counts[0] = n;
    counts[1] = nf;
    counts[2] = nd;
    counts[3] = coder.n;
    return 0;
}

/* Lines of a block and what each is to the front door, for the block readers of every MTA:
 * line_starts[n + 1], kinds[n]: 0 ASCII without NUL or CR, 1 valid non-ASCII UTF-8 without NUL
 * or CR, 2 raw (invalid UTF-8, NUL, CR, or max_line bytes or more). Returns n, or -1 when the
 * block holds no newline or more than cap lines. */
int64_t line_kinds(const uint8_t *d, int64_t len, int64_t max_line, int64_t cap,
                   int64_t *line_starts, uint8_t *kinds) {
    int64_t n = 0, s = 0;
    uint8_t high = 0;
    for (int64_t i = 0; i < len; i++) high |= d[i];
    int mixed = (high & 0x80) || memchr(d, 0, (size_t)len) || memchr(d, '\r', (size_t)len);
    line_starts[0] = 0;
    for (;;) {
        const uint8_t *nl = memchr(d + s, '\n', (size_t)(len - s));
        if (!nl) break;
        int64_t e = nl - d;
        if (n >= cap) return -1;
        uint8_t k = 0;
        if (e - s >= max_line) {
            k = 2;
        } else if (mixed) {
            k = (uint8_t)kind_of(d, s, e);
        }
        kinds[n++] = k;
        s = e + 1;
        line_starts[n] = s;
    }
    return n ? n : -1;
}

#define GATHER_AHEAD 8
/* Slices [starts[i], ends[i]) of d, one after the other, into chars (lower-cased when `lower`),
 * with Arrow offsets (offsets[0] = 0); a slice not `valid` (when valid is given) is empty. */
void gather(const uint8_t *d, const int64_t *starts, const int64_t *ends, const uint8_t *valid,
            int64_t n, int lower, int32_t *offsets, uint8_t *chars) {
    int64_t o = 0;
    offsets[0] = 0;
    for (int64_t i = 0; i < n; i++) {
#if defined(__GNUC__)
        /* the slices are a column of a block scanned a while ago (out of cache) at uneven
           steps, which the hardware does not guess: the one GATHER_AHEAD on is asked for now */
        if (i + GATHER_AHEAD < n) __builtin_prefetch(d + starts[i + GATHER_AHEAD]);
#endif
        if (!valid || valid[i]) {
            int64_t k = ends[i] - starts[i];
            if (k > 0) {
                const uint8_t *src = d + starts[i];
                if (lower) {
                    for (int64_t j = 0; j < k; j++) {
                        uint8_t c = src[j];
                        chars[o + j] = (c >= 'A' && c <= 'Z') ? c + 32 : c;
                    }
                } else if (k <= 32) { /* most fields: a loop costs less than a call */
                    for (int64_t j = 0; j < k; j++) chars[o + j] = src[j];
                } else {
                    memcpy(chars + o, src, (size_t)k);
                }
                o += k;
            }
        }
        offsets[i + 1] = (int32_t)o;
    }
}

/* --- BLAKE2b (RFC 7693), unkeyed, for the event ids -------------------------------------- */
static const uint64_t IV[8] = {
    0x6a09e667f3bcc908ULL, 0xbb67ae8584caa73bULL, 0x3c6ef372fe94f82bULL, 0xa54ff53a5f1d36f1ULL,
    0x510e527fade682d1ULL, 0x9b05688c2b3e6c1fULL, 0x1f83d9abfb41bd6bULL, 0x5be0cd19137e2179ULL};
static const uint8_t SIGMA[12][16] = {
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
    {11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4}, {7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8},
    {9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13}, {2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9},
    {12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11}, {13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10},
    {6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5}, {10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0},
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3}};

static uint64_t rotr(uint64_t x, int n) { return (x >> n) | (x << (64 - n)); }

static uint64_t load64(const uint8_t *p) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint64_t v;
    memcpy(&v, p, 8); /* one load */
    return v;
#else
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
#endif
}

#define G(a, b, c, d, x, y)            \
    do {                               \
        v[a] = v[a] + v[b] + (x);      \
        v[d] = rotr(v[d] ^ v[a], 32);  \
        v[c] = v[c] + v[d];            \
        v[b] = rotr(v[b] ^ v[c], 24);  \
        v[a] = v[a] + v[b] + (y);      \
        v[d] = rotr(v[d] ^ v[a], 16);  \
        v[c] = v[c] + v[d];            \
        v[b] = rotr(v[b] ^ v[c], 63);  \
    } while (0)

/* The 12 rounds of BLAKE2b, written out so the message schedule is known at compile time; MIX is
 * the mixing step: G (one message, in compress) or VG (four, in event_ids_x4). */
#define ROUND(MIX, r)                                            \
    do {                                                         \
        MIX(0, 4, 8, 12, m[SIGMA[r][0]], m[SIGMA[r][1]]);        \
        MIX(1, 5, 9, 13, m[SIGMA[r][2]], m[SIGMA[r][3]]);        \
        MIX(2, 6, 10, 14, m[SIGMA[r][4]], m[SIGMA[r][5]]);       \
        MIX(3, 7, 11, 15, m[SIGMA[r][6]], m[SIGMA[r][7]]);       \
        MIX(0, 5, 10, 15, m[SIGMA[r][8]], m[SIGMA[r][9]]);       \
        MIX(1, 6, 11, 12, m[SIGMA[r][10]], m[SIGMA[r][11]]);     \
        MIX(2, 7, 8, 13, m[SIGMA[r][12]], m[SIGMA[r][13]]);      \
        MIX(3, 4, 9, 14, m[SIGMA[r][14]], m[SIGMA[r][15]]);      \
    } while (0)
#define ROUNDS(MIX)                                                                          \
    do {                                                                                     \
        ROUND(MIX, 0); ROUND(MIX, 1); ROUND(MIX, 2); ROUND(MIX, 3); ROUND(MIX, 4);           \
        ROUND(MIX, 5); ROUND(MIX, 6); ROUND(MIX, 7); ROUND(MIX, 8); ROUND(MIX, 9);           \
        ROUND(MIX, 10); ROUND(MIX, 11);                                                      \
    } while (0)

static void compress(uint64_t h[8], const uint8_t block[128], uint64_t t, int last) {
    uint64_t v[16], m[16];
    for (int i = 0; i < 8; i++) v[i] = h[i], v[i + 8] = IV[i];
    v[12] ^= t; /* messages here are far below 2^64 bytes: the high word of t stays 0 */
    if (last) v[14] = ~v[14];
    for (int i = 0; i < 16; i++) m[i] = load64(block + 8 * i);
    ROUNDS(G);
    for (int i = 0; i < 8; i++) h[i] ^= v[i] ^ v[i + 8];
}

/* BLAKE2b of the concatenation of k pieces, digest of `outlen` bytes (<= 64). */
static void blake2b_parts(const uint8_t **parts, const int64_t *lens, int k, uint8_t *out, int outlen) {
    uint64_t h[8];
    uint8_t buf[128];
    int64_t fill = 0, t = 0;
    for (int i = 0; i < 8; i++) h[i] = IV[i];
    h[0] ^= 0x01010000ULL ^ (uint64_t)outlen;
    for (int j = 0; j < k; j++) {
        const uint8_t *p = parts[j];
        int64_t left = lens[j];
        while (left > 0) {
            if (fill == 128) { /* a full buffer is compressed only once more input follows */
                t += 128;
                compress(h, buf, (uint64_t)t, 0);
                fill = 0;
            }
            while (fill == 0 && left > 128) { /* whole blocks with more input after them: in place */
                t += 128;
                compress(h, p, (uint64_t)t, 0);
                p += 128;
                left -= 128;
            }
            int64_t take = 128 - fill < left ? 128 - fill : left;
            if (take == 1) buf[fill] = *p; /* (the NUL between line and recipient) */
            else memcpy(buf + fill, p, (size_t)take);
            fill += take;
            p += take;
            left -= take;
        }
    }
    t += fill;
    memset(buf + fill, 0, (size_t)(128 - fill));
    compress(h, buf, (uint64_t)t, 1);
    for (int i = 0; i < outlen; i++) out[i] = (uint8_t)(h[i / 8] >> (8 * (i % 8)));
}

/* The bytes [o, o + 128) of line + "\0" + recipient, zero-padded past its end. */
static void id_block(const uint8_t *line, int64_t ll, const uint8_t *r, int64_t rl, int64_t o, uint8_t *buf) {
    int64_t end = o + 128, rs = ll + 1, re = rs + rl;
    memset(buf, 0, 128); /* (the NUL between line and recipient included) */
    if (o < ll) memcpy(buf, line + o, (size_t)((ll < end ? ll : end) - o));
    int64_t a = o > rs ? o : rs, z = end < re ? end : re;
    if (a < z) memcpy(buf + (a - o), r + (a - rs), (size_t)(z - a));
}

static void hex_of(const uint8_t *digest, int id_bytes, uint8_t *hex) {
    static const char digits[] = "0123456789abcdef";
    for (int k = 0; k < id_bytes; k++) {
        hex[2 * k] = (uint8_t)digits[digest[k] >> 4];
        hex[2 * k + 1] = (uint8_t)digits[digest[k] & 15];
    }
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_AVX2_IDS 1
/* Four event ids at once (rows i .. i + 3): the same BLAKE2b as compress() and blake2b_parts(),
 * each 64-bit lane of a vector one row's word (a "multi-buffer" hash: no shuffles between lanes;
 * x86 is little-endian, so a block's words are plain loads). event_ids_x4.h holds the function,
 * made twice: with AVX2 (rotations by shuffles and shifts, 16 vector registers: the state spills
 * to the stack) and, where the processor has AVX-512VL, with its 32 registers and one-instruction
 * rotations (vprorq). */
#define V_ADD(a, b) _mm256_add_epi64((a), (b))
#define V_XOR(a, b) _mm256_xor_si256((a), (b))
#define VG(a, b, c, d, x, y)                        \
    do {                                            \
        v[a] = V_ADD(V_ADD(v[a], v[b]), (x));       \
        v[d] = V_ROT32(V_XOR(v[d], v[a]));          \
        v[c] = V_ADD(v[c], v[d]);                   \
        v[b] = V_ROT24(V_XOR(v[b], v[c]));          \
        v[a] = V_ADD(V_ADD(v[a], v[b]), (y));       \
        v[d] = V_ROT16(V_XOR(v[d], v[a]));          \
        v[c] = V_ADD(v[c], v[d]);                   \
        v[b] = V_ROT63(V_XOR(v[b], v[c]));          \
    } while (0)

#define EVENT_IDS_X4 event_ids_x4
#define EVENT_IDS_X4_TARGET "avx2"
#define V_ROT32(x) _mm256_shuffle_epi32((x), _MM_SHUFFLE(2, 3, 0, 1))
#define V_ROT24(x) _mm256_shuffle_epi8((x), rot24)
#define V_ROT16(x) _mm256_shuffle_epi8((x), rot16)
#define V_ROT63(x) V_XOR(_mm256_srli_epi64((x), 63), V_ADD((x), (x)))
#include "event_ids_x4.h"

#define EVENT_IDS_X4 event_ids_x4_vl
#define EVENT_IDS_X4_TARGET "avx2,avx512f,avx512vl"
#define V_ROT32(x) _mm256_ror_epi64((x), 32)
#define V_ROT24(x) _mm256_ror_epi64((x), 24)
#define V_ROT16(x) _mm256_ror_epi64((x), 16)
#define V_ROT63(x) _mm256_ror_epi64((x), 63)
#include "event_ids_x4.h"
#endif

/* Event ids: hex of blake2b(line + "\0" + recipient, digest_size=id_bytes) for each row; the
 * line is d[starts[i], ends[i]), the recipient rcpt[roff[i], roff[i + 1]). hex gets
 * 2 * id_bytes characters a row. Four rows at a time where the processor has AVX2 and
 * `vector` is set: 2 (event_ids) the best the processor has, 1 (event_ids_avx2) AVX2 alone, 0
 * (event_ids_scalar) one by one; the tests hold each to the others. */
/* The lines of rows i .. i + 3 asked into the cache ahead of their hashing (the rows of a block
 * are its delivery lines, a few lines apart: a jump the hardware prefetcher does not follow). */
static inline void prefetch_lines(const uint8_t *d, const int64_t *starts, const int64_t *ends, int64_t i, int64_t n) {
    for (int64_t k = i; k < i + 4 && k < n; k++)
        for (int64_t at = starts[k]; at < ends[k]; at += 64) __builtin_prefetch(d + at, 0, 3);
}

static int event_ids_with(const uint8_t *d, const int64_t *starts, const int64_t *ends, const uint8_t *rcpt,
                          const int32_t *roff, int64_t n, int id_bytes, uint8_t *hex, int vector) {
    static const uint8_t nul = 0;
    uint8_t digest[64];
    int64_t i = 0;
    if (id_bytes < 1 || id_bytes > 64) return -1;
#if defined(HAVE_AVX2_IDS)
    if (vector >= 2 && n >= 4 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl"))
        for (; i + 4 <= n; i += 4) {
            prefetch_lines(d, starts, ends, i + 8, n);
            event_ids_x4_vl(d, starts, ends, rcpt, roff, i, id_bytes, hex);
        }
    if (vector && n >= 4 && __builtin_cpu_supports("avx2"))
        for (; i + 4 <= n; i += 4) {
            prefetch_lines(d, starts, ends, i + 8, n);
            event_ids_x4(d, starts, ends, rcpt, roff, i, id_bytes, hex);
        }
#else
    (void)vector;
#endif
    for (; i < n; i++) {
        const uint8_t *parts[3] = {d + starts[i], &nul, rcpt + roff[i]};
        int64_t lens[3] = {ends[i] - starts[i], 1, roff[i + 1] - roff[i]};
        blake2b_parts(parts, lens, 3, digest, id_bytes);
        hex_of(digest, id_bytes, hex + 2 * i * id_bytes);
    }
    return 0;
}

int event_ids(const uint8_t *d, const int64_t *starts, const int64_t *ends,
              const uint8_t *rcpt, const int32_t *roff, int64_t n, int id_bytes, uint8_t *hex) {
    return event_ids_with(d, starts, ends, rcpt, roff, n, id_bytes, hex, 2);
}

int event_ids_avx2(const uint8_t *d, const int64_t *starts, const int64_t *ends,
                   const uint8_t *rcpt, const int32_t *roff, int64_t n, int id_bytes, uint8_t *hex) {
    return event_ids_with(d, starts, ends, rcpt, roff, n, id_bytes, hex, 1);
}

int event_ids_scalar(const uint8_t *d, const int64_t *starts, const int64_t *ends,
                     const uint8_t *rcpt, const int32_t *roff, int64_t n, int id_bytes, uint8_t *hex) {
    return event_ids_with(d, starts, ends, rcpt, roff, n, id_bytes, hex, 0);
}


/* --- sendmail lines (parsers/sendmail_block.py; its Arrow reading is the fallback and both
 * are held to SendmailParser.feed by tests/test_sendmail_block.py) ------------------------- */
enum { S_SKIP = 0, S_FEED = 1, S_FROM = 2, S_TO = 3, S_MSP = 4, S_CLOCK = 5 };

/* an address character: printable ASCII but space " , < >, or any byte of a non-ASCII character */
static int is_sm_addr(uint8_t c) { return c >= 0x80 || is_addr(c); }

/* (ALWAYS_INLINE: the literal's strlen is then known when compiling) */
static ALWAYS_INLINE int starts_at(const uint8_t *p, const uint8_t *end, const char *lit) {
    size_t n = strlen(lit);
    return (size_t)(end - p) >= n && same(p, lit, n);
}

/* " sendmail", " sm-mta" or " sm-msp-queue" somewhere in the line */
static int has_sm_program(const uint8_t *p, const uint8_t *end) {
    /* where the program is in a syslog line (after the stamp, 16 bytes or an RFC 3339 one, and
       the host): one look there finds it in nearly every line of a sendmail log, the search
       below in the others */
    if (end - p > 16) {
        const uint8_t *x = p + 16;
        if (is_digit(p[0])) { /* past the rest of an RFC 3339 stamp */
            while (x < end && *x != ' ') x++;
            x++;
        }
        while (x < end && *x != ' ') x++;
        if (starts_at(x, end, " sendmail") || starts_at(x, end, " sm-mta") || starts_at(x, end, " sm-msp-queue")) return 1;
    }
    for (const uint8_t *x = find(p, end, " s"); x; x = find(x + 1, end, " s")) {
        if (starts_at(x, end, " sendmail") || starts_at(x, end, " sm-mta") || starts_at(x, end, " sm-msp-queue")) return 1;
    }
    return 0;
}

/* skip a value [^,]* */
static const uint8_t *skip_value(const uint8_t *p, const uint8_t *end) {
    while (p < end && *p != ',') p++;
    return p;
}

/* the key=value field "<key>" at p (then its value up to the next ','); NULL when not there */
static ALWAYS_INLINE const uint8_t *expect_field(const uint8_t *p, const uint8_t *end, const char *key, const uint8_t **vs,
                                                 const uint8_t **ve) {
    if (!starts_at(p, end, key)) return NULL;
    p += strlen(key);
    *vs = p;
    p = skip_value(p, end);
    *ve = p;
    return p;
}

/* from= lines: exactly one "msgid=" and one "nrcpts=" in [p, end) (occurrences),
   found in one pass over the '='s */
static int keys_once(const uint8_t *p, const uint8_t *end) {
    int msgid = 0, nrcpts = 0;
    for (const uint8_t *x = p; (x = memchr(x, '=', (size_t)(end - x))) != NULL; x++) {
        if (x - p >= 5 && same(x - 5, "msgid", 5)) msgid++;
        else if (x - p >= 6 && same(x - 6, "nrcpts", 6)) nrcpts++;
    }
    return msgid == 1 && nrcpts == 1;
}

/* to= lines: the one ", stat=" in [p, end) when there is exactly one and at most one ", reply="
   before it; else NULL (one pass over the commas) */
static const uint8_t *stat_once(const uint8_t *p, const uint8_t *end) {
    const uint8_t *stat = NULL;
    int replies = 0;
    for (const uint8_t *x = p; (x = memchr(x, ',', (size_t)(end - x))) != NULL; x++) {
        if (starts_at(x, end, ", stat=")) {
            if (stat) return NULL;
            stat = x;
        } else if (!stat && starts_at(x, end, ", reply=")) {
            replies++;
        }
    }
    return replies <= 1 ? stat : NULL;
}

int scan_sendmail(const uint8_t *d, int64_t len, int64_t max_line, int64_t cap, int64_t rcap,
                  int64_t *line_starts, int8_t *kind, uint64_t *t_key, int64_t *t_us, int64_t *host_s,
                  int64_t *host_e, int64_t *qid_s, int64_t *qid_e,
                  int64_t *a_s, int64_t *a_e, int64_t *b_s, int64_t *b_e, int64_t *c_s, int64_t *c_e,
                  int64_t *r_s, int64_t *r_e, int64_t *s_s, int64_t *nrcpts,
                  int64_t *rcpt_line, int64_t *rcpt_s, int64_t *rcpt_e, int64_t *rcpt_dom, uint8_t *rcpt_high,
                  uint8_t *sender_high, int64_t *counts) {
    int64_t n = 0, nr = 0, s = 0;
    uint8_t high_all = 0;
    for (int64_t i = 0; i < len; i++) high_all |= d[i];
    int mixed = (high_all & 0x80) || memchr(d, 0, (size_t)len) || memchr(d, '\r', (size_t)len);
    line_starts[0] = 0;
    for (;;) {
        const uint8_t *nl = memchr(d + s, '\n', (size_t)(len - s));
        if (!nl) break;
        int64_t e = nl - d;
        if (n >= cap) return -1;
        const uint8_t *p = d + s, *end = d + e;
        int8_t k = S_SKIP;
        int raw = e - s >= max_line;
        if (!raw && mixed) {
            raw = kind_of(d, s, e) == 2;
        }
        r_s[n] = r_e[n] = -1;
        sender_high[n] = 0;
        if (raw) {
            k = S_FEED;
        } else if (has_sm_program(p, end)) {
            k = S_FEED;
            /* the prefix: stamp, host, program[pid]: */
            const uint8_t *x = p;
            int64_t host = stamp_at(p, end, &t_key[n], &t_us[n]);
            int ok = host > 0;
            if (ok) {
                x += host;
                host_s[n] = x - d;
                const uint8_t *h0 = x;
                while (x < end && *x >= '!' && *x <= '~') x++;
                ok = x > h0 && x < end && *x == ' ';
                host_e[n] = x - d;
                x++;
                if (ok) {
                    if (starts_at(x, end, "sendmail[")) x += 9;
                    else if (starts_at(x, end, "sm-mta[")) x += 7;
                    else if (starts_at(x, end, "sm-msp-queue[")) x += 13;
                    else ok = 0;
                }
                if (ok) {
                    const uint8_t *pid = x;
                    while (x < end && is_digit(*x)) x++;
                    ok = x > pid && starts_at(x, end, "]: ");
                    x += 3;
                }
            }
            if (ok && starts_at(x, end, "[ID ")) {
                ok = 0; /* Solaris' message id after the tag (common.SOLARIS_ID): feed()'s */
            } else if (ok) {
                k = S_SKIP; /* a program line without a queue id: feed() skips it */
                const uint8_t *q = x;
                while (x < end && is_alnum(*x)) x++;
                int64_t ql = x - q;
                if (!(ql >= 8 && ql <= 20 && starts_at(x, end, ": "))) {
                    /* an impossible queue id before a `to=` / `from=`: feed() counts the line
                       (sendmail.LOOSE_QID_RE) */
                    const uint8_t *y = q;
                    while (y < end && *y != ' ' && *y != '\t' && *y != ':') y++;
                    if (y > q && (starts_at(y, end, ": to=") || starts_at(y, end, ": from="))) k = S_FEED;
                    /* or another log line glued to this one, cut short within its queue id
                       (common.glued_in_line): feed()'s */
                    if (has_pid_tag(q, end)) k = S_FEED;
                } else {
                    qid_s[n] = q - d;
                    qid_e[n] = x - d;
                    const uint8_t *rest = x + 2;
                    k = S_CLOCK;
                    if (has_pid_tag(rest, end)) {
                        k = S_FEED; /* maybe another log line glued to this one, cut short (common.glued_at): feed()'s */
                    } else if (starts_at(rest, end, "from=")) {
                        k = S_FEED;
                        const uint8_t *y = rest + 5, *vs, *ve;
                        int bracket = y < end && *y == '<';
                        if (bracket) y++;
                        vs = y;
                        while (y < end && is_sm_addr(*y)) y++;
                        ve = y;
                        int good = bracket ? (y < end && *y == '>' && (y++, 1)) : ve > vs;
                        if (good && starts_at(y, end, ", size=")) {
                            y += 7;
                            const uint8_t *z = y;
                            while (y < end && is_digit(*y)) y++;
                            good = y > z && starts_at(y, end, ", class=");
                        } else good = 0;
                        if (good) {
                            y += 8;
                            if (y < end && *y == '-') y++;
                            const uint8_t *z = y;
                            while (y < end && is_digit(*y)) y++;
                            good = y > z && starts_at(y, end, ", nrcpts=");
                        }
                        int64_t count = 0;
                        if (good) {
                            y += 9;
                            const uint8_t *z = y;
                            while (y < end && is_digit(*y) && count < (int64_t)1 << 40) count = count * 10 + (*y++ - '0');
                            good = y > z && !is_digit(*y) && starts_at(y, end, ", msgid=");
                        }
                        if (good) {
                            y += 8;
                            const uint8_t *ms = y;
                            while (y < end && *y >= '!' && *y <= '~' && *y != ',') y++;
                            const uint8_t *me = y;
                            good = (y == end || starts_at(y, end, ", ")) && keys_once(rest, end);
                            while (ms < me && (*ms == '<' || *ms == '>')) ms++;
                            while (me > ms && (me[-1] == '<' || me[-1] == '>')) me--;
                            b_s[n] = ms - d;
                            b_e[n] = me - d;
                        }
                        if (good) {
                            k = S_FROM;
                            a_s[n] = vs - d;
                            a_e[n] = ve - d;
                            nrcpts[n] = count;
                            sender_high[n] = any_high(vs, ve);
                        }
                    } else if (starts_at(rest, end, "to=")) {
                        k = S_FEED;
                        const uint8_t *y = rest + 3, *ts = y;
                        int bracket = y < end && *y == '<', good = 1;
                        int64_t first_r = nr;
                        for (;;) { /* one address, then ',' and another, or ", " */
                            if (bracket) {
                                if (y >= end || *y != '<') { good = 0; break; }
                                y++;
                            }
                            const uint8_t *as = y;
                            while (y < end && is_sm_addr(*y)) y++;
                            if (y == as) { good = 0; break; }
                            const uint8_t *ae = y;
                            if (bracket) {
                                if (y >= end || *y != '>') { good = 0; break; }
                                y++;
                            }
                            if (nr >= rcap) return -1;
                            rcpt_line[nr] = n;
                            rcpt_s[nr] = as - d;
                            rcpt_e[nr] = ae - d;
                            const uint8_t *dom = ae;
                            for (const uint8_t *z = ae - 1; z >= as; z--)
                                if (*z == '@') { dom = z + 1; break; }
                            rcpt_dom[nr] = dom - d;
                            rcpt_high[nr] = any_high(as, ae);
                            nr++;
                            if (y < end && *y == ',' && !(y + 1 < end && y[1] == ' ')) { y++; continue; }
                            break;
                        }
                        const uint8_t *te = y, *vs, *ve;
                        const uint8_t *mailer_s = 0, *mailer_e = 0, *relay_s = 0, *relay_e = 0, *dsn_s = 0, *dsn_e = 0;
                        good = good && starts_at(y, end, ", ");
                        if (good) {
                            y += 2;
                            if (starts_at(y, end, "ctladdr=")) {
                                y = skip_value(y + 8, end);
                                good = starts_at(y, end, ", ");
                                y += 2;
                            }
                        }
                        if (good) good = (y = expect_field(y, end, "delay=", &vs, &ve)) && starts_at(y, end, ", ") && (y += 2);
                        if (good) good = (y = expect_field(y, end, "xdelay=", &vs, &ve)) && starts_at(y, end, ", ") && (y += 2);
                        if (good) good = (y = expect_field(y, end, "mailer=", &mailer_s, &mailer_e)) && starts_at(y, end, ", ") && (y += 2);
                        if (good) good = (y = expect_field(y, end, "pri=", &vs, &ve)) && starts_at(y, end, ", ") && (y += 2);
                        if (good) good = (y = expect_field(y, end, "relay=", &relay_s, &relay_e)) && starts_at(y, end, ", ") && (y += 2);
                        if (good) /* printable: relay.strip() is then a trim of spaces (below) */
                            for (const uint8_t *z = relay_s; z < relay_e; z++) good &= *z >= ' ' && *z != 0x7f;
                        if (good) good = (y = expect_field(y, end, "dsn=", &dsn_s, &dsn_e)) && starts_at(y, end, ", ") && (y += 2);
                        const uint8_t *stat_at = 0;
                        if (good) {
                            /* exactly one ", stat=" in the rest; at most one ", reply=" before it (the
                               fields read so far hold no comma: neither can be in them, but where the
                               ", " before y begins) */
                            stat_at = stat_once(y - 2, end);
                            good = stat_at != NULL;
                        }
                        if (good) {
                            if (starts_at(y, end, "stat=")) {
                                good = y == stat_at + 2;
                            } else if (starts_at(y, end, "reply=")) {
                                good = stat_at > y;
                                r_s[n] = y + 6 - d;
                                r_e[n] = stat_at - d;
                            } else good = 0;
                        }
                        if (good) {
                            /* relay.strip() (a relay of spaces only would be "", not None: feed()'s) */
                            int had_relay = relay_e > relay_s;
                            while (relay_s < relay_e && *relay_s == ' ') relay_s++;
                            while (relay_e > relay_s && relay_e[-1] == ' ') relay_e--;
                            /* a non-ASCII character at either end might be one strip() removes: feed()'s */
                            good = (!had_relay || relay_e > relay_s) &&
                                   !(relay_e > relay_s && (*relay_s >= 0x80 || relay_e[-1] >= 0x80));
                        }
                        if (good) {
                            a_s[n] = ts - d;
                            a_e[n] = te - d;
                            b_s[n] = relay_s - d;
                            b_e[n] = relay_e - d;
                            c_s[n] = dsn_s - d;
                            c_e[n] = dsn_e - d;
                            s_s[n] = stat_at + 7 - d;
                            int msp = mailer_e - mailer_s == 5 && memcmp(mailer_s, "relay", 5) == 0 &&
                                      (starts_at(relay_s, relay_e, "[127.0.0.1]") || starts_at(relay_s, relay_e, "localhost") ||
                                       starts_at(relay_s, relay_e, "[::1]") || starts_at(relay_s, relay_e, "[IPv6:::1]"));
                            k = msp ? S_MSP : S_TO;
                        } else {
                            r_s[n] = -1;
                        }
                        if (k != S_TO) nr = first_r; /* rows only for delivery lines */
                    } else if (find(rest, end, ": DSN: Cannot send message")) {
                        k = S_FEED; /* feed() reads a from= or to= line as such, any other with this as an expiry */
                    }
                }
            }
        }
        kind[n] = k;
        n++;
        s = e + 1;
        line_starts[n] = s;
    }
    if (n == 0) return -1;
    counts[0] = n;
    counts[1] = nr;
    return 0;
}


/* What sendmail.py makes of the dsn=, stat= and reply= of a `to=` line (status_of, diagnostic_of,
 * smtp_phase_of), per line i: dsn d[dsn_s, dsn_e), stat d[stat_s, stat_e), reply d[reply_s,
 * reply_e) (reply_s < 0: none). Out: status (1 sent, 2 deferred, 3 bounced), code (the row's
 * reply_code: diagnostic_of's code, 250 for a sent line without one; -1 for none), text_reply (1:
 * the diagnostic is the reply, 0: stat=), phase (0 none, 1 rcpt, 2 end_of_data, 3 mail, 4
 * connect), python (1: a line this does not read, left to sendmail.py's functions: a reply that
 * does not start with its code, or a stat= with a non-ASCII byte where _code_in_stat must read it).
 * tests/test_sendmail_block.py holds this to sendmail.py's functions on odd and mutated lines. */
/* _STAT_CODE_RE.search on ASCII text: `\b([245]\d\d)[ -]\d\.\d{1,3}\.\d{1,3}\b|\b([45]\d\d) `; -1 for none */
static int stat_code_in(const uint8_t *t, const uint8_t *end) {
    for (const uint8_t *p = t; end - p >= 4; p++) {
        if (!is_digit(*p) || (p > t && is_word(p[-1]))) continue;
        if (!is_digit(p[1]) || !is_digit(p[2])) continue;
        int v = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
        if ((*p == '2' || *p == '4' || *p == '5') && (p[3] == ' ' || p[3] == '-') && end - p >= 6 && is_digit(p[4]) &&
            p[5] == '.') {
            const uint8_t *x = p + 6, *r = x;
            while (x < end && is_digit(*x)) x++;
            if (x > r && x - r <= 3 && x < end && *x == '.') {
                r = ++x;
                while (x < end && is_digit(*x)) x++;
                if (x > r && x - r <= 3 && (x == end || !is_word(*x))) return v;
            }
        }
        if ((*p == '4' || *p == '5') && p[3] == ' ') return v;
    }
    return -1;
}

void sendmail_facts(const uint8_t *d, const int64_t *dsn_s, const int64_t *dsn_e, const int64_t *stat_s,
                    const int64_t *stat_e, const int64_t *reply_s, const int64_t *reply_e, int64_t n,
                    int8_t *status, int16_t *code, uint8_t *text_reply, int8_t *phase, uint8_t *python) {
    for (int64_t i = 0; i < n; i++) {
        const uint8_t *ds = d + dsn_s[i], *de = d + dsn_e[i], *ss = d + stat_s[i], *se = d + stat_e[i];
        const uint8_t *rs = reply_s[i] >= 0 ? d + reply_s[i] : NULL, *re_ = reply_s[i] >= 0 ? d + reply_e[i] : NULL;
        int has_reply = rs && re_ > rs; /* `reply or stat`: an empty reply= is none */
        int st;
        if (de > ds && (*ds == '2' || *ds == '4' || *ds == '5')) st = *ds == '2' ? 1 : *ds == '4' ? 2 : 3;
        else st = starts_at(ss, se, "Sent") ? 1 : (starts_at(ss, se, "Deferred") || starts_at(ss, se, "queued")) ? 2 : 3;
        status[i] = (int8_t)st;
        python[i] = 0;
        text_reply[i] = (uint8_t)has_reply;
        int c = -1; /* reply_code_of(reply) */
        if (has_reply) {
            if (re_ - rs >= 4 && rs[0] >= '2' && rs[0] <= '5' && is_digit(rs[1]) && is_digit(rs[2]) && (rs[3] == ' ' || rs[3] == '-'))
                c = (rs[0] - '0') * 100 + (rs[1] - '0') * 10 + (rs[2] - '0');
            else
                python[i] = 1; /* REPLY_CODE_RE's search: Python's */
        }
        if (st != 1 && (c < 0 || c < 400)) {
            if (any_high(ss, se)) python[i] = 1;
            int sc = stat_code_in(ss, se);
            if (sc > 0) c = sc; /* `_code_in_stat(stat) or code` */
            if (has_reply && starts_at(rs, re_, "221")) text_reply[i] = 0;
        }
        int ph = 0; /* smtp_phase_of(stat, dsn, code) */
        int64_t dl = de - ds;
        if (starts_at(ss, se, "User unknown")) ph = 1;
        else if (dl == 5 && same(ds, "5.2.0", 5) && starts_at(ss, se, "Service unavailable") && (c == 550 || c < 0)) ph = 2;
        else if (dl == 5 && same(ds, "5.1.3", 5) && starts_at(ss, se, "Data format error")) ph = 3;
        else if (dl == 5 && same(ds, "5.5.0", 5) && starts_at(ss, se, "Service unavailable") && (c == 554 || c == 421 || c < 0)) ph = 4;
        phase[i] = (int8_t)ph;
        code[i] = (int16_t)(st == 1 && c < 0 ? 250 : c);
    }
}


/* --- qmail-send lines, multilog (parsers/qmail_block.py; QmailParser.feed is the definition and
 * the path without a compiler; tests/test_qmail_block.py holds the two to the same result) --- */
enum { Q_SKIP = 0, Q_FEED = 1, Q_START = 2, Q_RESULT = 3, Q_INFO = 4, Q_END = 5 };

static int hexval(uint8_t c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}
/* Python's \s on an ASCII line without CR: space, \t, \n, \v, \f and \x1c-\x1f */
static int is_pyspace(uint8_t c) { return c == ' ' || (c >= 9 && c <= 13) || (c >= 0x1c && c <= 0x1f); }

static const uint8_t *digits(const uint8_t *p, const uint8_t *end) {
    const uint8_t *x = p;
    while (x < end && is_digit(*x)) x++;
    return x > p ? x : NULL;
}

/* qmail.BAD_MSG_RE after `info msg ` / `end msg `: a message number that is none (a token up to
   a space or ':' with a character not a digit): feed() counts the line as malformed */
static int bad_msg_number(const uint8_t *p, const uint8_t *end) {
    int any = 0, other = 0;
    for (; p < end && *p != ':' && !is_pyspace(*p); p++) {
        any = 1;
        other |= !is_digit(*p);
    }
    return any && other;
}

/* The prefix of a splogger line (qmail.py's _split): a syslog stamp of a day that every year has
 * (stamp_at; a traditional one names a month, a day the month always has and an hour of the
 * day, so that the parser's year and time cannot fail), a host of printable ASCII, a program
 * `qmail…` with an optional [pid], ": ", then splogger's own stamp (9-10 digits, '.', 1-6 digits:
 * Unix time, which the parser prefers to syslog's) and white space. The message's start, with
 * the time and the host; NULL for any other line (the parser reads it). */
static const uint8_t *splogger_prefix(const uint8_t *p, const uint8_t *end, int64_t *ts, const uint8_t **hs,
                                      const uint8_t **he) {
    static const char MONTHS[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    uint64_t key;
    int64_t us;
    int64_t h = stamp_at(p, end, &key, &us);
    if (!h) return NULL;
    if (!(key & STAMP_ISO)) {
        int mon = 0;
        for (int i = 0; i < 12 && !mon; i++)
            if (same(p, MONTHS + 3 * i, 3)) mon = i + 1;
        int day = (p[4] == ' ' ? 0 : p[4] - '0') * 10 + (p[5] - '0');
        if (!mon || day < 1 || day > (mon == 2 ? 28 : days_in_month(2001, mon)) || two(p + 7) > 23) return NULL;
    }
    const uint8_t *x = p + h, *h0 = x;
    while (x < end && *x >= '!' && *x <= '~') x++;
    if (x == h0 || x >= end || *x != ' ') return NULL;
    *hs = h0;
    *he = x;
    x++;
    if (!starts_at(x, end, "qmail")) return NULL;
    while (x < end && *x >= '!' && *x <= '~' && *x != '[' && *x != ':') x++;
    if (x < end && *x == '[') {
        const uint8_t *pid = ++x;
        while (x < end && is_digit(*x)) x++;
        if (x == pid || x >= end || *x != ']') return NULL;
        x++;
    }
    if (!starts_at(x, end, ": ")) return NULL;
    x += 2;
    const uint8_t *s0 = x;
    int64_t secs = 0, frac = 0;
    while (x < end && is_digit(*x) && x - s0 < 11) secs = secs * 10 + (*x++ - '0');
    if (x - s0 < 9 || x - s0 > 10 || x >= end || *x != '.') return NULL;
    const uint8_t *f0 = ++x;
    while (x < end && is_digit(*x) && x - f0 < 7) frac = frac * 10 + (*x++ - '0');
    int64_t digits = x - f0;
    if (digits < 1 || digits > 6 || x >= end || !is_pyspace(*x)) return NULL;
    for (; digits < 6; digits++) frac *= 10;
    while (x < end && is_pyspace(*x)) x++;
    *ts = secs * 1000000 + frac;
    return x;
}

int scan_qmail(const uint8_t *d, int64_t len, int64_t max_line, int64_t cap,
               int64_t *line_starts, int8_t *kind, int64_t *ts, int64_t *k_s, int64_t *k_e,
               int64_t *m_s, int64_t *m_e, int64_t *v_s, int64_t *v_e, int64_t *w_s, int8_t *flag,
               int64_t *host_s, int64_t *host_e, int64_t *counts) {
    static const uint64_t BASE = 4611686018427387914ULL; /* 2^62 + 10 */
    int64_t n = 0, s = 0;
    line_starts[0] = 0;
    for (;;) {
        const uint8_t *nl = memchr(d + s, '\n', (size_t)(len - s));
        if (!nl) break;
        int64_t e = nl - d;
        if (n >= cap) return -1;
        const uint8_t *p = d + s, *end = d + e;
        int8_t k = Q_SKIP;
        int raw = e - s >= max_line, high = 0;
        if (!raw) {
            int kind = kind_of(d, s, e);  /* (high only matters for a line that is not raw) */
            raw = kind == 2;
            high = kind == 1;
        }
        int interesting = !raw && (find(p, end, "deliver") || find(p, end, " msg "));
        host_s[n] = -1; /* multilog: no host in the line */
        const uint8_t *x = NULL; /* the message, once the line's stamp is read */
        if (raw) {
            k = Q_FEED;
        } else if (interesting && *p != '@') {
            /* splogger; a bare stamp or any other shape: feed() */
            const uint8_t *hs, *he;
            x = splogger_prefix(p, end, &ts[n], &hs, &he);
            if (x) {
                host_s[n] = hs - d;
                host_e[n] = he - d;
            } else {
                k = Q_FEED;
            }
        } else if (interesting) {
            /* @ + 16 + 8 hex digits, whitespace, the message */
            uint64_t label = 0, nanos = 0;
            int ok = end - p > 25;
            for (int i = 1; ok && i <= 24; i++) {
                int v = hexval(p[i]);
                if (v < 0) ok = 0;
                else if (i <= 16) label = label << 4 | (uint64_t)v;
                else nanos = nanos << 4 | (uint64_t)v;
            }
            ok = ok && is_pyspace(p[25]);
            if (!ok || label < BASE || label - BASE >= ((uint64_t)1 << 40)) {
                k = Q_FEED; /* no stamp (feed() counts a delivery line as malformed), or one far
                               outside our time: feed()'s arithmetic */
            } else {
                x = p + 25;
                while (x < end && is_pyspace(*x)) x++;
                ts[n] = (int64_t)(label - BASE) * 1000000 + (int64_t)(nanos / 1000);
            }
        }
        if (x) {
            /* the message (of a multilog or a splogger line: read the same way) */
            const uint8_t *y, *z;
            if (starts_at(x, end, "delivery ")) {
                k = Q_FEED; /* unless of the usual shape */
                y = digits(x + 9, end);
                if (y && starts_at(y, end, ": ")) {
                    k_s[n] = x + 9 - d;
                    k_e[n] = y - d;
                    z = y + 2;
                    int word = starts_at(z, end, "success:") ? 1 : starts_at(z, end, "deferral:") ? 2 :
                               starts_at(z, end, "failure:") ? 3 : 0;
                    if (word) {
                        z += word == 1 ? 8 : word == 2 ? 9 : 8;
                        if (z < end && *z == ' ') z++;
                        int printable = 1;
                        for (const uint8_t *c = z; c < end; c++) printable &= *c >= 0x20 && *c < 0x7f;
                        if (printable) {
                            k = Q_RESULT;
                            flag[n] = (int8_t)word;
                            v_s[n] = z - d;
                            v_e[n] = e;
                        }
                    }
                }
            } else if (starts_at(x, end, "starting delivery ")) {
                k = Q_FEED;
                y = digits(x + 18, end);
                if (y && starts_at(y, end, ": msg ")) {
                    k_s[n] = x + 18 - d;
                    k_e[n] = y - d;
                    z = digits(y + 6, end);
                    if (z && starts_at(z, end, " to ")) {
                        m_s[n] = y + 6 - d;
                        m_e[n] = z - d;
                        int local = starts_at(z + 4, end, "local ") ? 1 : starts_at(z + 4, end, "remote ") ? 0 : -1;
                        if (local >= 0) {
                            const uint8_t *r = z + 4 + (local ? 6 : 7), *re = r;
                            while (re < end && !is_pyspace(*re)) re++;
                            int plain = re > r;
                            for (const uint8_t *c = r; c < re; c++) plain &= *c != '"';
                            /* a non-ASCII recipient (normalised in Python): \S+ ends at any Unicode space */
                            for (const uint8_t *c = r; high && plain && c < re; c++) plain &= *c < 0x80 || !uspace_at(c, re);
                            /* normalise_address: strip("<>"), lower (the C gather lowers) */
                            while (r < re && (*r == '<' || *r == '>')) r++;
                            while (re > r && (re[-1] == '<' || re[-1] == '>')) re--;
                            if (plain) {
                                k = Q_START;
                                flag[n] = (int8_t)local;
                                v_s[n] = r - d;
                                v_e[n] = re - d;
                                const uint8_t *at = re; /* the domain: after the last '@' (none: empty) */
                                for (const uint8_t *c = re; c > r; c--)
                                    if (c[-1] == '@') { at = c; break; }
                                w_s[n] = at - d;
                            }
                        }
                    }
                }
            } else if (starts_at(x, end, "info msg ")) {
                y = digits(x + 9, end);
                if (!(y && starts_at(y, end, ": bytes "))) {
                    if (bad_msg_number(x + 9, end)) k = Q_FEED;
                } else {
                    z = digits(y + 8, end);
                    if (z && starts_at(z, end, " from <")) {
                        const uint8_t *a = z + 7, *b = a;
                        while (b < end && *b != '>') b++;
                        if (b < end) {
                            int plain = 1;
                            for (const uint8_t *c = a; c < b; c++) plain &= *c >= 0x21 && *c != '"';
                            k = plain ? Q_INFO : Q_FEED;
                            k_s[n] = x + 9 - d;
                            k_e[n] = y - d;
                            while (a < b && *a == '<') a++;
                            v_s[n] = a - d;
                            v_e[n] = b - d;
                        }
                    }
                }
            } else if (starts_at(x, end, "end msg ")) {
                y = digits(x + 8, end);
                if (y) {
                    k = Q_END;
                    k_s[n] = x + 8 - d;
                    k_e[n] = y - d;
                } else if (bad_msg_number(x + 8, end)) {
                    k = Q_FEED;
                }
            }
        }
        if (interesting && high && k != Q_START) k = Q_FEED; /* of a non-ASCII line, only a start is read here */
        kind[n] = k;
        n++;
        s = e + 1;
        line_starts[n] = s;
    }
    if (n == 0) return -1;
    counts[0] = n;
    return 0;
}

/* What qmail.py reads in the unescaped text of a `delivery D: …` line, for texts of printable
 * ASCII and newlines (what scan_qmail takes and qmail_block._unescaped makes of it):
 *   code[i]   CODE_RE `Remote host said: ([2-5]\d\d)[ -]`, leftmost; -1 for none
 *   ip_*[i]   IP_RE `(?:^|Connected to |\s)(\d{1,3}(?:\.\d{1,3}){3}|[0-9a-fA-F:]+:[0-9a-fA-F:]+)(?=[ ._])`,
 *             its group; -1 for none
 *   dsn_*[i]  _DSN_RE `(?:\(#|(?<![\w.]))([245]\.\d{1,3}\.\d{1,3})(?!\d|\.\d)\)?`, its group; -1 for none
 *   phase[i]  phase_of: the index of the first PHASE_MARKERS marker in the text; -1 for none
 *   too_long[i] "in the queue too long" in the text (outcome(): a failure saying so is expired)
 * Positions are offsets into chars; text i is chars[offsets[i], offsets[i + 1]).
 * tests/test_qmail_block.py holds this to qmail.py's own functions on odd and mutated texts. */
static int is_hexcolon(uint8_t c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':'; }
static int is_ip_next(uint8_t c) { return c == ' ' || c == '.' || c == '_'; }

/* the IP group starting at g (either alternative, in order); its end, or NULL */
static const uint8_t *ip_at(const uint8_t *g, const uint8_t *end) {
    /* \d{1,3}(?:\.\d{1,3}){3}: a greedy run of digits can only give way to a digit, never to the
       '.' or the lookahead's character that must follow it, so each run is taken whole */
    const uint8_t *x = g;
    int ok = 1;
    for (int part = 0; part < 4 && ok; part++) {
        if (part) {
            if (x < end && *x == '.') x++;
            else ok = 0;
        }
        const uint8_t *r = x;
        while (x < end && is_digit(*x)) x++;
        if (ok && (x == r || x - r > 3)) ok = 0;
    }
    if (ok && x < end && is_ip_next(*x)) return x;
    /* [0-9a-fA-F:]+:[0-9a-fA-F:]+ then one of " ._" (none of them in the class): the match ends
       where the run of the class ends, and needs a ':' with a character of the run on each side */
    x = g;
    while (x < end && is_hexcolon(*x)) x++;
    if (x < end && is_ip_next(*x)) {
        for (const uint8_t *c = g + 1; c + 1 < x; c++)
            if (*c == ':') return x;
    }
    return NULL;
}

/* the DSN group [245]\.\d{1,3}\.\d{1,3}(?!\d|\.\d) at g: its end, or NULL */
static const uint8_t *dsn_at(const uint8_t *g, const uint8_t *end) {
    if (end - g < 5 || *g < '2' || *g > '5' || *g == '3' || g[1] != '.') return NULL;
    const uint8_t *x = g + 2, *r = x;
    while (x < end && is_digit(*x)) x++;
    if (x == r || x - r > 3 || x >= end || *x != '.') return NULL;
    r = ++x;
    while (x < end && is_digit(*x) && x - r < 3) x++;
    if (x == r) return NULL;
    /* (?!\d|\.\d): not the first three numbers of an IPv4 address */
    if (x < end && (is_digit(*x) || (*x == '.' && x + 1 < end && is_digit(x[1])))) return NULL;
    return x;
}

static const char *QMAIL_MARKERS[] = {"does not like recipient", "failed on DATA command", "failed after I sent the message",
                                      "but sender was rejected", "but my name was rejected", "but greeting failed",
                                      "wasn't able to establish an SMTP connection", NULL};

void qmail_facts(const uint8_t *chars, const int32_t *offsets, int64_t n, int16_t *code, int64_t *ip_s,
                 int64_t *ip_e, int64_t *dsn_s, int64_t *dsn_e, int8_t *phase, uint8_t *too_long) {
    for (int64_t i = 0; i < n; i++) {
        const uint8_t *t = chars + offsets[i], *end = chars + offsets[i + 1];
        code[i] = -1;
        for (const uint8_t *p = find(t, end, "Remote host said: "); p; p = find(p + 1, end, "Remote host said: ")) {
            const uint8_t *x = p + 18;
            if (end - x >= 4 && x[0] >= '2' && x[0] <= '5' && is_digit(x[1]) && is_digit(x[2]) && (x[3] == ' ' || x[3] == '-')) {
                code[i] = (int16_t)((x[0] - '0') * 100 + (x[1] - '0') * 10 + (x[2] - '0'));
                break;
            }
        }
        ip_s[i] = ip_e[i] = -1;
        for (const uint8_t *p = t; p < end; p++) {
            const uint8_t *g, *x = NULL;
            if (p == t && (x = ip_at(p, end)) != NULL) g = p;
            else if (starts_at(p, end, "Connected to ") && (x = ip_at(p + 13, end)) != NULL) g = p + 13;
            else if (is_pyspace(*p) && (x = ip_at(p + 1, end)) != NULL) g = p + 1;
            if (x) {
                ip_s[i] = g - chars;
                ip_e[i] = x - chars;
                break;
            }
        }
        dsn_s[i] = dsn_e[i] = -1;
        for (const uint8_t *p = t; p < end; p++) {
            const uint8_t *g = NULL, *x = NULL;
            if (*p == '(' && p + 1 < end && p[1] == '#' && (x = dsn_at(p + 2, end)) != NULL) g = p + 2;
            else if ((p == t || (!is_word(p[-1]) && p[-1] != '.')) && (x = dsn_at(p, end)) != NULL) g = p;
            if (x) {
                dsn_s[i] = g - chars;
                dsn_e[i] = x - chars;
                break;
            }
        }
        phase[i] = -1;
        for (int m = 0; QMAIL_MARKERS[m]; m++)
            if (find(t, end, QMAIL_MARKERS[m])) {
                phase[i] = (int8_t)m;
                break;
            }
        too_long[i] = find(t, end, "in the queue too long") != NULL;
    }
}

/* Does d[0, len) contain any of the n markers (NUL-separated in `markers`)? 1 or 0.
 * With SSE2 (every x86-64) one pass for all of them: 16 positions at a time, a position is a
 * candidate where a marker's first, second and last bytes are all there (rare for these markers),
 * and only candidates are compared; the last few bytes, and other machines, use glibc's memmem. */
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#define MAX_MARKERS 16
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_AVX2_PATH 1
/* The SSE2 loop below, 32 positions at a time, for processors with AVX2 (asked at run time):
 * 1 when a marker is found, else 0 with *at = the first start not looked at. */
__attribute__((target("avx2"))) static int markers_avx2(const uint8_t *d, int64_t len, const char **ms,
                                                       const size_t *ks, int count, size_t longest, int64_t *at) {
    __m256i first[MAX_MARKERS], second[MAX_MARKERS], last[MAX_MARKERS];
    for (int j = 0; j < count; j++) {
        first[j] = _mm256_set1_epi8((char)ms[j][0]);
        second[j] = _mm256_set1_epi8((char)ms[j][ks[j] > 1 ? 1 : 0]);
        last[j] = _mm256_set1_epi8((char)ms[j][ks[j] - 1]);
    }
    int64_t i = 0;
    for (; i + 32 + (int64_t)longest - 1 <= len; i += 32) {
        __m256i a = _mm256_loadu_si256((const __m256i *)(d + i));
        __m256i a1 = _mm256_loadu_si256((const __m256i *)(d + i + (longest > 1)));
        for (int j = 0; j < count; j++) {
            __m256i b = _mm256_loadu_si256((const __m256i *)(d + i + ks[j] - 1));
            __m256i hit = _mm256_and_si256(_mm256_cmpeq_epi8(a, first[j]), _mm256_cmpeq_epi8(b, last[j]));
            if (ks[j] > 1) hit = _mm256_and_si256(hit, _mm256_cmpeq_epi8(a1, second[j]));
            unsigned mask = (unsigned)_mm256_movemask_epi8(hit);
            while (mask) {
                int bit = __builtin_ctz(mask);
                if (memcmp(d + i + bit, ms[j], ks[j]) == 0) return 1;
                mask &= mask - 1;
            }
        }
    }
    *at = i;
    return 0;
}
#endif
int has_markers(const uint8_t *d, int64_t len, const char *markers, int n) {
    const char *ms[MAX_MARKERS];
    size_t ks[MAX_MARKERS];
    int count = 0, many = n > MAX_MARKERS;
    size_t longest = 1;
    const char *m = markers;
    for (int i = 0; i < n; i++) {
        size_t k = strlen(m);
        if (k && !many) {
            ms[count] = m;
            ks[count++] = k;
            if (k > longest) longest = k;
        }
        m += k + 1;
    }
    int64_t i = 0;
#if defined(HAVE_AVX2_PATH)
    if (!many && count && __builtin_cpu_supports("avx2") && markers_avx2(d, len, ms, ks, count, longest, &i)) return 1;
#endif
#if defined(__SSE2__)
    if (!many && count) {
        __m128i first[MAX_MARKERS], second[MAX_MARKERS], last[MAX_MARKERS];
        for (int j = 0; j < count; j++) {
            first[j] = _mm_set1_epi8((char)ms[j][0]);
            second[j] = _mm_set1_epi8((char)ms[j][ks[j] > 1 ? 1 : 0]);
            last[j] = _mm_set1_epi8((char)ms[j][ks[j] - 1]);
        }
        /* every marker starting at i..i+15 lies inside d[0, len) (from where AVX2 stopped) */
        for (; i + 16 + (int64_t)longest - 1 <= len; i += 16) {
            __m128i a = _mm_loadu_si128((const __m128i *)(d + i));
            __m128i a1 = _mm_loadu_si128((const __m128i *)(d + i + (longest > 1)));
            for (int j = 0; j < count; j++) {
                __m128i b = _mm_loadu_si128((const __m128i *)(d + i + ks[j] - 1));
                __m128i hit = _mm_and_si128(_mm_cmpeq_epi8(a, first[j]), _mm_cmpeq_epi8(b, last[j]));
                if (ks[j] > 1) hit = _mm_and_si128(hit, _mm_cmpeq_epi8(a1, second[j]));
                unsigned mask = (unsigned)_mm_movemask_epi8(hit);
                while (mask) {
                    int bit = __builtin_ctz(mask);
                    if (memcmp(d + i + bit, ms[j], ks[j]) == 0) return 1;
                    mask &= mask - 1;
                }
            }
        }
    }
#endif
    /* what is left from i (all of it without SSE2) */
    m = markers;
    for (int j = 0; j < n; j++) {
        size_t k = strlen(m);
        if (k && memmem(d + i, (size_t)(len - i), m, k)) return 1;
        m += k + 1;
    }
    return 0;
}

/* flags[i] = 1 when d[starts[i], ends[i]) holds a non-ASCII byte, else 0 (the slices of a
 * block's fields, so that only those are read in Python: postfix_block._python_lower). */
void high_slices(const uint8_t *d, const int64_t *starts, const int64_t *ends, int64_t n, uint8_t *flags) {
    for (int64_t i = 0; i < n; i++) flags[i] = any_high(d + starts[i], d + ends[i]);
}

/* flags[i] = 1 when d[starts[i], ends[i]) holds a non-ASCII character other than U+3001-U+9FFF
 * (CJK punctuation, kana, CJK ideographs, ...), else 0. Python's lower(), \d, \s and IGNORECASE
 * leave those characters alone and none of them is a digit or a space, so for a slice without
 * such a character the ASCII-only readers here (gather's lower-casing, text_facts) give
 * Python's answer: only flagged slices are read in Python (postfix_block._python_lower and
 * _text_facts_native). tests/test_postfix_scan.py checks every code point of the range against
 * Python. A slice that is not whole UTF-8 is flagged. */
void odd_slices(const uint8_t *d, const int64_t *starts, const int64_t *ends, int64_t n, uint8_t *flags) {
    for (int64_t i = 0; i < n; i++) {
        const uint8_t *p = d + starts[i], *end = d + ends[i];
        uint8_t odd = 0;
        if (any_high(p, end)) {
            while (p < end) {
                uint8_t c = *p;
                if (c < 0x80) {
                    p++;
                    continue;
                }
                /* U+3001-U+9FFF: E3 80 81 .. E9 BF BF */
                if (c < 0xE3 || c > 0xE9 || end - p < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 ||
                    (c == 0xE3 && p[1] == 0x80 && p[2] == 0x80)) {
                    odd = 1;
                    break;
                }
                p += 3;
            }
        }
        flags[i] = odd;
    }
}

/* --- what a delivery text says: common.reply_code_of and postfix.smtp_phase_of, for ASCII texts
 * (postfix_block._row_columns asks Python for the others; tests/test_postfix_scan.py holds the
 * two to the same answers on every text of the test logs and on mutated ones) --------------- */
static int is_ascii_space(uint8_t c) { return c == ' ' || (c >= 9 && c <= 13) || (c >= 0x1c && c <= 0x1f); }
static uint8_t lower_ascii(uint8_t c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; }
static int same_nocase(const uint8_t *p, const uint8_t *end, const char *lit) {
    size_t n = strlen(lit);
    if ((size_t)(end - p) < n) return 0;
    for (size_t k = 0; k < n; k++)
        if (lower_ascii(p[k]) != (uint8_t)lit[k]) return 0;
    return 1;
}

/* REPLY_CODE_RE.search: `(?:said|talk to me|greeting|reply=|Remote host said)[:=]? ?([2-5]\d\d)[ -]`
 * or `^([2-5]\d\d)[ -]`, leftmost; -1 for none. (The words begin with different letters and
 * the optional parts cannot be skipped where they are there, so no backtracking is needed.) */
static int reply_code_in(const uint8_t *t, const uint8_t *end) {
    static const char *WORDS[] = {"said", "talk to me", "greeting", "reply=", "Remote host said"};
    static const size_t LENS[] = {4, 10, 8, 6, 16};
    for (const uint8_t *p = t; p < end; p++) {
        int w; /* the one word that can start here, by its first letter */
        switch (*p) {
        case 's': w = 0; break;
        case 't': w = 1; break;
        case 'g': w = 2; break;
        case 'r': w = 3; break;
        case 'R': w = 4; break;
        default: w = -1;
        }
        if (w >= 0 && (size_t)(end - p) >= LENS[w] && same(p, WORDS[w], LENS[w])) {
            const uint8_t *x = p + LENS[w];
            if (x < end && (*x == ':' || *x == '=')) x++;
            if (x < end && *x == ' ') x++;
            if (end - x >= 4 && x[0] >= '2' && x[0] <= '5' && is_digit(x[1]) && is_digit(x[2]) && (x[3] == ' ' || x[3] == '-'))
                return (x[0] - '0') * 100 + (x[1] - '0') * 10 + (x[2] - '0');
        }
        if (p == t && end - p >= 4 && p[0] >= '2' && p[0] <= '5' && is_digit(p[1]) && is_digit(p[2]) && (p[3] == ' ' || p[3] == '-'))
            return (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
    }
    return -1;
}

enum { PH_NONE = 0, PH_CONNECT, PH_HELO, PH_MAIL, PH_RCPT, PH_DATA, PH_END_OF_DATA, PH_QUIT, PH_PYTHON = 255 };
static const struct { const char *word; int phase; } PHASE_OF[] = {
    {"RCPT TO", PH_RCPT}, {"MAIL FROM", PH_MAIL}, {"end of DATA", PH_END_OF_DATA}, {"DATA", PH_DATA},
    {"HELO", PH_HELO}, {"EHLO", PH_HELO}, {"QUIT", PH_QUIT}, {"RSET", PH_QUIT}, {"XFORWARD", PH_HELO},
    {"XCLIENT", PH_HELO}, {"STARTTLS", PH_HELO}, {"BDAT", PH_DATA}, {"LHLO", PH_HELO}, {"AUTH", PH_HELO},
    {NULL, 0}};

/* smtp_phase_of: what `\(in reply to (.+?) command\)\)?\s*$` finds (postfix.phase_command), then "refused to talk to me" /
 * "while receiving the initial server greeting", then WHILE_SENDING_RE (case-insensitive: "while sending X" or
 * "while performing the EHLO|HELO|LHLO handshake", the leftmost).
 * PH_PYTHON: a command word PHASES does not name (smtp_phase_of lower-cases it). */
static int phase_in(const uint8_t *t, const uint8_t *end) {
    const uint8_t *a = find(t, end, "(in reply to ");
    if (a) {
        /* a match at a later "(in reply to " is one at the first: the lazy group ends at the
           first " command)" (at least one character on) followed by `\)?\s*$` */
        for (const uint8_t *p = a + 14; p < end && (p = find(p, end, " command)")) != NULL; p++) {
            const uint8_t *q = p + 9;
            if (q < end && *q == ')') q++;
            while (q < end && is_ascii_space(*q)) q++;
            if (q == end) {
                const uint8_t *g = a + 13;
                size_t n = (size_t)(p - g);
                for (int i = 0; PHASE_OF[i].word; i++)
                    if (strlen(PHASE_OF[i].word) == n && memcmp(g, PHASE_OF[i].word, n) == 0) return PHASE_OF[i].phase;
                return PH_PYTHON;
            }
        }
    }
    /* one pass for the rest: "refused to talk to me" or "while receiving the initial server
       greeting" anywhere (as they are) say connect; else the leftmost WHILE_SENDING_RE match */
    int sending = PH_NONE;
    for (const uint8_t *p = t; p < end; p++) {
        uint8_t c = *p;
        if (c == 'r') {
            if (starts_with(p, end, "refused to talk to me")) return PH_CONNECT;
        } else if (c == 'w' || c == 'W') {
            if (c == 'w' && starts_with(p, end, "while receiving the initial server greeting")) return PH_CONNECT;
            if (sending != PH_NONE) continue;
            if (same_nocase(p, end, "while performing the ")) {
                const uint8_t *x = p + 21;
                if ((same_nocase(x, end, "ehlo") || same_nocase(x, end, "helo") || same_nocase(x, end, "lhlo"))
                    && same_nocase(x + 4, end, " handshake"))
                    sending = PH_HELO;
                continue;
            }
            if (!same_nocase(p, end, "while sending ")) continue;
            const uint8_t *x = p + 14;
            if (same_nocase(x, end, "rcpt to")) sending = PH_RCPT;
            else if (same_nocase(x, end, "mail from")) sending = PH_MAIL;
            else if (same_nocase(x, end, "end of data")) sending = PH_END_OF_DATA;
            else if (same_nocase(x, end, "data")) sending = PH_DATA;
            else if (same_nocase(x, end, "message body")) sending = PH_END_OF_DATA;
        }
    }
    return sending;
}

/* Per text d[starts[i], ends[i]) (ASCII, or UTF-8 whose non-ASCII characters odd_slices lets
 * through: no ASCII literal, digit or space can match inside them; none where valid[i] is 0):
 * its reply code (-1: none) and SMTP phase (PH_*). */
void text_facts(const uint8_t *d, const int64_t *starts, const int64_t *ends, const uint8_t *valid, int64_t n,
                int16_t *codes, uint8_t *phases) {
    for (int64_t i = 0; i < n; i++) {
        if (valid && !valid[i]) {
            codes[i] = -1;
            phases[i] = PH_NONE;
            continue;
        }
        const uint8_t *t = d + starts[i], *end = d + ends[i];
        codes[i] = (int16_t)reply_code_in(t, end);
        phases[i] = (uint8_t)phase_in(t, end);
    }
}

/* --- classify.mask_addresses, compiled ----------------------------------------------------
 * The RE2 pattern ADDRESS_MASK of pipeline/classify/classifier.py, `(^|S)L+@D+($|S)` replaced by
 * `\1x@x\2` everywhere in a text (leftmost, non-overlapping: RE2::GlobalReplace, as Arrow's
 * replace_substring_regex runs it), where S, L and D are the ASCII classes below. L, D and S
 * share no character and none holds '@', so a match is decided by its '@' alone: the run of L
 * ending before it must start at the text's start or right after an S (at or after where the
 * last match ended: a match takes its trailing S), and the run of D after it must be non-empty
 * and end at the text's end or at an S. Matches come in the order of their '@'. L and D also
 * hold U, every non-ASCII character but the spaces of Python's \s (_quick_normalise's runs hold
 * them): a non-ASCII byte is taken as L and D, and a run with one is checked for those spaces
 * (RE2 reads the UTF-8 text by characters; a space there ends the run without an S). A
 * text holding `$B` or `$@` (an ISO-2022-JP run may start there: JIS_MARK) is left as it is. Then
 * BRACKET_IP_MASK, `(^|\])([^\[\]]*)\[I*[.:]I*\]` -> `\1\2[ip]` (I: [0-9A-Fa-f.:]; an inner
 * part of two characters or more, so that "[ip]" is no longer), on texts with
 * neither a '"' nor a JIS_MARK (mask_brackets). The output is never longer than the input.
 * tests/test_classify_fast.py holds this to the patterns. */
enum { MK_SEP = 1, MK_LOCAL = 2, MK_DOMAIN = 4, MK_HIGH = 8 };
static uint8_t MASK_CLASS[256];
static volatile int mask_ready = 0;

static void make_mask_classes(void) {
    for (int c = 0; c < 256; c++) {
        uint8_t v = 0;
        if ((c >= 0x09 && c <= 0x0d) || (c && strchr(" <>()[]\"',;:/", c))) v |= MK_SEP;
        if (is_alnum((uint8_t)c) || (c && strchr(".!#$%&*+=?^_{|}~-", c))) v |= MK_LOCAL;
        if (is_alnum((uint8_t)c) || c == '.' || c == '_' || c == '-') v |= MK_DOMAIN;
        if (c >= 0x80) v |= MK_LOCAL | MK_DOMAIN | MK_HIGH; /* a UTF-8 character's byte: U unless a space */
        MASK_CLASS[c] = v;
    }
    mask_ready = 1;
}

static int is_ip_char(uint8_t c) { return is_digit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') || c == '.' || c == ':'; }

/* BRACKET_IP_MASK over t[0:len), in place (RE2's leftmost, non-overlapping matches: one starts
 * at the text's start or at a ']' it takes, runs over no bracket up to a '[', whose inner part
 * of I, with a '.' or ':', must end at a ']'; the next match needs a later ']'); the new length. */
static int64_t mask_brackets(uint8_t *t, int64_t len) {
    int64_t from = 0, w = 0, copied = 0; /* a match may start its run at `from` */
    for (;;) {
        int64_t j = from;
        while (j < len && t[j] != '[' && t[j] != ']') j++;
        if (j >= len) break;
        if (t[j] == ']') { /* a ']': the next match may start with it */
            from = j + 1;
            continue;
        }
        int64_t k = j + 1;
        int dot = 0;
        while (k < len && is_ip_char(t[k])) dot |= t[k] == '.' || t[k] == ':', k++;
        if (k < len && t[k] == ']' && dot && k - j > 2) {
            memmove(t + w, t + copied, (size_t)(j + 1 - copied));
            w += j + 1 - copied;
            memcpy(t + w, "ip]", 3);
            w += 3;
            copied = k + 1;
            from = k + 1; /* (the ']' is taken: a match needs another one first) */
            const uint8_t *rb = k + 1 < len ? memchr(t + k + 1, ']', (size_t)(len - k - 1)) : NULL;
            if (!rb) break;
            from = rb - t + 1;
        } else { /* no match from here: the next start is the next ']' after this '[' */
            const uint8_t *rb = memchr(t + j + 1, ']', (size_t)(len - j - 1));
            if (!rb) break;
            from = rb - t + 1;
        }
    }
    memmove(t + w, t + copied, (size_t)(len - copied));
    return w + len - copied;
}

/* 1 when [p, end) (whole UTF-8 characters) holds a non-ASCII space of Python's str.isspace()
 * (U+0085, U+00A0, U+1680, U+2000-U+200A, U+2028, U+2029, U+202F, U+205F, U+3000): what U leaves out. */
static int has_wide_space(const uint8_t *p, const uint8_t *end) {
    for (; p < end; p++) {
        if (*p < 0xC2) continue;
        int64_t left = end - p;
        if (p[0] == 0xC2 && left >= 2 && (p[1] == 0x85 || p[1] == 0xA0)) return 1;
        if (left < 3) continue;
        if (p[0] == 0xE1 && p[1] == 0x9A && p[2] == 0x80) return 1;
        if (p[0] == 0xE2 && p[1] == 0x80 && (p[2] <= 0x8A || p[2] == 0xA8 || p[2] == 0xA9 || p[2] == 0xAF)) return 1;
        if (p[0] == 0xE2 && p[1] == 0x81 && p[2] == 0x9F) return 1;
        if (p[0] == 0xE3 && p[1] == 0x80 && p[2] == 0x80) return 1;
    }
    return 0;
}

/* 1 when [s, s + len) holds "$B" or "$@" (the ISO-2022-JP escapes, less their ESC): one search
 * for '$' (two memmem calls a text cost 1 % of an ingest). */
static int has_jis_escape(const uint8_t *s, int64_t len) {
    const uint8_t *p = s, *end = s + len;
    while (p + 1 < end && (p = memchr(p, '$', (size_t)(end - p - 1))) != NULL) {
        if (p[1] == 'B' || p[1] == '@') return 1;
        p++;
    }
    return 0;
}

/* The strings in[in_off[r]:in_off[r + 1]] for r = rows[i] (i when rows is NULL), i < n, masked,
 * into out (Arrow offsets out_off); a row not `valid` (when valid is given) is empty. */
void mask_addresses(const uint8_t *in, const int32_t *in_off, const int64_t *rows, const uint8_t *valid,
                    int64_t n, int32_t *out_off, uint8_t *out) {
    if (!mask_ready) make_mask_classes();
    int64_t o = 0;
    out_off[0] = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t r = rows ? rows[i] : i;
        const uint8_t *s = in + in_off[r];
        int64_t len = valid && !valid[r] ? 0 : (int64_t)in_off[r + 1] - in_off[r];
        int64_t done = 0;      /* copied (and searched) up to here */
        const uint8_t *at = len > 0 ? memchr(s, '@', (size_t)len) : NULL;
        int jis = (at || (len > 0 && memchr(s, '[', (size_t)len))) && has_jis_escape(s, len);
        if (jis) at = NULL;
        int64_t row_start = o;
        while (at) {
            int64_t a = at - s, b = a, k = a + 1;
            uint8_t high = 0;
            while (b > done && (MASK_CLASS[s[b - 1]] & MK_LOCAL)) high |= s[--b];
            int ok = b < a && (b == 0 || (b - 1 >= done && (MASK_CLASS[s[b - 1]] & MK_SEP)));
            if (ok) {
                while (k < len && (MASK_CLASS[s[k]] & MK_DOMAIN)) high |= s[k++];
                ok = k > a + 1 && (k == len || (MASK_CLASS[s[k]] & MK_SEP));
            }
            if (ok && (high & 0x80)) ok = !has_wide_space(s + b, s + k); /* (a wide space ends a run: no S there) */
            if (ok) {
                int64_t start = b == 0 ? 0 : b - 1;
                memcpy(out + o, s + done, (size_t)(start - done));
                o += start - done;
                if (b > 0) out[o++] = s[b - 1];
                out[o++] = 'x'; out[o++] = '@'; out[o++] = 'x';
                if (k < len) out[o++] = s[k];
                done = k < len ? k + 1 : len;
                at = done < len ? memchr(s + done, '@', (size_t)(len - done)) : NULL;
            } else {
                at = a + 1 < len ? memchr(s + a + 1, '@', (size_t)(len - a - 1)) : NULL;
            }
        }
        memcpy(out + o, s + done, (size_t)(len - done));
        o += len - done;
        if (!jis && len > 0 && memchr(s, '[', (size_t)len) && !memchr(s, '"', (size_t)len))
            o = row_start + mask_brackets(out + row_start, o - row_start);
        out_off[i + 1] = (int32_t)o;
    }
}

/* ---- The queue-id join of a Postfix block (pipeline/ingest/parsers/postfix_join.py) ----------
 *
 * join_numpy() there defines what this computes; read_block applies it to the parser state
 * through PostfixParser.change (nothing here knows the state, only what the caller says of it).
 * Per interesting line (n): kinds (K_*), fkinds (the kinds extract() found: ranks of from= and
 * message-id= lines), codes (queue-id code, read where kinds != K_FEED), minutes, us (the
 * stamp); fed_ts (n_fed: the times of the K_FEED lines, INT64_MIN none); clock0.
 * Per code (n_codes): special (fed queue ids), has_carried, carried_seen, carried_left,
 * carried_sender, carried_mid, carried_deferred. Per delivery row (n_deliv): status codes
 * (deferred_code: a deferral), recipients (Arrow offsets and characters).
 * Out per line: ts, clock_run, in_loop, aux; per row: d_ts, d_code, sender, mid; per touched
 * queue id (by code): t_code, t_flags, t_top, t_sender, t_mid; per kept recipient: e_code,
 * e_first, e_value; counts[0] touched, counts[1] recipients. 0, or -1 (inputs that do not fit
 * together) or -3 (no memory). */
#define J_REMOVED 1
#define J_REUSED 2

static uint64_t recipient_hash(const uint8_t *p, int64_t len, int64_t code) {
    uint64_t h = 1469598103934665603ULL ^ (uint64_t)code * 0x9E3779B97F4A7C15ULL;
    for (int64_t i = 0; i < len; i++) h = (h ^ p[i]) * 1099511628211ULL;
    return h ^ (h >> 29);
}

int join_block(int64_t n, const int8_t *kinds, const int8_t *fkinds, const int64_t *codes, const int64_t *minutes,
               const int64_t *us, const int64_t *minute_us, int64_t n_minutes, const int64_t *fed_ts, int64_t n_fed,
               int64_t clock0, int64_t n_codes, const uint8_t *special_in, const uint8_t *has_carried,
               const int64_t *carried_seen, const uint8_t *carried_left, const int64_t *carried_sender,
               const int64_t *carried_mid, const uint8_t *carried_deferred, int64_t ttl, int crowded,
               int64_t n_deliv, const int8_t *status, int deferred_code, const int32_t *r_off, const uint8_t *r_chars,
               int64_t *ts, int64_t *clock_run, uint8_t *in_loop, int64_t *aux,
               int64_t *d_ts, int64_t *d_code, int64_t *sender, int64_t *mid,
               int64_t *t_code, uint8_t *t_flags, int64_t *t_top, int64_t *t_sender, int64_t *t_mid,
               int64_t *e_code, int64_t *e_first, int64_t *e_value, int64_t *counts) {
    counts[0] = counts[1] = 0;
    /* per code: eleven int64 and five byte arrays in one allocation */
    int64_t nc = n_codes > 0 ? n_codes : 1;
    int64_t *w = malloc((size_t)nc * (11 * sizeof(int64_t) + 5));
    if (!w) return -3;
    int64_t *first_deliv = w, *last_msgid = w + nc, *cur_sender = w + 2 * nc, *cur_mid = w + 3 * nc,
            *ep_sender = w + 4 * nc, *ep_mid = w + 5 * nc, *ep_start = w + 6 * nc, *ep_max = w + 7 * nc,
            *removed_t = w + 8 * nc, *slot = w + 9 * nc, *n_of = w + 10 * nc;
    uint8_t *special = (uint8_t *)(w + 11 * nc), *first_ep = special + nc, *last_removed = first_ep + nc,
            *want = last_removed + nc, *seen = want + nc;
    int rc = 0;
    /* pass 1, in line order: times, the log's clock, rows and ranks; each code's first delivery
       and last message-id line */
    for (int64_t c = 0; c < n_codes; c++) {
        first_deliv[c] = INT64_MAX;
        last_msgid[c] = -1;
        special[c] = special_in[c];
    }
    int64_t clock = clock0, block_min = INT64_MAX, any_time = 0, fed = 0, dj = 0, from_rank = 0, mid_rank = 0;
    for (int64_t i = 0; i < n; i++) {
        int k = kinds[i];
        int64_t line_t;
        if (fkinds[i] == K_FROM) aux[i] = from_rank++;
        else if (fkinds[i] == K_MSGID) aux[i] = mid_rank++;
        else aux[i] = -1;
        if (k == K_FEED) {
            if (fed >= n_fed) { rc = -1; goto done; }
            ts[i] = 0;
            line_t = fed_ts[fed++];
            aux[i] = -1;
        } else {
            int64_t m = minutes[i], c = codes[i];
            if (m < 0 || m >= n_minutes || c < 0 || c >= n_codes) { rc = -1; goto done; }
            ts[i] = line_t = minute_us[m] + us[i];
            if (k == K_DELIVERY) {
                if (dj >= n_deliv) { rc = -1; goto done; }
                if (i < first_deliv[c]) first_deliv[c] = i;
                d_ts[dj] = line_t;
                d_code[dj] = c;
                sender[dj] = mid[dj] = -1;
                aux[i] = dj++;
            } else if (k == K_MSGID) {
                last_msgid[c] = i;
            } else if (k != K_FROM && k != K_REMOVED) { rc = -1; goto done; }
        }
        if (line_t != INT64_MIN) {
            any_time = 1;
            if (line_t < block_min) block_min = line_t;
        }
        if (line_t > clock) clock = line_t;
        clock_run[i] = clock;
    }
    if (fed != n_fed || dj != n_deliv) { rc = -1; goto done; }
    /* which queue ids go through the exact loop */
    int64_t block_max = clock;
    if (!any_time) block_min = block_max;
    int all = crowded || (block_max - block_min > ttl);
    for (int64_t c = 0; c < n_codes; c++) {
        if (last_msgid[c] > first_deliv[c]) special[c] = 1;  /* a deferral keeps the message-id of its moment */
        if (has_carried[c] && (carried_left[c] || block_max - carried_seen[c] > ttl)) special[c] = 1;
        if (all) special[c] = 1;
        cur_sender[c] = has_carried[c] ? carried_sender[c] : -1;
        cur_mid[c] = has_carried[c] ? carried_mid[c] : -1;
        ep_sender[c] = ep_mid[c] = -1;
        ep_start[c] = 0;
        ep_max[c] = INT64_MIN;
        first_ep[c] = 1;
        last_removed[c] = want[c] = seen[c] = 0;
    }
    /* pass 2, the rest in line order: each delivery joins its queue id's latest from= and
       message-id= of the epoch (since the last `removed`; the first epoch: the entry from before) */
    for (int64_t i = 0; i < n; i++) {
        int k = kinds[i];
        if (k == K_FEED) { in_loop[i] = 1; continue; }
        int64_t c = codes[i];
        if (special[c]) { in_loop[i] = 1; continue; }
        in_loop[i] = 0;
        seen[c] = 1;
        if (k == K_REMOVED) {
            cur_sender[c] = cur_mid[c] = ep_sender[c] = ep_mid[c] = -1;
            first_ep[c] = 0;
            ep_start[c] = i + 1;
            ep_max[c] = INT64_MIN;
            removed_t[c] = ts[i];
            want[c] = 0;
            last_removed[c] = 1;
            continue;
        }
        last_removed[c] = 0;
        if (ts[i] > ep_max[c]) ep_max[c] = ts[i];
        if (k == K_DELIVERY) {
            int64_t j = aux[i];
            sender[j] = cur_sender[c];
            mid[j] = cur_mid[c];
            if (status[j] == deferred_code) want[c] = 1;
        } else if (k == K_FROM) {
            cur_sender[c] = ep_sender[c] = aux[i];
        } else {
            cur_mid[c] = ep_mid[c] = aux[i];
        }
    }
    /* the entry each queue id is left with, by code */
    int64_t nt = 0;
    for (int64_t c = 0; c < n_codes; c++) {
        if (!seen[c] || (last_removed[c] && !has_carried[c])) continue;
        t_code[nt] = c;
        if (last_removed[c]) {
            t_flags[nt] = J_REMOVED;
            t_top[nt] = removed_t[c];
            t_sender[nt] = t_mid[nt] = -1;
        } else {
            t_flags[nt] = (!first_ep[c] && has_carried[c]) ? J_REUSED : 0;
            t_top[nt] = ep_max[c];
            t_sender[nt] = ep_sender[c];
            t_mid[nt] = ep_mid[c];
            /* an entry carrying deferred recipients into its last epoch */
            if (first_ep[c] && has_carried[c] && carried_deferred[c]) want[c] = 2;
        }
        nt++;
    }
    counts[0] = nt;
    /* pass 3: each recipient's last delivery of the last epoch of the queue ids left with
       deferrals to keep or forget (by code and recipient: a hash table), in the order they came */
    int64_t cap = 16;
    while (cap < 2 * n_deliv) cap *= 2;
    int64_t *table = NULL, *first_j = NULL, *last_j = NULL, *ecode = NULL;
    int64_t ne = 0;
    for (int64_t i = 0; i < n && !table; i++)
        if (kinds[i] == K_DELIVERY && !in_loop[i] && want[codes[i]] && !last_removed[codes[i]] && i >= ep_start[codes[i]])
            table = malloc((size_t)cap * sizeof(int64_t) + 3 * (size_t)(n_deliv + 1) * sizeof(int64_t));
    if (table) {
        first_j = table + cap;
        last_j = first_j + n_deliv + 1;
        ecode = last_j + n_deliv + 1;
        for (int64_t s = 0; s < cap; s++) table[s] = -1;
        for (int64_t i = 0; i < n; i++) {
            if (kinds[i] != K_DELIVERY || in_loop[i]) continue;
            int64_t c = codes[i], j = aux[i];
            if (!want[c] || last_removed[c] || i < ep_start[c]) continue;
            const uint8_t *r = r_chars + r_off[j];
            int64_t rl = r_off[j + 1] - r_off[j];
            uint64_t s = recipient_hash(r, rl, c) & (uint64_t)(cap - 1);
            for (;;) {
                int64_t e = table[s];
                if (e < 0) {
                    table[s] = ne;
                    first_j[ne] = last_j[ne] = j;
                    ecode[ne++] = c;
                    break;
                }
                int64_t f = first_j[e];
                if (ecode[e] == c && r_off[f + 1] - r_off[f] == rl && memcmp(r_chars + r_off[f], r, (size_t)rl) == 0) {
                    last_j[e] = j;
                    break;
                }
                s = (s + 1) & (uint64_t)(cap - 1);
            }
        }
        /* kept: a deferral, or a final status that forgets one the entry from before holds; by
           code (a counting sort keeps each code's recipients in the order they came) */
        for (int64_t c = 0; c < n_codes; c++) n_of[c] = 0;
        for (int64_t e = 0; e < ne; e++) {
            int64_t value = status[last_j[e]] == deferred_code ? last_j[e] : -1;
            last_j[e] = value;
            if (value >= 0 || want[ecode[e]] == 2) n_of[ecode[e]]++;
            else ecode[e] = -1;
        }
        int64_t at = 0;
        for (int64_t c = 0; c < n_codes; c++) { slot[c] = at; at += n_of[c]; }
        for (int64_t e = 0; e < ne; e++) {
            int64_t c = ecode[e];
            if (c < 0) continue;
            int64_t o = slot[c]++;
            e_code[o] = c;
            e_first[o] = first_j[e];
            e_value[o] = last_j[e];
        }
        counts[1] = at;
        free(table);
    }
done:
    free(w);
    return rc;
}

/* Bumped whenever a signature above changes: pipeline/native refuses a library of another. */
int scanner_abi(void) { return 24; }
