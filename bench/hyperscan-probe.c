// A feasibility probe (issue #19, session 19): would Hyperscan, the multi-regex engine
// Rspamd uses, scan SpamAssassin's body rules faster than Gannet's prefilter and lazy
// DFAs? It compiles the rules of one kind and engine that `gannet-bench spam
// --dump-regexes FILE` wrote into one block-mode database (each rule alone first: the
// ones Hyperscan refuses are left out and counted), then scans each message from its
// first blank line (the body, undecoded: more bytes than the text body rules see) and
// prints the time per message over four passes. Not part of the build or the tests.
//
//   apt-get install libhyperscan-dev
//   gcc -O2 -o /tmp/hs-probe bench/hyperscan-probe.c $(pkg-config --cflags --libs libhs)
//   target/release/gannet-bench spam DIR --rules-dir /usr/share/spamassassin --runs 1
//       --dump-regexes /tmp/regexes.tsv       (one command line)
//   /tmp/hs-probe /tmp/regexes.tsv Body Octets DIR/ham/* DIR/spam/*
#include <hs/hs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static int hits;
static int on_match(unsigned id, unsigned long long from, unsigned long long to,
                    unsigned flags, void *ctx) {
    (void)id, (void)from, (void)to, (void)flags, (void)ctx;
    hits++;
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: %s REGEXES.tsv KIND ENGINE FILE...\n", argv[0]);
        return 2;
    }
    FILE *rules = fopen(argv[1], "r");
    if (!rules) { perror(argv[1]); return 1; }
    static char line[1 << 20];
    size_t cap = 16384;
    char **patterns = malloc(cap * sizeof *patterns);
    unsigned *ids = malloc(cap * sizeof *ids), *flags = malloc(cap * sizeof *flags);
    unsigned n = 0, refused = 0;
    while (n < cap && fgets(line, sizeof line, rules)) {
        line[strcspn(line, "\n")] = 0;
        char *kind = strtok(line, "\t"), *engine = strtok(NULL, "\t");
        char *name = strtok(NULL, "\t"), *rest = strtok(NULL, "");
        if (!kind || !engine || !name || !rest) continue;
        // flags may be empty: "\tPATTERN"
        char *tab = strchr(rest, '\t');
        const char *rule_flags = "";
        char *pattern = rest;
        if (tab && tab != rest) { *tab = 0; rule_flags = rest; pattern = tab + 1; }
        else if (tab) pattern = tab + 1;
        if (strcmp(kind, argv[2]) || strncmp(engine, argv[3], strlen(argv[3]))) continue;
        unsigned f = HS_FLAG_SINGLEMATCH | HS_FLAG_ALLOWEMPTY;
        if (strchr(rule_flags, 'i')) f |= HS_FLAG_CASELESS;
        if (strchr(rule_flags, 'm')) f |= HS_FLAG_MULTILINE;
        if (strchr(rule_flags, 's')) f |= HS_FLAG_DOTALL;
        char *p = malloc(strlen(pattern) + 8);
        sprintf(p, "%s%s", strchr(rule_flags, 'x') ? "(?x)" : "", pattern);
        hs_database_t *alone;
        hs_compile_error_t *err;
        if (hs_compile(p, f, HS_MODE_BLOCK, NULL, &alone, &err) != HS_SUCCESS) {
            fprintf(stderr, "refused %s: %s\n", name, err->message);
            hs_free_compile_error(err);
            free(p);
            refused++;
            continue;
        }
        hs_free_database(alone);
        patterns[n] = p, ids[n] = n, flags[n] = f, n++;
    }
    fprintf(stderr, "%u patterns, %u refused\n", n, refused);
    double t0 = now();
    hs_database_t *db;
    hs_compile_error_t *err;
    if (hs_compile_multi((const char *const *)patterns, flags, ids, n, HS_MODE_BLOCK, NULL,
                         &db, &err) != HS_SUCCESS) {
        fprintf(stderr, "compile: %s (pattern %d)\n", err->message, err->expression);
        return 1;
    }
    size_t size;
    hs_database_size(db, &size);
    fprintf(stderr, "compiled in %.2f s, %zu bytes\n", now() - t0, size);
    hs_scratch_t *scratch = NULL;
    hs_alloc_scratch(db, &scratch);
    int files = argc - 4;
    char **data = malloc(files * sizeof *data);
    size_t *len = malloc(files * sizeof *len), total = 0;
    for (int i = 0; i < files; i++) {
        FILE *m = fopen(argv[4 + i], "rb");
        if (!m) { perror(argv[4 + i]); return 1; }
        fseek(m, 0, SEEK_END);
        long l = ftell(m);
        fseek(m, 0, SEEK_SET);
        char *d = calloc(l + 1, 1);
        size_t got = fread(d, 1, l, m);
        fclose(m);
        char *body = strstr(d, "\n\n");
        size_t off = body ? (size_t)(body - d) : 0;
        data[i] = d + off, len[i] = got - off, total += len[i];
    }
    for (int pass = 1; pass <= 4; pass++) {
        hits = 0;
        double a = now();
        for (int i = 0; i < files; i++)
            hs_scan(db, data[i], len[i], 0, scratch, on_match, NULL);
        double b = now();
        fprintf(stderr, "pass %d: %d bodies, %.1f MB, %.3f s: %.1f us a message, %d matches\n",
                pass, files, total / 1e6, b - a, (b - a) * 1e6 / files, hits);
    }
    return 0;
}
