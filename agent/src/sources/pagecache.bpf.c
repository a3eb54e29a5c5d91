// SPDX-License-Identifier: Apache-2.0
// The `ebpf` page-cache method: counts, in the kernel, the pages that reads
// asked for, the pages added to the page cache and the pages dirtied. The
// agent turns them into a hit ratio: 1 - max(0, added - dirtied) / requested.
//
// Built by agent/build.rs with `clang -target bpf`; loaded by aya. Written
// without vmlinux.h or libbpf's headers: the tracepoint records below are the
// layouts in /sys/kernel/tracing/events/{filemap,writeback}/*/format, which
// have been stable across 6.x kernels.

typedef unsigned char __u8;
typedef unsigned int __u32;
typedef unsigned long long __u64;

#define SEC(name) __attribute__((section(name), used))
#define __uint(name, val) int (*name)[val]
#define __type(name, val) typeof(val) *name

#define BPF_MAP_TYPE_ARRAY 2
#define BPF_MAP_TYPE_PERCPU_ARRAY 6
#define BPF_MAP_TYPE_LRU_HASH 9
#define BPF_ANY 0

static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;
static long (*bpf_map_update_elem)(void *map, const void *key, const void *value,
                                   __u64 flags) = (void *)2;
static long (*bpf_map_delete_elem)(void *map, const void *key) = (void *)3;
static __u64 (*bpf_get_current_pid_tgid)(void) = (void *)14;

// Layouts of the tracepoints' records (after the 8-byte common header).
struct get_pages_record {
	__u64 common;
	unsigned long i_ino;
	__u32 s_dev;
	unsigned long index;
	unsigned long last_index;
};

struct add_to_page_cache_record {
	__u64 common;
	unsigned long pfn;
	unsigned long i_ino;
	unsigned long index;
	__u32 s_dev;
	__u8 order;
};

struct dirty_folio_record {
	__u64 common;
	char name[32];
	unsigned long ino;
	unsigned long index;
};

enum counter {
	REQUESTED_PAGES = 0,
	ADDED_PAGES = 1,
	DIRTIED_PAGES = 2,
	BUFFERS_DIRTIED = 3, // kprobe method only
	COUNTERS = 4,
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, COUNTERS);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

// Entry 0: the process (tgid) to count for, 0 for every process. The agent
// sets it to the broker's pid so that other readers on the host (backups,
// log shippers) do not blur the broker's own hit ratio.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} target SEC(".maps");

// A read walks its range in batches and the tracepoint reports, per batch,
// the batch's start to the end of the whole read: the ranges of one read
// overlap. Per thread, the last range seen, so that each read counts once.
struct read_range {
	unsigned long ino;
	unsigned long index;
	unsigned long last_index;
	__u32 dev;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct read_range);
} last_read SEC(".maps");

// Folios added lately, by (inode, index), with their order: the dirty
// tracepoint names a folio but not its size, and large folios are common.
struct folio_key {
	unsigned long ino;
	unsigned long index;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct folio_key);
	__type(value, __u8);
} added_order SEC(".maps");

static __attribute__((always_inline)) int counted(void)
{
	__u32 zero = 0;
	__u32 *tgid = bpf_map_lookup_elem(&target, &zero);
	return !tgid || *tgid == 0 || *tgid == (__u32)(bpf_get_current_pid_tgid() >> 32);
}

static __attribute__((always_inline)) void add(__u32 which, __u64 pages)
{
	__u64 *value = bpf_map_lookup_elem(&counters, &which);
	if (value)
		*value += pages;
}

SEC("tracepoint/filemap/mm_filemap_get_pages")
int requested(struct get_pages_record *record)
{
	if (!counted())
		return 0;
	__u64 thread = bpf_get_current_pid_tgid();
	struct read_range *last = bpf_map_lookup_elem(&last_read, &thread);
	if (last && last->ino == record->i_ino && last->dev == record->s_dev &&
	    last->last_index == record->last_index && last->index <= record->index) {
		last->index = record->index; // a later batch of the same read
		return 0;
	}
	struct read_range range = {
		.ino = record->i_ino,
		.index = record->index,
		.last_index = record->last_index,
		.dev = record->s_dev,
	};
	bpf_map_update_elem(&last_read, &thread, &range, BPF_ANY);
	if (record->last_index >= record->index)
		add(REQUESTED_PAGES, record->last_index - record->index + 1);
	return 0;
}

SEC("tracepoint/filemap/mm_filemap_add_to_page_cache")
int added(struct add_to_page_cache_record *record)
{
	if (!counted())
		return 0;
	__u8 order = record->order & 31;
	struct folio_key key = { .ino = record->i_ino, .index = record->index };
	bpf_map_update_elem(&added_order, &key, &order, BPF_ANY);
	add(ADDED_PAGES, 1ULL << order);
	return 0;
}

SEC("tracepoint/writeback/writeback_dirty_folio")
int dirtied(struct dirty_folio_record *record)
{
	if (!counted())
		return 0;
	struct folio_key key = { .ino = record->ino, .index = record->index };
	__u8 *order = bpf_map_lookup_elem(&added_order, &key);
	__u64 pages = 1;
	if (order) {
		pages = 1ULL << (*order & 31);
		bpf_map_delete_elem(&added_order, &key);
	}
	add(DIRTIED_PAGES, pages);
	return 0;
}

// No GPL-only helper is used.
// Kernels without the filemap tracepoints but with kprobes: cachestat's
// functions, one count per call (the agent attaches each to the first of its
// candidate functions the kernel has): page accesses count as requested,
// additions as added, accounted dirtyings as dirtied, and buffer dirtyings,
// which cachestat subtracts from the accesses, on their own.
SEC("kprobe/mark_page_accessed")
int kprobe_accessed(void *ctx)
{
	if (counted())
		add(REQUESTED_PAGES, 1);
	return 0;
}

SEC("kprobe/add_to_page_cache_lru")
int kprobe_added(void *ctx)
{
	if (counted())
		add(ADDED_PAGES, 1);
	return 0;
}

SEC("kprobe/account_page_dirtied")
int kprobe_dirtied(void *ctx)
{
	if (counted())
		add(DIRTIED_PAGES, 1);
	return 0;
}

SEC("kprobe/mark_buffer_dirty")
int kprobe_buffer_dirtied(void *ctx)
{
	if (counted())
		add(BUFFERS_DIRTIED, 1);
	return 0;
}

char LICENSE[] SEC("license") = "Apache-2.0";
