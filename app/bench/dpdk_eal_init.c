/*
 * vfiokit-bench-dpdk: Debian's DPDK 22.11 doing, once, what
 * vfiokit-bench-memory measures vfiokit's EAL doing, so the two can be put
 * side by side in one guest. vfiokit-bench-memory runs it once per round:
 *
 *   vfiokit-bench-dpdk -m 512 --iova-mode=va --file-prefix=bench --huge-unlink \
 *       -a 0000:00:03.0 --no-telemetry -- --device 0000:00:03.0 \
 *       [--seed N] [--heap-iters N] [--pool-bursts N] [--mbuf-bursts N] [--lookups N]
 *       [--reps N]
 *
 * 1. rte_eal_init, then rte_vfio_setup_device() on the device: DPDK binds its
 *    group to the default container, sets the type1 IOMMU and DMA-maps all
 *    EAL memory (lib/eal/linux/eal_vfio.c), then opens the device. Timed from
 *    before rte_eal_init to after the device fd is open.
 * 2. rte_malloc/rte_free pairs and rte_mempool get/put pairs, with the same
 *    sizes, order and counts as vfiokit's Heap and ObjectPool get.
 *    rte_pktmbuf_alloc/free one at a time and rte_pktmbuf_alloc_bulk/
 *    free_bulk in bursts, on the main lcore with a per-lcore cache, as
 *    vfiokit's MbufPool (app/bench/mbuf_bench.cpp).
 * 3. rte_mem_virt2iova, rte_mem_virt2memseg and rte_malloc_virt2iova, ns per
 *    lookup.
 * Each test of 2 and 3 runs --reps times; the best run counts. Each heap
 * and pool test first runs one untimed batch or burst (as vfiokit's side).
 * 4. With --attach-bench 1 (and without --huge-unlink, so that a secondary
 *    can map the hugepage files): instead of 2 and 3, fork+exec itself as a
 *    secondary (the same EAL arguments plus --proc-type=secondary, and
 *    --t0 <the fork's CLOCK_MONOTONIC time>), which prints the time from the
 *    fork, and from its main(), to rte_eal_init's return: memory attached
 *    and the default container's fd received from the primary. The primary
 *    then unlinks its hugepage files so their pages go back at exit.
 *
 * Prints one line "@@DPDK-BENCH key=value ..." on stdout (DPDK 22.11 logs to
 * stdout too; the parent picks the line out), then releases the device and
 * calls rte_eal_cleanup.
 *
 * ioctls are counted without strace or LD_PRELOAD: this program defines
 * ioctl() itself, exported from the executable, so DPDK's shared libraries
 * bind to it and it forwards to the kernel with syscall(2).
 *
 * Plugins: the guest has no DPDK plugin directory, so EAL loads none. What
 * this needs from DPDK's drivers (the PCI bus for -a, the ring mempool
 * handler) is linked in directly (app/bench/meson.build).
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/vfio.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_memory.h>
#include <rte_mempool.h>
#include <rte_version.h>
#include <rte_vfio.h>

/* ---- ioctl counting ------------------------------------------------------ */

static unsigned n_ioctls;
static unsigned n_map_ioctls;

int ioctl(int fd, unsigned long request, ...)
{
	va_list ap;
	void *arg;

	va_start(ap, request);
	arg = va_arg(ap, void *);
	va_end(ap);
	n_ioctls++;
	if (request == VFIO_IOMMU_MAP_DMA)
		n_map_ioctls++;
	return (int)syscall(SYS_ioctl, fd, request, arg);
}

/* ---- helpers ------------------------------------------------------------- */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The same generator as memory_bench.cpp, so both run the same workload. */
static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

#define BATCH 256       /* allocations live at once in the heap test */
#define BURST 32        /* objects per get/put burst in the pool test */
#define POOL_OBJS 4095  /* objects in the pool */
#define POOL_CACHE 256  /* per-lcore cache of the cached pools */
#define LARGE_LO 4096   /* the large heap test's sizes: 4 KiB .. 256 KiB */
#define LARGE_HI (256 * 1024)
#define POOL_OBJ_SIZE 2048
#define ADDRS 4096      /* random addresses cycled through by the lookups */
/* The same as app/bench/mbuf_bench.hpp. */
#define MBUF_POOL 4095
#define MBUF_CACHE 256
#define MBUF_BURST 32

static volatile uint64_t sink;

static double min_d(double a, double b)
{
	return a < b ? a : b;
}

static double max_d(double a, double b)
{
	return a > b ? a : b;
}

struct params {
	const char *device;
	uint64_t seed;
	unsigned heap_iters;
	unsigned pool_bursts;
	unsigned mbuf_bursts;
	unsigned lookups;
	unsigned reps;
	int attach_bench; /* --attach-bench 1: start a secondary, time its init */
	uint64_t t0;      /* --t0 NS (a secondary): when the primary forked it */
	const char *self; /* this program, for the secondary's exec */
	int argc;         /* the whole command line, for the secondary's */
	char **argv;
};

static int parse_params(int argc, char **argv, struct params *p)
{
	int i;

	p->device = "0000:00:03.0";
	p->seed = 42;
	p->heap_iters = 400;
	p->pool_bursts = 4000;
	p->mbuf_bursts = 20000;
	p->lookups = 1000000;
	p->reps = 3;
	p->attach_bench = 0;
	p->t0 = 0;
	for (i = 1; i < argc; i++) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (v == NULL) {
			fprintf(stderr, "vfiokit-bench-dpdk: %s needs a value\n", argv[i]);
			return -1;
		}
		if (strcmp(argv[i], "--device") == 0)
			p->device = v;
		else if (strcmp(argv[i], "--seed") == 0)
			p->seed = strtoull(v, NULL, 0);
		else if (strcmp(argv[i], "--heap-iters") == 0)
			p->heap_iters = (unsigned)strtoul(v, NULL, 0);
		else if (strcmp(argv[i], "--pool-bursts") == 0)
			p->pool_bursts = (unsigned)strtoul(v, NULL, 0);
		else if (strcmp(argv[i], "--mbuf-bursts") == 0)
			p->mbuf_bursts = (unsigned)strtoul(v, NULL, 0);
		else if (strcmp(argv[i], "--lookups") == 0)
			p->lookups = (unsigned)strtoul(v, NULL, 0);
		else if (strcmp(argv[i], "--reps") == 0)
			p->reps = (unsigned)strtoul(v, NULL, 0);
		else if (strcmp(argv[i], "--attach-bench") == 0)
			p->attach_bench = atoi(v);
		else if (strcmp(argv[i], "--t0") == 0)
			p->t0 = strtoull(v, NULL, 0);
		else {
			fprintf(stderr, "vfiokit-bench-dpdk: unknown option %s\n", argv[i]);
			return -1;
		}
		i++;
	}
	if (p->heap_iters == 0 || p->pool_bursts == 0 || p->mbuf_bursts == 0 || p->lookups == 0 ||
	    p->reps == 0) {
		fprintf(stderr, "vfiokit-bench-dpdk: counts must be positive\n");
		return -1;
	}
	return 0;
}

/* ---- heap and pool ------------------------------------------------------- */

/* BATCH allocations of lo..hi bytes, freed in a shuffled order, repeated:
 * 64..2048 (small) and LARGE_LO..LARGE_HI (large). */
static double malloc_pairs_per_s(const struct params *p, uint64_t lo, uint64_t hi)
{
	uint64_t s = p->seed, sizes[BATCH], t0;
	unsigned order[BATCH], i, j, it;
	void *ptr[BATCH];

	for (i = 0; i < BATCH; i++) {
		sizes[i] = lo + splitmix64(&s) % (hi - lo + 1);
		order[i] = i;
	}
	for (i = BATCH - 1; i > 0; i--) {
		unsigned k = (unsigned)(splitmix64(&s) % (i + 1)), t = order[i];

		order[i] = order[k];
		order[k] = t;
	}
	/* One untimed batch first (vfiokit's side does the same): the heap's
	 * free lists and the pages they touch are warm when timing starts. */
	for (j = 0; j < BATCH; j++)
		if ((ptr[j] = rte_malloc(NULL, sizes[j], 64)) == NULL)
			return -1;
	for (j = 0; j < BATCH; j++)
		rte_free(ptr[order[j]]);
	t0 = now_ns();
	for (it = 0; it < p->heap_iters; it++) {
		for (j = 0; j < BATCH; j++) {
			ptr[j] = rte_malloc(NULL, sizes[j], 64);
			if (ptr[j] == NULL)
				return -1;
		}
		for (j = 0; j < BATCH; j++)
			rte_free(ptr[order[j]]);
	}
	return (double)BATCH * p->heap_iters * 1e9 / (double)(now_ns() - t0);
}

/* Bursts of BURST single gets then BURST single puts. */
static double mempool_pairs_per_s(const struct params *p, unsigned cache)
{
	struct rte_mempool *mp;
	void *obj[BURST];
	uint64_t t0;
	unsigned b, j;
	double r;

	mp = rte_mempool_create(cache ? "bench_cache" : "bench_nocache", POOL_OBJS, POOL_OBJ_SIZE,
				cache, 0, NULL, NULL, NULL, NULL, SOCKET_ID_ANY, 0);
	if (mp == NULL) {
		fprintf(stderr, "vfiokit-bench-dpdk: rte_mempool_create: %s\n",
			rte_strerror(rte_errno));
		return -1;
	}
	/* One untimed burst first, as on vfiokit's side: the cache is filled. */
	for (j = 0; j < BURST; j++)
		if (rte_mempool_get(mp, &obj[j]) != 0)
			return -1;
	for (j = 0; j < BURST; j++)
		rte_mempool_put(mp, obj[j]);
	t0 = now_ns();
	for (b = 0; b < p->pool_bursts; b++) {
		for (j = 0; j < BURST; j++)
			if (rte_mempool_get(mp, &obj[j]) != 0)
				return -1;
		for (j = 0; j < BURST; j++)
			rte_mempool_put(mp, obj[j]);
	}
	r = (double)BURST * p->pool_bursts * 1e9 / (double)(now_ns() - t0);
	rte_mempool_free(mp);
	return r;
}

/* Bursts of one rte_mempool_get_bulk of BURST then one rte_mempool_put_bulk,
 * with a per-lcore cache of `cache`. */
static double mempool_bulk_pairs_per_s(const struct params *p, unsigned cache)
{
	struct rte_mempool *mp;
	void *obj[BURST];
	uint64_t t0;
	unsigned b;
	double r;

	mp = rte_mempool_create("bench_bulk", POOL_OBJS, POOL_OBJ_SIZE, cache, 0, NULL, NULL, NULL,
				NULL, SOCKET_ID_ANY, 0);
	if (mp == NULL) {
		fprintf(stderr, "vfiokit-bench-dpdk: rte_mempool_create: %s\n",
			rte_strerror(rte_errno));
		return -1;
	}
	if (rte_mempool_get_bulk(mp, obj, BURST) != 0) /* untimed, as above */
		return -1;
	rte_mempool_put_bulk(mp, obj, BURST);
	t0 = now_ns();
	for (b = 0; b < p->pool_bursts; b++) {
		if (rte_mempool_get_bulk(mp, obj, BURST) != 0)
			return -1;
		rte_mempool_put_bulk(mp, obj, BURST);
	}
	r = (double)BURST * p->pool_bursts * 1e9 / (double)(now_ns() - t0);
	rte_mempool_free(mp);
	return r;
}

/* ---- mbufs --------------------------------------------------------------- */

struct mbuf_rates {
	double single, bulk; /* alloc+free pairs per second */
};

/* Best of --reps: bursts of MBUF_BURST rte_pktmbuf_alloc then as many
 * rte_pktmbuf_free; then rte_pktmbuf_alloc_bulk + rte_pktmbuf_free_bulk.
 * On the main lcore, so the pool's per-lcore cache is used. */
static int mbuf_tests(const struct params *p, struct mbuf_rates *out)
{
	struct rte_mempool *mp;
	struct rte_mbuf *m[MBUF_BURST];
	uint64_t t0;
	unsigned b, j, r;

	mp = rte_pktmbuf_pool_create("bench_mbuf", MBUF_POOL, MBUF_CACHE, 0,
				     RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
	if (mp == NULL) {
		fprintf(stderr, "vfiokit-bench-dpdk: rte_pktmbuf_pool_create: %s\n",
			rte_strerror(rte_errno));
		return -1;
	}
	out->single = out->bulk = 0;
	for (r = 0; r < p->reps; r++) {
		t0 = now_ns();
		for (b = 0; b < p->mbuf_bursts; b++) {
			for (j = 0; j < MBUF_BURST; j++)
				if ((m[j] = rte_pktmbuf_alloc(mp)) == NULL)
					return -1;
			for (j = 0; j < MBUF_BURST; j++)
				rte_pktmbuf_free(m[j]);
		}
		out->single = max_d(out->single, (double)MBUF_BURST * p->mbuf_bursts * 1e9 /
						     (double)(now_ns() - t0));
		t0 = now_ns();
		for (b = 0; b < p->mbuf_bursts; b++) {
			if (rte_pktmbuf_alloc_bulk(mp, m, MBUF_BURST) != 0)
				return -1;
			rte_pktmbuf_free_bulk(m, MBUF_BURST);
		}
		out->bulk = max_d(out->bulk, (double)MBUF_BURST * p->mbuf_bursts * 1e9 /
						 (double)(now_ns() - t0));
	}
	rte_mempool_free(mp);
	return 0;
}

/* ---- translation --------------------------------------------------------- */

struct seg_list {
	const struct rte_memseg *seg[8192];
	unsigned n;
};

static int collect_seg(const struct rte_memseg_list *msl, const struct rte_memseg *ms, void *arg)
{
	struct seg_list *l = arg;

	(void)msl;
	if (l->n < sizeof(l->seg) / sizeof(l->seg[0]))
		l->seg[l->n++] = ms;
	return 0;
}

struct lookups {
	double virt2iova_ns, virt2memseg_ns, malloc_virt2iova_ns;
};

static int translation(const struct params *p, struct lookups *out)
{
	static struct seg_list segs;
	static const void *addr[ADDRS];
	static void *objs[ADDRS];
	uint64_t s = p->seed + 1, t0, acc = 0;
	unsigned i, k, r;

	rte_memseg_walk(collect_seg, &segs);
	if (segs.n == 0)
		return -1;
	/* Random addresses anywhere in EAL memory: a random page, a random byte. */
	for (i = 0; i < ADDRS; i++) {
		const struct rte_memseg *ms = segs.seg[splitmix64(&s) % segs.n];

		addr[i] = (const char *)ms->addr + splitmix64(&s) % ms->len;
	}
	/* rte_malloc_virt2iova wants the start of an rte_malloc allocation. */
	for (i = 0; i < ADDRS; i++) {
		objs[i] = rte_malloc(NULL, 64 + splitmix64(&s) % (2048 - 64 + 1), 64);
		if (objs[i] == NULL)
			return -1;
	}
	out->virt2iova_ns = out->virt2memseg_ns = out->malloc_virt2iova_ns = 1e300;
	for (r = 0; r < p->reps; r++) {
		t0 = now_ns();
		for (k = 0; k < p->lookups; k++)
			acc += rte_mem_virt2iova(addr[k % ADDRS]);
		out->virt2iova_ns = min_d(out->virt2iova_ns, (double)(now_ns() - t0) / p->lookups);

		t0 = now_ns();
		for (k = 0; k < p->lookups; k++) {
			const void *a = addr[k % ADDRS];
			const struct rte_memseg *ms = rte_mem_virt2memseg(a, NULL);

			acc += ms->iova + (uint64_t)((const char *)a - (const char *)ms->addr);
		}
		out->virt2memseg_ns = min_d(out->virt2memseg_ns, (double)(now_ns() - t0) / p->lookups);

		t0 = now_ns();
		for (k = 0; k < p->lookups; k++)
			acc += rte_malloc_virt2iova(objs[k % ADDRS]);
		out->malloc_virt2iova_ns = min_d(out->malloc_virt2iova_ns,
						 (double)(now_ns() - t0) / p->lookups);
	}
	for (i = 0; i < ADDRS; i++)
		rte_free(objs[i]);
	sink = acc;
	return 0;
}

/* ---- secondary attach ---------------------------------------------------- */

/* Unlinks the hugepage file behind a memseg: this primary runs without
 * --huge-unlink (a secondary maps those files), so the pages would outlive
 * it; unlinked, they go back to the kernel when it exits. */
static int unlink_seg(const struct rte_memseg_list *msl, const struct rte_memseg *ms, void *arg)
{
	char link[64], path[4096];
	ssize_t n;
	int fd = rte_memseg_get_fd_thread_unsafe(ms);

	(void)msl;
	(void)arg;
	if (fd < 0)
		return 0;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, path, sizeof(path) - 1);
	if (n > 0) {
		path[n] = '\0';
		unlink(path); /* one file per page or per list: ENOENT after the first */
	}
	return 0;
}

/* The primary's side of --attach-bench: after rte_eal_init and the device
 * setup, fork+exec this program as a DPDK secondary (the primary's EAL
 * arguments plus --proc-type=secondary) with the time of the fork; the
 * secondary prints its own @@DPDK-BENCH line (same stdout). Waits for it. */
static int attach_bench(const struct params *p, int eal_argc, char **eal_argv)
{
	char t0s[32];
	char *args[64];
	int i, n = 0, st = 0;
	pid_t pid;
	uint64_t t0;

	if (eal_argc + 8 > (int)(sizeof(args) / sizeof(args[0])))
		return -1;
	for (i = 0; i < eal_argc; i++)
		args[n++] = eal_argv[i];
	args[n++] = (char *)"--proc-type=secondary";
	args[n++] = (char *)"--";
	args[n++] = (char *)"--device";
	args[n++] = (char *)p->device;
	args[n++] = (char *)"--t0";
	args[n++] = t0s;
	args[n] = NULL;
	fflush(stdout);
	t0 = now_ns();
	snprintf(t0s, sizeof(t0s), "%" PRIu64, t0);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		execv("/proc/self/exe", args);
		_exit(127);
	}
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "vfiokit-bench-dpdk: the secondary failed (status %d)\n", st);
		return -1;
	}
	rte_memseg_walk(unlink_seg, NULL);
	return 0;
}

/* ---- main ---------------------------------------------------------------- */

int main(int argc, char **argv)
{
	struct vfio_device_info info;
	struct params p;
	struct lookups lk;
	struct mbuf_rates mb;
	uint64_t t0, t_eal, t_dev;
	unsigned maps, ioctls, r;
	double heap, heap_large, pool, pool_nocache, pool_bulk;
	int n, dev_fd = -1, rc, eal_argc;
	char *eal_argv[48];

	t0 = now_ns();
	/* The EAL arguments as given (rte_eal_init reorders argv), for a secondary. */
	for (eal_argc = 0; eal_argc < argc && eal_argc < 48 && strcmp(argv[eal_argc], "--") != 0;
	     eal_argc++)
		eal_argv[eal_argc] = argv[eal_argc];
	n = rte_eal_init(argc, argv);
	if (n < 0) {
		fprintf(stderr, "vfiokit-bench-dpdk: rte_eal_init: %s\n", rte_strerror(rte_errno));
		return 1;
	}
	t_eal = now_ns();
	argc -= n;
	argv += n;
	if (parse_params(argc, argv, &p) != 0)
		return 2;
	if (rte_eal_process_type() == RTE_PROC_SECONDARY) {
		/* Attached: the primary's memory is mapped and its VFIO container
		 * fd received. Time from the primary's fork, and from main(). */
		printf("@@DPDK-BENCH secondary_attach_ns=%" PRIu64 " secondary_init_ns=%" PRIu64 "\n",
		       t_eal - p.t0, t_eal - t0);
		fflush(stdout);
		rte_eal_cleanup();
		return 0;
	}

	memset(&info, 0, sizeof(info));
	info.argsz = sizeof(info);
	rc = rte_vfio_setup_device("/sys/bus/pci/devices", p.device, &dev_fd, &info);
	t_dev = now_ns();
	maps = n_map_ioctls;
	ioctls = n_ioctls;
	if (rc != 0) {
		fprintf(stderr, "vfiokit-bench-dpdk: rte_vfio_setup_device(%s) returned %d%s\n",
			p.device, rc, rc > 0 ? ": not bound to vfio-pci" : "");
		return 1;
	}
	if (p.attach_bench) {
		rc = attach_bench(&p, eal_argc, eal_argv);
		printf("@@DPDK-BENCH version=%d.%02d.%d primary_init_ns=%" PRIu64 "\n", RTE_VER_YEAR,
		       RTE_VER_MONTH, RTE_VER_MINOR, t_dev - t0);
		fflush(stdout);
		if (rte_vfio_release_device("/sys/bus/pci/devices", p.device, dev_fd) != 0)
			fprintf(stderr, "vfiokit-bench-dpdk: rte_vfio_release_device failed\n");
		rte_eal_cleanup();
		return rc == 0 ? 0 : 1;
	}

	/* Best of --reps: noise on a shared machine only ever slows a run down. */
	heap = heap_large = pool = pool_nocache = pool_bulk = 0;
	for (r = 0; r < p.reps; r++) {
		double h = malloc_pairs_per_s(&p, 64, 2048),
		       hl = malloc_pairs_per_s(&p, LARGE_LO, LARGE_HI),
		       c = mempool_pairs_per_s(&p, POOL_CACHE), nc = mempool_pairs_per_s(&p, 0),
		       cb = mempool_bulk_pairs_per_s(&p, POOL_CACHE);

		if (h < 0 || hl < 0 || c < 0 || nc < 0 || cb < 0) {
			heap = -1;
			break;
		}
		heap = max_d(heap, h);
		heap_large = max_d(heap_large, hl);
		pool = max_d(pool, c);
		pool_nocache = max_d(pool_nocache, nc);
		pool_bulk = max_d(pool_bulk, cb);
	}
	if (heap < 0 || mbuf_tests(&p, &mb) != 0 || translation(&p, &lk) != 0) {
		fprintf(stderr, "vfiokit-bench-dpdk: a heap, pool, mbuf or lookup test failed\n");
		return 1;
	}

	printf("@@DPDK-BENCH version=%d.%02d.%d iova_mode=%s init_ns=%" PRIu64 " eal_init_ns=%" PRIu64
	       " setup_ns=%" PRIu64 " map_ioctls=%u ioctls=%u malloc_pairs_per_s=%.0f"
	       " malloc_large_pairs_per_s=%.0f mempool_pairs_per_s=%.0f"
	       " mempool_nocache_pairs_per_s=%.0f mempool_bulk_pairs_per_s=%.0f virt2iova_ns=%.2f"
	       " virt2memseg_ns=%.2f malloc_virt2iova_ns=%.2f mbuf_pairs_per_s=%.0f"
	       " mbuf_bulk_pairs_per_s=%.0f lcores=%u\n",
	       RTE_VER_YEAR, RTE_VER_MONTH, RTE_VER_MINOR,
	       rte_eal_iova_mode() == RTE_IOVA_VA ? "va" : "pa", t_dev - t0,
	       t_eal - t0, t_dev - t_eal, maps, ioctls, heap, heap_large, pool, pool_nocache, pool_bulk,
	       lk.virt2iova_ns, lk.virt2memseg_ns, lk.malloc_virt2iova_ns, mb.single, mb.bulk,
	       rte_lcore_count());
	fflush(stdout);

	if (rte_vfio_release_device("/sys/bus/pci/devices", p.device, dev_fd) != 0)
		fprintf(stderr, "vfiokit-bench-dpdk: rte_vfio_release_device failed\n");
	rte_eal_cleanup();
	return 0;
}
