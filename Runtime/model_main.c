// main() of a compiled model executable (`tfc compile SPEC --weights W -o NAME`):
//
//   NAME --tokens 1,2,3 [-n 32] [--temperature T] [--top-k K] [--top-p P] [--seed S]
//   NAME --tokens 1,2,3 --logits OUT.npy
//   NAME --prompt "Once upon a time" [-n 64 ...]   (text in and out, with NAME.tokenizer)
//
// Generation mirrors `tfc generate` (prefill, then decoding against the KV cache; the same
// sampler and seed, so the same tokens); --logits mirrors `tfc run --logits`. Depends on the C
// library only. Compiled only into executables (`tfc compile` defines TFC_MODEL_MAIN).
#ifdef TFC_MODEL_MAIN
#define _GNU_SOURCE
#include "tfc_input_file.h"
#include "tfc_model.h"
#include "tfc_output_file.h"
#include "tfc_sampling.h"
#include "tfc_text_stream.h"
#include "tfc_tokenizer.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int tfc_model_host_check_cpu(const char *what, char *err);
const char *tfc_model_host_noncausal_message(void);

static const char *g_prog = "model";

static void fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void fail(const char *fmt, ...) {
    fprintf(stderr, "%s: error: ", g_prog);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void usage(FILE *out) {
    const tfc_model_info *info = tfc_model_describe();
    fprintf(out,
            "usage: %s --tokens 1,2,3 [-n N] [--temperature T] [--top-k K] [--top-p P] [--seed S]\n"
            "       %s --tokens 1,2,3 --logits OUT.npy\n"
            "       %s --prompt TEXT [-n N] ...   (text in and out, with the NAME.tokenizer tfc compile wrote)\n"
            "\n"
            "The TokenFormer model \"%s\" (vocab %lld, context %lld), compiled by tfc %s for %s.\n"
            "\n"
            "  --tokens IDS        the prompt: comma-separated token ids\n"
            "  --prompt TEXT       the prompt as text (prints the prompt, then the generated text as it comes)\n"
            "  --prompt-file F     the prompt, read from a UTF-8 text file\n"
            "  --tokenizer PATH    the tokenizer side file (default: the one tfc compile wrote next to this program)\n"
            "  -n, --count N       tokens to generate (default 16); stops early at the end token or the context\n"
            "  --temperature T     0 (default) is greedy; top-k and top-p apply when T > 0\n"
            "  --top-k K           keep the k most likely tokens (0: all)\n"
            "  --top-p P           keep the smallest set of tokens whose probability reaches p (1: all)\n"
            "  --seed S            random seed for sampling (default 0)\n"
            "  --logits OUT.npy    write the logits of every prompt row as float32 [T, vocab] instead of generating\n"
            "  --threads N         worker threads (default: TFC_NUM_THREADS, else all cores)\n"
            "  --weights PATH      the packed weights (default: %s next to this program)\n"
            "  --info              print what the program was compiled from and for\n"
            "  -h, --help          this help\n",
            g_prog, g_prog, g_prog, info->name, (long long)info->vocab, (long long)info->context, info->tfc_version,
            info->target_cpu, info->weights_file);
}

// How many of `n` logits are NaN or ±Inf (huge weights, or a computation that overflowed float32).
static int64_t count_nonfinite(const float *logits, int64_t n) {
    int64_t bad = 0;
    for (int64_t i = 0; i < n; i++) bad += !isfinite(logits[i]);
    return bad;
}

// Generation cannot sample from non-finite logits: stop with an error (as `tfc generate` does).
static void check_sampling(const float *logits, int64_t vocab, int64_t position, int printed) {
    int64_t bad = count_nonfinite(logits, vocab);
    if (!bad) return;
    if (printed) { printf("\n"); fflush(stdout); }
    fail("%lld of %lld logits at position %lld are not finite (NaN or Inf), so no token can be sampled: "
         "the weights hold huge or non-finite values, or the computation overflowed float32",
         (long long)bad, (long long)vocab, (long long)position);
}

// The value of option `name` at argv[*i + 1].
static const char *value(int argc, char **argv, int *i) {
    if (*i + 1 >= argc) fail("%s needs a value", argv[*i]);
    *i += 1;
    return argv[*i];
}

static long long parse_int(const char *opt, const char *text) {
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || end == text || *end) fail("%s: '%s' is not an integer", opt, text);
    return v;
}

static double parse_float(const char *opt, const char *text) {
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text || *end) fail("%s: '%s' is not a number", opt, text);
    return v;
}

// Parses "1,2,3" into a fresh array (the same checks and messages as tfc's --tokens).
static int32_t *parse_tokens(const char *text, int64_t *count, const tfc_model_info *info) {
    int64_t n = 1;
    for (const char *p = text; *p; p++) n += *p == ',';
    int32_t *ids = malloc((size_t)n * sizeof(int32_t));
    if (!ids) fail("out of memory");
    const char *p = text;
    int64_t k = 0;
    char item[64];
    for (;;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        while (len && (*p == ' ' || *p == '\t')) { p++; len--; }
        while (len && (p[len - 1] == ' ' || p[len - 1] == '\t')) len--;
        if (n == 1 && len == 0) fail("--tokens: the token list is empty; give comma-separated ids such as 1,2,3");
        snprintf(item, sizeof item, "%.*s", (int)(len < 60 ? len : 60), p);
        char *stop;
        errno = 0;
        long long id = strtoll(item, &stop, 10);
        if (len == 0 || errno || *stop) {
            fail("--tokens: '%s' (item %lld) is not an integer token id", item, (long long)k + 1);
        }
        if (id < 0 || id >= info->vocab) {
            fail("--tokens: token id %lld (item %lld) is outside the vocabulary 0..<%lld", id, (long long)k + 1, (long long)info->vocab);
        }
        ids[k++] = (int32_t)id;
        if (!end) break;
        p = end + 1;
    }
    if (k > info->context) {
        fail("--tokens: %lld tokens exceed the model's context of %lld", (long long)k, (long long)info->context);
    }
    *count = k;
    return ids;
}

// The whole file as a NUL-terminated string (its length in *length).
static char *read_file(const char *path, size_t *length) {
    // Checked before it is opened: a FIFO or a device would block or never end.
    char why[256];
    int fd = tfc_input_open(path, why, sizeof why);
    if (fd < 0) fail("--prompt-file: %s: cannot read file: %s", path, why);
    FILE *f = fdopen(fd, "rb");
    if (!f) fail("--prompt-file: %s: %s", path, strerror(errno));
    size_t cap = 4096, n = 0;
    char *text = malloc(cap);
    for (;;) {
        if (!text) fail("out of memory");
        n += fread(text + n, 1, cap - n - 1, f);
        if (n < cap - 1) break;
        cap *= 2;
        text = realloc(text, cap);
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) fail("--prompt-file: %s: cannot read the file (is it a directory?)", path);
    text[n] = 0;
    *length = n;
    return text;
}

// The ids of a text prompt (the same checks and messages as tfc's --prompt).
static int32_t *encode_prompt(tfc_tokenizer *tok, const char *option, const char *text, size_t length, int64_t *count,
                              const tfc_model_info *info) {
    int64_t n = tfc_tokenizer_encode(tok, text, length, NULL, 0);
    if (n < 0) fail("%s: %s", option, tfc_tokenizer_error(tok));
    if (n == 0) fail("%s: the prompt is empty (no tokens)", option);
    if (n > info->context) fail("%s: the prompt is %lld tokens, more than the model's context of %lld", option, (long long)n, (long long)info->context);
    int32_t *ids = malloc((size_t)n * sizeof(int32_t));
    if (!ids) fail("out of memory");
    tfc_tokenizer_encode(tok, text, length, ids, n);
    *count = n;
    return ids;
}

// float32 [rows, cols] as NumPy .npy version 1.0 (header padded to 64 bytes), written by the
// output policy (never over an input, a device or a FIFO in place, ...).
static int write_npy(const char *path, const float *data, int64_t rows, int64_t cols, const tfc_output_input *inputs,
                     int ninputs, char *err, size_t errlen) {
    char header[256];
    int len = snprintf(header, sizeof header, "{'descr': '<f4', 'fortran_order': False, 'shape': (%lld, %lld), }",
                       (long long)rows, (long long)cols);
    int total = 10 + len + 1;
    int pad = (64 - total % 64) % 64;
    for (int i = 0; i < pad; i++) header[len++] = ' ';
    header[len++] = '\n';
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(len & 0xff), (unsigned char)(len >> 8)};
    const void *parts[] = {pre, header, data};
    size_t sizes[] = {sizeof pre, (size_t)len, (size_t)(rows * cols) * sizeof(float)};
    return tfc_output_write("--logits", path, inputs, ninputs, parts, sizes, 3, err, errlen);
}

int main(int argc, char **argv) {
    const char *slash = strrchr(argv[0], '/');
    g_prog = slash ? slash + 1 : argv[0];
    const tfc_model_info *info = tfc_model_describe();

    const char *tokens_text = NULL, *logits_path = NULL, *weights = NULL;
    const char *prompt_text = NULL, *prompt_file = NULL, *tokenizer_path = NULL;
    long long count = 16, top_k = 0, threads = -1;  // -1: not given
    double temperature = 0, top_p = 1;
    unsigned long long seed = 0;
    int show_info = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout); return 0; }
        else if (!strcmp(a, "--info")) show_info = 1;
        else if (!strcmp(a, "--tokens")) tokens_text = value(argc, argv, &i);
        else if (!strcmp(a, "-n") || !strcmp(a, "--count")) count = parse_int(a, value(argc, argv, &i));
        else if (!strcmp(a, "--temperature")) temperature = parse_float(a, value(argc, argv, &i));
        else if (!strcmp(a, "--top-k")) top_k = parse_int(a, value(argc, argv, &i));
        else if (!strcmp(a, "--top-p")) top_p = parse_float(a, value(argc, argv, &i));
        else if (!strcmp(a, "--seed")) {
            const char *s = value(argc, argv, &i);
            char *end;
            errno = 0;
            seed = strtoull(s, &end, 10);
            if (errno || end == s || *end || s[0] == '-') fail("--seed: '%s' is not a non-negative integer", s);
        }
        else if (!strcmp(a, "--prompt")) prompt_text = value(argc, argv, &i);
        else if (!strcmp(a, "--prompt-file")) prompt_file = value(argc, argv, &i);
        else if (!strcmp(a, "--tokenizer")) tokenizer_path = value(argc, argv, &i);
        else if (!strcmp(a, "--logits")) logits_path = value(argc, argv, &i);
        else if (!strcmp(a, "--weights")) weights = value(argc, argv, &i);
        else if (!strcmp(a, "--threads")) threads = parse_int(a, value(argc, argv, &i));
        else fail("unknown option '%s' (see %s --help)", a, g_prog);
    }

    char err[1024];
    if (tfc_model_host_check_cpu("this program", err) != 0) fail("%s", err);
    if (show_info) {
        printf("model %s: vocab %lld, hidden %lld, context %lld, end token %lld\n", info->name, (long long)info->vocab,
               (long long)info->hidden, (long long)info->context, (long long)info->end_token);
        printf("spec hash %s\ncompiled by tfc %s for %s (%s)\nweights %s (%s)\nKV cache %s\n", info->spec_hash, info->tfc_version,
               info->target_cpu, info->cpu_features[0] ? info->cpu_features : "baseline", info->weights_file,
               info->weights_format ? info->weights_format : "unknown format", info->kv_format);
        return 0;
    }
    // Generation decodes against the KV cache, which only a causal model allows.
    if (!logits_path && tfc_model_host_noncausal_message()) fail("%s", tfc_model_host_noncausal_message());
    int prompts = (tokens_text != NULL) + (prompt_text != NULL) + (prompt_file != NULL);
    if (prompts == 0) fail("--tokens is required, or --prompt TEXT or --prompt-file FILE (see %s --help)", g_prog);
    if (prompts > 1) fail("give only one of --tokens, --prompt, --prompt-file");
    if (count < 1) fail("-n must be at least 1, got %lld", count);
    if (!(temperature >= 0)) fail("--temperature must be 0 or more, got %g", temperature);
    if (top_k < 0) fail("--top-k must be 0 or more, got %lld", top_k);
    if (!(top_p > 0 && top_p <= 1)) fail("--top-p must be in (0, 1], got %g", top_p);
    if (threads != -1 && threads < 1) fail("--threads must be at least 1, got %lld", threads);
    int64_t n = 0;
    int32_t *prompt = NULL;
    tfc_tokenizer *tokenizer = NULL;  // text mode: a text prompt gives text out
    if (tokens_text) {
        prompt = parse_tokens(tokens_text, &n, info);
    } else {
        tokenizer = tfc_model_tokenizer_open(tokenizer_path);
        if (!tokenizer) {
            fprintf(stderr, "%s: %s\n", g_prog, tfc_tokenizer_error(NULL));
            exit(1);
        }
        size_t length = 0;
        char *text = prompt_text ? NULL : read_file(prompt_file, &length);
        prompt = encode_prompt(tokenizer, prompt_text ? "--prompt" : "--prompt-file", prompt_text ? prompt_text : text,
                               prompt_text ? strlen(prompt_text) : length, &n, info);
        free(text);
    }
    if (threads > 0) tfc_model_set_threads((int)threads);

    char exe_weights[4096];
    if (!weights) {
        // Next to this executable.
        ssize_t len = readlink("/proc/self/exe", exe_weights, sizeof exe_weights - 1);
        if (len > 0) {
            exe_weights[len] = 0;
            char *s = strrchr(exe_weights, '/');
            size_t dir = s ? (size_t)(s - exe_weights) + 1 : 0;
            snprintf(exe_weights + dir, sizeof exe_weights - dir, "%s", info->weights_file);
            weights = exe_weights;
        }
    }
    // The inputs an output must not replace: the weights and this program.
    char self_path[4096];
    ssize_t self_len = readlink("/proc/self/exe", self_path, sizeof self_path - 1);
    self_path[self_len > 0 ? self_len : 0] = 0;
    tfc_output_input inputs[3] = {{"weights file", weights}, {"program", self_len > 0 ? self_path : argv[0]}};
    int ninputs = 2;
    if (prompt_file) inputs[ninputs++] = (tfc_output_input){"prompt file", prompt_file};
    // Checked before the (long) evaluation; written by the same rules afterwards.
    if (logits_path && tfc_output_check("--logits", logits_path, inputs, ninputs, err, sizeof err) != 0) fail("%s", err);
    double t0 = now();
    tfc_model *m = tfc_model_create(weights);
    if (!m) fail("%s", tfc_model_error(NULL));
    double load_seconds = now() - t0;
    const int64_t vocab = info->vocab;

    if (logits_path) {
        float *logits = malloc((size_t)(n * vocab) * sizeof(float));
        if (!logits) fail("out of memory");
        double start = now();
        if (tfc_model_eval(m, prompt, n, logits) != 0) fail("%s", tfc_model_error(m));
        double seconds = now() - start;
        int64_t bad = count_nonfinite(logits, n * vocab);
        if (bad) {
            fprintf(stderr, "%s: warning: %lld of %lld logits are not finite (NaN or Inf): the weights hold huge or non-finite values, "
                    "or the computation overflowed float32\n", g_prog, (long long)bad, (long long)(n * vocab));
        }
        if (write_npy(logits_path, logits, n, vocab, inputs, ninputs, err, sizeof err) != 0) fail("%s", err);
        const float *last = logits + (n - 1) * vocab;
        printf("next-token top 5 after %lld tokens (compiled %s):\n", (long long)n, info->name);
        int32_t top[5];
        int k = 0;
        for (; k < 5 && k < vocab; k++) {
            int32_t best = -1;
            for (int32_t j = 0; j < vocab; j++) {
                int taken = 0;
                for (int q = 0; q < k; q++) taken |= top[q] == j;
                if (!taken && (best < 0 || last[j] > last[best])) best = j;
            }
            top[k] = best;
            printf("  %d. token %d  logit %.4f\n", k + 1, best, last[best]);
        }
        printf("load %.3f s, run %.3f s (%lld tokens, %.1f tokens/s)\n", load_seconds, seconds, (long long)n, (double)n / seconds);
        printf("logits [%lld, %lld] written to %s\n", (long long)n, (long long)vocab, logits_path);
        free(logits);
        tfc_model_destroy(m);
        free(prompt);
        tfc_tokenizer_close(tokenizer);
        return 0;
    }

    float *logits = malloc((size_t)vocab * sizeof(float));
    void *scratch = malloc(tfc_sample_scratch_size((int32_t)vocab));
    if (!logits || !scratch) fail("out of memory");
    uint64_t state = seed;
    int32_t end_token = info->end_token >= 0 ? (int32_t)info->end_token : -1;
    // Text mode: the end token is the spec's, else the tokenizer's <|endoftext|> (as tfc generate).
    if (tokenizer && end_token < 0) end_token = tfc_tokenizer_end_of_text(tokenizer);
    tfc_text_stream text_out;
    if (tokenizer) {
        tfc_text_stream_init(&text_out, tokenizer, stdout);
        for (int64_t i = 0; i < n; i++) if (tfc_text_stream_token(&text_out, prompt[i])) fail("cannot write the output: %s", strerror(errno));
    }

    double start = now();
    if (tfc_model_eval_last(m, prompt, n, logits) != 0) fail("%s", tfc_model_error(m));
    double prefill_seconds = now() - start;
    check_sampling(logits, vocab, n - 1, 0);
    int32_t next = tfc_sample_with_scratch(logits, (int32_t)vocab, (float)temperature, (int32_t)top_k, (float)top_p, &state, scratch);
    long long generated = 1;
    if (tokenizer) {
        if (next != end_token && tfc_text_stream_token(&text_out, next)) fail("cannot write the output: %s", strerror(errno));
    } else {
    printf("%d", next);
    fflush(stdout);
    }
    char reason[128];
    snprintf(reason, sizeof reason, "generated %lld tokens", count);
    double decode_start = now();
    while (generated < count) {
        if (next == end_token) { snprintf(reason, sizeof reason, "end token %d", next); break; }
        if (tfc_model_position(m) >= info->context) {
            snprintf(reason, sizeof reason, "reached the context length (%lld tokens)", (long long)info->context);
            break;
        }
        if (tfc_model_decode(m, next, logits) != 0) fail("%s", tfc_model_error(m));
        check_sampling(logits, vocab, tfc_model_position(m) - 1, 1);
        next = tfc_sample_with_scratch(logits, (int32_t)vocab, (float)temperature, (int32_t)top_k, (float)top_p, &state, scratch);
        generated++;
        if (tokenizer) {
            if (next != end_token && tfc_text_stream_token(&text_out, next)) fail("cannot write the output: %s", strerror(errno));
            continue;
        }
        printf(",%d", next);
        fflush(stdout);
    }
    if (generated == count && next == end_token) snprintf(reason, sizeof reason, "end token %d", next);
    double decode_seconds = now() - decode_start;
    if (tokenizer) {
        if (tfc_text_stream_finish(&text_out)) fail("cannot write the output: %s", strerror(errno));
    } else {
    printf("\n");
    fflush(stdout);
    }
    fprintf(stderr, "%s; prefill %lld tokens at %.1f tokens/s, time to first token %.3f s", reason, (long long)n,
            (double)n / prefill_seconds, prefill_seconds);
    if (generated > 1) fprintf(stderr, ", decode %.1f tokens/s", (double)(generated - 1) / decode_seconds);
    fprintf(stderr, ", load %.3f s\n", load_seconds);
    free(logits);
    free(scratch);
    free(prompt);
    tfc_tokenizer_close(tokenizer);
    tfc_model_destroy(m);
    return 0;
}

#else
typedef int tfc_model_main_is_compiled_into_compiled_executables_only;
#endif
