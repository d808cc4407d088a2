// The model host: the C API of a compiled model (include/tfc_model.h) over the program and
// description `tfc compile` generates (model_desc.h). Generic: every model-specific number
// comes from the description, so this file is the same for every model.
//
// Compiled only into compiled models (`tfc compile` defines TFC_MODEL_HOST); in the TFRuntime
// target that tfc itself links it is empty.
#ifdef TFC_MODEL_HOST
#define _GNU_SOURCE
#include "tfc_model.h"
#include "model_desc.h"
#include "error_text.h"
#include "tfc_threadpool.h"
#include "tfc_input_file.h"
#include "tfc_tokenizer.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#define ERROR_BYTES 1024

struct tfc_model {
    void **table;            // one pointer per slot
    uint8_t *arena;          // activations, scratch, KV caches (zeroed, anonymous)
    size_t arena_bytes;
    uint8_t *weights;        // the mapped weights file
    size_t weights_bytes;
    int weights_copied;      // read into anonymous memory instead of mapped
    int32_t *tokens;         // [context]
    float *rows;             // [context, vocab] when forward_last writes every row (rare)
    int64_t logits_slot;     // -1 if the program has none
    int64_t position;
    char error[ERROR_BYTES];
};

static __thread char t_create_error[ERROR_BYTES];

static const tfc_model_info g_info = {
    TFC_MODEL_API_VERSION, tfc_aot_name,
    0, 0, 0, 0,  // filled in by tfc_model_describe, with the running variant's target
    tfc_aot_spec_hash, NULL, NULL, tfc_aot_weights_file, tfc_aot_tfc_version,
};

static const tfc_aot_variant *variant(void);

static const char *weights_format_name(uint64_t format);

const tfc_model_info *tfc_model_describe(void) {
    static tfc_model_info info;
    static int ready = 0;
    if (!ready) {
        const tfc_aot_variant *v = variant();
        info = g_info;
        info.vocab = v->info[TFC_AOT_VOCAB];
        info.hidden = v->info[TFC_AOT_HIDDEN];
        info.context = v->info[TFC_AOT_CONTEXT];
        info.end_token = v->info[TFC_AOT_END_TOKEN];
        info.target_cpu = v->target_label;
        info.cpu_features = v->cpu_features;
        info.weights_format = weights_format_name((uint64_t)v->info[TFC_AOT_WEIGHTS_FORMAT]);
        info.kv_format = v->info[TFC_AOT_KV_FORMAT] ? "bf16" : "f32";
        ready = 1;
    }
    return &info;
}

#define set_error(buf, ...) (void)tfc_error_text(0, buf, ERROR_BYTES, __VA_ARGS__)

// ---- CPU features ------------------------------------------------------------------------

typedef struct { const char *name; int present; } cpu_feature;

// The features compiled code may depend on, by LLVM's names, read with CPUID (and XGETBV for
// whether the OS saves the AVX / AVX-512 registers).
static int cpu_features(cpu_feature *out, int max) {
    int n = 0;
#if defined(__x86_64__) || defined(__i386__)
    unsigned a, b, c, d;
    unsigned c1 = 0, b7 = 0, c7 = 0, a71 = 0, cx = 0;
    if (__get_cpuid(1, &a, &b, &c, &d)) c1 = c;
    if (__get_cpuid_max(0, NULL) >= 7) {
        __cpuid_count(7, 0, a, b, c, d);
        b7 = b;
        c7 = c;
        if (a >= 1) { __cpuid_count(7, 1, a, b, c, d); a71 = a; }
    }
    if (__get_cpuid(0x80000001, &a, &b, &c, &d)) cx = c;
    unsigned long long xcr0 = 0;
    if (c1 & (1u << 27)) {  // OSXSAVE
        unsigned lo, hi;
        __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
        xcr0 = ((unsigned long long)hi << 32) | lo;
    }
    int avx_os = (xcr0 & 0x6) == 0x6, avx512_os = (xcr0 & 0xe6) == 0xe6;
#define F(nm, cond) if (n < max) { out[n].name = nm; out[n].present = (cond) ? 1 : 0; n++; }
    F("sse3", c1 & (1u << 0)) F("ssse3", c1 & (1u << 9)) F("sse4.1", c1 & (1u << 19)) F("sse4.2", c1 & (1u << 20))
    F("cx16", c1 & (1u << 13)) F("popcnt", c1 & (1u << 23)) F("movbe", c1 & (1u << 22))
    F("avx", avx_os && (c1 & (1u << 28))) F("fma", avx_os && (c1 & (1u << 12))) F("f16c", avx_os && (c1 & (1u << 29)))
    F("avx2", avx_os && (b7 & (1u << 5))) F("bmi", b7 & (1u << 3)) F("bmi2", b7 & (1u << 8)) F("lzcnt", cx & (1u << 5))
    F("avx512f", avx512_os && (b7 & (1u << 16))) F("avx512dq", avx512_os && (b7 & (1u << 17)))
    F("avx512cd", avx512_os && (b7 & (1u << 28))) F("avx512bw", avx512_os && (b7 & (1u << 30)))
    F("avx512vl", avx512_os && (b7 & (1u << 31))) F("avx512bf16", avx512_os && (a71 & (1u << 5)))
    F("avx512vnni", avx512_os && (c7 & (1u << 11)))
#undef F
#endif
    return n;
}

// Writes the features of `v` this CPU lacks into `lacking` ("" when it has them all).
// The environment variable TFC_CPU_PRETEND_LACKING=avx2,fma marks features missing (tests).
static void lacking_features(const tfc_aot_variant *v, char *lacking, size_t size) {
    cpu_feature have[32];
    int n = cpu_features(have, 32);
    const char *pretend = getenv("TFC_CPU_PRETEND_LACKING");
    lacking[0] = 0;
    const char *p = v->cpu_features;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char name[32];
        if (len > 0 && len < sizeof name) {
            memcpy(name, p, len);
            name[len] = 0;
            int present = 1;  // features this host does not know how to test are assumed
            for (int i = 0; i < n; i++) if (strcmp(have[i].name, name) == 0) present = have[i].present;
            for (const char *q = pretend; q && *q;) {
                const char *qe = strchr(q, ',');
                size_t ql = qe ? (size_t)(qe - q) : strlen(q);
                if (ql == len && memcmp(q, name, len) == 0) present = 0;
                q = qe ? qe + 1 : NULL;
            }
            if (!present) {
                size_t used = strlen(lacking);
                snprintf(lacking + used, size - used, "%s%s", used ? ", " : "", name);
            }
        }
        if (!end) break;
        p = end + 1;
    }
}

// The program variant this process runs: the first whose features this CPU has (chosen once),
// else the last (check_cpu then refuses to run it).
static const tfc_aot_variant *g_variant;
static const tfc_aot_variant *variant(void) {
    if (g_variant) return g_variant;
    const tfc_aot_variant *chosen = &tfc_aot_variants[tfc_aot_variant_count - 1];
    for (int i = 0; i < tfc_aot_variant_count; i++) {
        char lacking[256];
        lacking_features(&tfc_aot_variants[i], lacking, sizeof lacking);
        if (!lacking[0]) { chosen = &tfc_aot_variants[i]; break; }
    }
    g_variant = chosen;
    return chosen;
}

// Checks that this CPU runs some variant; if none, writes "... built for TARGET (FEATURES) but
// this CPU lacks X, Y" (of the last, most widely runnable variant) after `what` ("this program",
// "this library").
static int check_cpu(const char *what, char *err) {
    const tfc_aot_variant *v = variant();
    char lacking[256];
    lacking_features(v, lacking, sizeof lacking);
    if (!lacking[0]) return 0;
    char features[512] = "";
    for (const char *q = v->cpu_features; *q && strlen(features) + 2 < sizeof features; q++) {
        size_t used = strlen(features);
        if (*q == ',') snprintf(features + used, sizeof features - used, ", ");
        else { features[used] = *q; features[used + 1] = 0; }
    }
    set_error(err, "%s was built for %s (%s) but this CPU lacks %s", what, v->target_label, features, lacking);
    return -1;
}

// ---- Instances ---------------------------------------------------------------------------

static void *map_zeroed(size_t bytes) {
    if (bytes == 0) bytes = 64;
    size_t huge = (size_t)2 << 20;
    if (bytes >= huge) bytes = (bytes + huge - 1) & ~(huge - 1);
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
#ifdef MADV_HUGEPAGE
    if (bytes >= huge) madvise(p, bytes, MADV_HUGEPAGE);
#endif
    // Fault the pages in now (as huge pages where the kernel gives them), not in the first
    // forward pass.
    for (size_t i = 0; i < bytes; i += 4096) ((volatile uint8_t *)p)[i] = 0;
    return p;
}

static size_t mapped_size(size_t bytes) {
    if (bytes == 0) return 64;
    size_t huge = (size_t)2 << 20;
    return bytes >= huge ? (bytes + huge - 1) & ~(huge - 1) : bytes;
}

// ---- Weights -----------------------------------------------------------------------------

// The name --weights-format gives a TFC_WEIGHTS_FORMAT_* value.
static const char *weights_format_name(uint64_t format) {
    switch (format) {
    case TFC_WEIGHTS_FORMAT_F32: return "f32";
    case TFC_WEIGHTS_FORMAT_BF16: return "bf16";
    case TFC_WEIGHTS_FORMAT_INT8: return "int8";
    default: return NULL;
    }
}

static int looks_like_safetensors(const uint8_t *h, size_t n) {
    if (n < 9) return 0;
    uint64_t len = 0;
    for (int i = 7; i >= 0; i--) len = len << 8 | h[i];
    return len > 1 && len < ((uint64_t)1 << 32) && h[8] == '{';
}

// Maps PATH and checks it belongs to this program. 0, or -1 with the reason in err.
static int map_weights(tfc_model *m, const char *path, char *err) {
    // Checked before opening: a FIFO or a device as --weights would block or never end.
    char why[256];
    int fd = tfc_input_open(path, why, sizeof why);
    if (fd < 0) {
        if (strncmp(why, "no such file", 12) == 0)
            set_error(err, "%s: no such weights file (tfc compile writes %s next to the program; give its path)", path, tfc_aot_weights_file);
        else
            set_error(err, "%s: cannot read the weights file: %s", path, why);
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        set_error(err, "%s: cannot read the weights file: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    tfc_weights_header h;
    memset(&h, 0, sizeof h);
    ssize_t got = pread(fd, &h, sizeof h, 0);
    if (got < 8 || memcmp(h.magic, TFC_WEIGHTS_MAGIC, 8) != 0) {
        if (got > 0 && looks_like_safetensors((const uint8_t *)&h, (size_t)got))
            set_error(err, "%s: is a safetensors file, not the packed weights of a compiled model: give the %s that tfc compile wrote (or recompile with tfc compile --weights %s)",
                      path, tfc_aot_weights_file, path);
        else
            set_error(err, "%s: not a tfc weights file (expected the %s that tfc compile wrote)", path, tfc_aot_weights_file);
        close(fd);
        return -1;
    }
    int rc = -1;
    uint64_t expect_bytes = (uint64_t)variant()->info[TFC_AOT_WEIGHTS_BYTES];
    char file_hash[65], file_name[65];
    memcpy(file_hash, h.spec_hash, 64); file_hash[64] = 0;
    memcpy(file_name, h.name, 64); file_name[64] = 0;
    if (got < (ssize_t)sizeof h) {
        set_error(err, "%s: truncated weights file (%lld bytes)", path, (long long)st.st_size);
    } else if (h.version != TFC_WEIGHTS_VERSION) {
        set_error(err, "%s: weights file format version %u, this program reads version %d: re-run tfc compile", path, h.version, TFC_WEIGHTS_VERSION);
    } else if ((int64_t)h.weights_format != variant()->info[TFC_AOT_WEIGHTS_FORMAT]) {
        const char *have = weights_format_name(h.weights_format), *want = weights_format_name((uint64_t)variant()->info[TFC_AOT_WEIGHTS_FORMAT]);
        if (have)
            set_error(err, "%s: holds %s weights; this program was compiled for %s (tfc compile --weights-format %s): give the weights file written with it, or recompile",
                      path, have, want, want);
        else
            set_error(err, "%s: unknown weights format %u (damaged?); this program was compiled for %s: re-run tfc compile", path, h.weights_format, want);
    } else if (strcmp(file_hash, tfc_aot_spec_hash) != 0) {
        set_error(err, "%s: was written for a different spec (model \"%s\", spec hash %s) than this program was compiled from (model \"%s\", spec hash %s): "
                  "the spec changed since compiling; re-run tfc compile to write the program and its weights together",
                  path, file_name, file_hash, tfc_aot_name, tfc_aot_spec_hash);
    } else if (h.layout_hash != (uint64_t)variant()->info[TFC_AOT_LAYOUT_HASH] || h.file_bytes != expect_bytes) {
        set_error(err, "%s: its weight layout does not match this program's (written by another tfc compile?): re-run tfc compile", path);
    } else if ((uint64_t)st.st_size != expect_bytes) {
        set_error(err, "%s: truncated or damaged: %lld bytes, expected %llu", path, (long long)st.st_size, (unsigned long long)expect_bytes);
    } else {
        const char *mode = getenv("TFC_WEIGHTS_LOAD");
        if (mode && strcmp(mode, "copy") == 0) {
            // Anonymous memory with transparent huge pages (as tfc's JIT path packs into).
            uint8_t *p = map_zeroed(expect_bytes);
            size_t done = 0;
            while (p && done < expect_bytes) {
                ssize_t n = pread(fd, p + done, expect_bytes - done > (1u << 30) ? (1u << 30) : expect_bytes - done, (off_t)done);
                if (n <= 0) break;
                done += (size_t)n;
            }
            if (!p || done < expect_bytes) {
                set_error(err, "%s: cannot read the weights file: %s", path, p ? strerror(errno) : "out of memory");
                if (p) munmap(p, mapped_size(expect_bytes));
            } else {
                m->weights = p;
                m->weights_bytes = expect_bytes;
                m->weights_copied = 1;
                rc = 0;
            }
        } else {
        // Pre-faulted (MAP_POPULATE) unless TFC_WEIGHTS_LOAD=lazy: page faults would otherwise
        // land in the first forward pass (the time to first token).
        int lazy = mode && strcmp(mode, "lazy") == 0;
        void *p = mmap(NULL, expect_bytes, PROT_READ, MAP_PRIVATE | (lazy ? 0 : MAP_POPULATE), fd, 0);
        if (p == MAP_FAILED) {
            set_error(err, "%s: cannot map the weights file: %s", path, strerror(errno));
        } else {
            if (lazy) madvise(p, expect_bytes, MADV_WILLNEED);
            m->weights = p;
            m->weights_bytes = expect_bytes;
            rc = 0;
        }
        }
    }
    close(fd);
    return rc;
}

// The directory of the library (or executable) this code is in, with a trailing '/'; "" if unknown.
static void own_directory(char *out, size_t n) {
    out[0] = 0;
    Dl_info info;
    const char *file = NULL;
    char exe[4096];
    if (dladdr((void *)tfc_model_create, &info) && info.dli_fname && strchr(info.dli_fname, '/')) {
        file = info.dli_fname;
    } else {
        ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (len > 0) { exe[len] = 0; file = exe; }
    }
    if (!file) return;
    const char *slash = strrchr(file, '/');
    size_t len = (size_t)(slash - file) + 1;
    if (len >= n) return;
    memcpy(out, file, len);
    out[len] = 0;
}

void tfc_model_destroy(tfc_model *m) {
    if (!m) return;
    if (m->weights) munmap(m->weights, m->weights_copied ? mapped_size(m->weights_bytes) : m->weights_bytes);
    if (m->arena) munmap(m->arena, mapped_size(m->arena_bytes));
    free(m->table);
    free(m->tokens);
    free(m->rows);
    free(m);
}

tfc_model *tfc_model_create(const char *weights_path) {
    t_create_error[0] = 0;
    if (variant()->info[TFC_AOT_FORMAT] != TFC_AOT_FORMAT_VERSION) {
        set_error(t_create_error, "the model description has format %lld, this host reads %d", (long long)variant()->info[TFC_AOT_FORMAT], TFC_AOT_FORMAT_VERSION);
        return NULL;
    }
    if (check_cpu("this library", t_create_error) != 0) return NULL;
    char path[4096];
    if (!weights_path || !weights_path[0]) {
        own_directory(path, sizeof path);
        size_t used = strlen(path);
        snprintf(path + used, sizeof path - used, "%s", tfc_aot_weights_file);
        weights_path = path;
    }
    tfc_model *m = calloc(1, sizeof *m);
    if (!m) { set_error(t_create_error, "out of memory"); return NULL; }
    const int64_t slots = variant()->info[TFC_AOT_SLOT_COUNT];
    const int64_t context = variant()->info[TFC_AOT_CONTEXT];
    m->logits_slot = -1;
    m->arena_bytes = (size_t)variant()->info[TFC_AOT_ARENA_BYTES];
    m->table = calloc((size_t)(slots > 0 ? slots : 1), sizeof(void *));
    m->tokens = calloc((size_t)context, sizeof(int32_t));
    m->arena = map_zeroed(m->arena_bytes);
    if (!m->table || !m->tokens || !m->arena) {
        set_error(t_create_error, "out of memory (%lld bytes of activations and KV cache)", (long long)m->arena_bytes);
        if (m->arena) { munmap(m->arena, mapped_size(m->arena_bytes)); m->arena = NULL; }
        tfc_model_destroy(m);
        return NULL;
    }
    if (map_weights(m, weights_path, t_create_error) != 0) {
        tfc_model_destroy(m);
        return NULL;
    }
    for (int64_t i = 0; i < slots; i++) {
        const int64_t *s = variant()->slots + i * TFC_AOT_SLOT_FIELDS;
        switch (s[TFC_SLOT_KIND]) {
        case TFC_SLOT_WEIGHT: m->table[i] = m->weights + s[TFC_SLOT_OFFSET]; break;
        case TFC_SLOT_ARENA: m->table[i] = m->arena + s[TFC_SLOT_OFFSET]; break;
        case TFC_SLOT_TOKENS: m->table[i] = m->tokens; break;
        case TFC_SLOT_LOGITS: m->logits_slot = i; break;
        default:
            set_error(t_create_error, "slot %lld has unknown kind %lld", (long long)i, (long long)s[TFC_SLOT_KIND]);
            tfc_model_destroy(m);
            return NULL;
        }
    }
    return m;
}

const char *tfc_model_error(const tfc_model *m) { return m ? m->error : t_create_error; }

int64_t tfc_model_position(const tfc_model *m) { return m ? m->position : 0; }

void tfc_model_reset(tfc_model *m) {
    if (m) { m->position = 0; m->error[0] = 0; }
}

void tfc_model_set_threads(int n) { tfc_set_num_threads(n); }

// Why this model cannot continue from cached tokens (a non-causal model), or NULL when it can.
const char *tfc_model_host_noncausal_message(void);
const char *tfc_model_host_noncausal_message(void) {
    if (variant()->info[TFC_AOT_INCREMENTAL]) return NULL;
    return "this model has non-causal attention (causal: false): it cannot continue from cached tokens (decoding), "
           "whose earlier rows would see the new ones; reset it and evaluate whole sequences (--logits)";
}

static int run(tfc_model *m, const int32_t *tokens, int64_t count, float *logits, int last_only) {
    if (!m) return -1;
    m->error[0] = 0;
    const int64_t vocab = variant()->info[TFC_AOT_VOCAB], context = variant()->info[TFC_AOT_CONTEXT];
    if (!tokens || !logits) { set_error(m->error, "tokens and logits must not be NULL"); return -1; }
    if (count < 1) { set_error(m->error, "the token count must be at least 1, got %lld", (long long)count); return -1; }
    if (count > context - m->position) {
        set_error(m->error, "%lld tokens do not fit the context of %lld (%lld already cached): reset the model",
                  (long long)count, (long long)context, (long long)m->position);
        return -1;
    }
    for (int64_t i = 0; i < count; i++) {
        if (tokens[i] < 0 || tokens[i] >= vocab) {
            set_error(m->error, "token id %d (item %lld) is outside the vocabulary 0..<%lld", tokens[i], (long long)i + 1, (long long)vocab);
            return -1;
        }
    }
    if (m->position > 0 && !variant()->info[TFC_AOT_INCREMENTAL]) {
        set_error(m->error, "%s", tfc_model_host_noncausal_message());
        return -1;
    }
    memcpy(m->tokens, tokens, (size_t)count * sizeof(int32_t));
    if (last_only && !variant()->info[TFC_AOT_LAST_ROW_ONLY] && count > 1) {
        // This program's forward_last writes every row: run it into an internal buffer.
        if (!m->rows && !(m->rows = malloc((size_t)context * (size_t)vocab * sizeof(float)))) {
            set_error(m->error, "out of memory");
            return -1;
        }
        if (m->logits_slot >= 0) m->table[m->logits_slot] = m->rows;
        variant()->forward_last((void *const *)m->table, count, m->position);
        memcpy(logits, m->rows + (count - 1) * vocab, (size_t)vocab * sizeof(float));
    } else {
        if (m->logits_slot >= 0) m->table[m->logits_slot] = logits;
        if (last_only) variant()->forward_last((void *const *)m->table, count, m->position);
        else variant()->forward((void *const *)m->table, count, m->position);
    }
    m->position += count;
    return 0;
}

int tfc_model_eval(tfc_model *m, const int32_t *tokens, int64_t count, float *logits) {
    return run(m, tokens, count, logits, 0);
}

int tfc_model_eval_last(tfc_model *m, const int32_t *tokens, int64_t count, float *logits) {
    return run(m, tokens, count, logits, 1);
}

int tfc_model_decode(tfc_model *m, int32_t token, float *logits) {
    return run(m, &token, 1, logits, 1);
}

// The model's tokenizer: NAME.tokenizer (the weights file's name with .tokenizer for .weights)
// next to the library or executable, unless a path is given; its ids must fit the vocabulary.
void tfc_tokenizer_set_open_error(const char *message);  // tokenizer.c: what tfc_tokenizer_error(NULL) says

tfc_tokenizer *tfc_model_tokenizer_open(const char *path) {
    char own[4096];
    if (!path || !path[0]) {
        own_directory(own, sizeof own);
        size_t used = strlen(own), stem = strlen(tfc_aot_weights_file);
        if (stem > 8 && !strcmp(tfc_aot_weights_file + stem - 8, ".weights")) stem -= 8;
        snprintf(own + used, sizeof own - used, "%.*s.tokenizer", (int)stem, tfc_aot_weights_file);
        path = own;
    }
    tfc_tokenizer *t = tfc_tokenizer_open(path);
    if (t && tfc_tokenizer_vocab(t) > variant()->info[TFC_AOT_VOCAB]) {
        char why[1024];
        snprintf(why, sizeof why, "%s: error: the tokenizer has ids up to %lld, outside the model's vocabulary 0..<%lld", path,
                 (long long)tfc_tokenizer_vocab(t) - 1, (long long)variant()->info[TFC_AOT_VOCAB]);
        tfc_tokenizer_close(t);
        tfc_tokenizer_set_open_error(why);
        return NULL;
    }
    return t;
}

// For the executable's main (model_main.c): the CPU check with its own wording.
int tfc_model_host_check_cpu(const char *what, char *err);
int tfc_model_host_check_cpu(const char *what, char *err) { return check_cpu(what, err); }

#else
typedef int tfc_model_host_is_compiled_into_compiled_models_only;
#endif
