/*
 * insn_count: a QEMU TCG plugin that counts how often each guest instruction
 * runs, for boards/qemu/insn_profile.py.
 *
 * Under QEMU a firmware's own work is hidden among the emulator's: a host
 * profiler sees translated code as anonymous memory. This plugin counts, per
 * translation block, how many times it ran (an inline counter, no callback),
 * and at exit writes one line per block: its execution count and the guest
 * address of each of its instructions. insn_profile.py turns that into
 * instructions per function, inlined functions included.
 *
 * Written against QEMU's plugin API version 1 (QEMU 4.2 to 7.2; newer
 * versions still load version-1 plugins). Only the handful of declarations
 * used are repeated here, so no QEMU headers are needed:
 *
 *     cc -O2 -shared -fPIC -o insn_count.so insn_count.c
 *     qemu-system-arm ... -plugin ./insn_count.so     (INSN_COUNT_OUT=file)
 */
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

typedef uint64_t qemu_plugin_id_t;
struct qemu_plugin_tb;
struct qemu_plugin_insn;
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };
typedef void (*tb_trans_cb)(qemu_plugin_id_t, struct qemu_plugin_tb *);
typedef void (*udata_cb)(qemu_plugin_id_t, void *);

extern void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t, tb_trans_cb);
extern size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *);
extern struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *, size_t);
extern uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *);
extern void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *, enum qemu_plugin_op,
                                                     void *, uint64_t);
extern void qemu_plugin_register_atexit_cb(qemu_plugin_id_t, udata_cb, void *);

__attribute__((visibility("default"))) int qemu_plugin_version = 1;

/* A translation block: QEMU may translate the same code again (after a
 * flush), so blocks are kept in a list and merged by the script. */
struct block {
    uint64_t count;
    size_t n;
    struct block *next;
    uint64_t addr[];
};

static struct block *blocks;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    size_t n = qemu_plugin_tb_n_insns(tb);
    struct block *b = calloc(1, sizeof *b + n * sizeof b->addr[0]);
    if (b == NULL) {
        return; /* uncounted, rather than a crash */
    }
    b->n = n;
    for (size_t i = 0; i < n; i++) {
        b->addr[i] = qemu_plugin_insn_vaddr(qemu_plugin_tb_get_insn(tb, i));
    }
    pthread_mutex_lock(&lock);
    b->next = blocks;
    blocks = b;
    pthread_mutex_unlock(&lock);
    qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &b->count, 1);
}

static void write_counts(qemu_plugin_id_t id, void *unused)
{
    const char *path = getenv("INSN_COUNT_OUT");
    FILE *f = fopen(path != NULL ? path : "insn-count.txt", "w");
    if (f == NULL) {
        perror("insn_count: cannot write the counts");
        return;
    }
    for (struct block *b = blocks; b != NULL; b = b->next) {
        if (b->count == 0) {
            continue;
        }
        fprintf(f, "%llu", (unsigned long long)b->count);
        for (size_t i = 0; i < b->n; i++) {
            fprintf(f, " %llx", (unsigned long long)b->addr[i]);
        }
        fputc('\n', f);
    }
    fclose(f);
}

__attribute__((visibility("default"))) int qemu_plugin_install(qemu_plugin_id_t id,
                                                               const void *info, int argc,
                                                               char **argv)
{
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    qemu_plugin_register_atexit_cb(id, write_counts, NULL);
    return 0;
}
