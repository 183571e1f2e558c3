// malloc_bench: malloc/free timing for 64-byte objects, comparable to the
// Go benchmarks in package bench (ns/op = one malloc + one free).
//
// Build (see run.sh, which does all three):
//   gcc -O2 -pthread malloc_bench.c -o mb_glibc
//   gcc -O2 -pthread -DUSE_JEMALLOC malloc_bench.c -o mb_jemalloc -ljemalloc
//   gcc -O2 -pthread -DUSE_MIMALLOC malloc_bench.c -o mb_mimalloc -lmimalloc
//
// Usage: malloc_bench [-n pairs] [-t threads] [-r reps] [-b bench[,bench...]]
//        malloc_bench -m rss [-s size] [-n objects]
//        malloc_bench -m churn [-s size] [-n objects] [-p oldest|random]
//   -n  objects per timed run (default 20000000; cross64/handoff use n/4);
//       with -m, the number of objects (default 1000000 for rss, 4000000
//       for churn)
//   -t  threads for pair64-parallel (default: online CPUs)
//   -r  timed repetitions; the median is printed (default 5)
//   -b  run only these benchmarks (comma-separated: pair64,
//       pair64-parallel, bulk64, cross64, handoff); with -b, n is used as
//       is for every benchmark. One benchmark runs in this process, a list
//       runs each in its own child process, in the order given.
//   -m  a memory mode instead of the timings (see below)
//   -s  object size in bytes for -m (default 64)
//   -p  which objects churn frees (default oldest)
//
// Benchmarks (each in its own child process, run reps times after a
// warm-up; the median is printed):
//   pair64           one thread: p = malloc(64); write p[0]; free(p)
//   pair64-parallel  the same on T threads at once; ns/op = wall / total
//                    pairs (like Go's b.RunParallel)
//   bulk64           64 mallocs then 64 frees; ns/op per object
//   cross64          malloc on one thread, free on another (SPSC ring,
//                    published in groups of 16, like BenchmarkCrossP64)
//   handoff          cross64's transport alone, no malloc/free
//
// Memory modes (one process, no timing; RSS is /proc/self/statm's
// resident pages; each object is written in full with memset, as a
// program writes its objects; the array holding the n pointers is
// allocated and written before the baseline is read, so its 8 bytes per
// object are in no number):
//   rss    malloc n objects of s bytes and keep them; prints the RSS growth
//          and growth / (n*s), the resident bytes per payload byte
//   churn  malloc n objects of s bytes, free 75 % of them (oldest: the
//          first 3n/4 allocated; random: those whose splitmix64(index)
//          has low two bits != 0, the same choice as the Go benchmark
//          BenchmarkChurn), then ask the allocator to return memory
//          (glibc: malloc_trim(0); jemalloc: thread.tcache.flush and
//          arena.<MALLCTL_ARENAS_ALL>.purge; mimalloc: mi_collect(true));
//          prints the RSS growth at the peak, after the frees and after the
//          return, and the last / live payload
//
// Output: one line per benchmark, e.g.
//   c/glibc pair64 ns/op=12.30 min=12.10 reps=5
//   c/glibc rss size=64 n=1000000 payload=64000000 rss-growth=80175104 rss/payload=1.2527
//   c/glibc churn pattern=oldest size=64 n=4000000 live=1000000 peak=... freed=... after=... rss/live=... return=malloc_trim(0)
// preceded by an "allocator:" line that proves which malloc is in use.
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(USE_JEMALLOC)
#include <jemalloc/jemalloc.h>
#define ALLOC_NAME "jemalloc"
#elif defined(USE_MIMALLOC)
#include <mimalloc.h>
#define ALLOC_NAME "mimalloc"
#else
#include <gnu/libc-version.h>
#define ALLOC_NAME "glibc"
#endif

#define OBJ 64
#define BULK 64
#define RING 256
#define PUBLISH 16

// sink keeps every pointer observable, so the compiler cannot pair up
// and delete a malloc/free (GCC does that for unused allocations). It is
// thread-local so parallel threads do not share its cache line.
static _Thread_local void *volatile sink;

// spin_wait busy-waits briefly, then yields (the machine may be shared),
// like spinWait in the Go harness.
static void spin_wait(int *spins) {
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
	if (++*spins > 64) {
		sched_yield();
		*spins = 0;
	}
}

static double now_ns(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static void touch(void *p, long i) {
	((volatile char *)p)[0] = (char)i;
	sink = p;
}

// ---- allocator identification and verification ----

static void verify_allocator(void) {
	char info[256];
	int ok = 0;
#if defined(USE_JEMALLOC)
	const char *ver = NULL;
	size_t sz = sizeof(ver);
	if (mallctl("version", &ver, &sz, NULL, 0) != 0)
		ver = "?";
	// thread.allocated counts bytes malloc'ed by this thread through
	// jemalloc: it only advances if malloc() really is jemalloc's.
	uint64_t before = 0, after = 0;
	sz = sizeof(before);
	mallctl("thread.allocated", &before, &sz, NULL, 0);
	void *p = malloc(OBJ);
	touch(p, 1);
	sz = sizeof(after);
	mallctl("thread.allocated", &after, &sz, NULL, 0);
	free(p);
	ok = after - before >= OBJ;
	snprintf(info, sizeof info, "jemalloc %s (mallctl thread.allocated +%llu after malloc(64))",
		 ver, (unsigned long long)(after - before));
#elif defined(USE_MIMALLOC)
	// A pointer from plain malloc() must lie in mimalloc's heap.
	void *p = malloc(OBJ);
	touch(p, 1);
	ok = mi_is_in_heap_region(p);
	free(p);
	snprintf(info, sizeof info, "mimalloc %d (mi_version), malloc() pointer in mimalloc heap: %s",
		 mi_version(), ok ? "yes" : "NO");
#else
	// glibc's arena statistics only move if malloc() is glibc's.
	struct mallinfo2 before = mallinfo2();
	void *p = malloc(4 * OBJ * 1024); // > tcache/fastbin, lands in the arena
	touch(p, 1);
	struct mallinfo2 after = mallinfo2();
	free(p);
	ok = after.uordblks > before.uordblks || after.hblkhd > before.hblkhd;
	snprintf(info, sizeof info, "glibc %s (mallinfo2 reflects malloc(): %s)",
		 gnu_get_libc_version(), ok ? "yes" : "NO");
#endif
	printf("c/%s allocator: %s\n", ALLOC_NAME, info);
	if (!ok) {
		fprintf(stderr, "malloc_bench: malloc() is not %s's\n", ALLOC_NAME);
		exit(2);
	}
}

// ---- benchmarks; each returns ns per object ----

static double bench_pair(long n) {
	double t0 = now_ns();
	for (long i = 0; i < n; i++) {
		void *p = malloc(OBJ);
		touch(p, i);
		free(p);
	}
	return (now_ns() - t0) / (double)n;
}

static double bench_bulk(long n) {
	void *objs[BULK];
	long batches = n / BULK;
	if (batches < 1)
		batches = 1;
	double t0 = now_ns();
	for (long b = 0; b < batches; b++) {
		for (int j = 0; j < BULK; j++) {
			objs[j] = malloc(OBJ);
			touch(objs[j], j);
		}
		for (int j = 0; j < BULK; j++)
			free(objs[j]);
	}
	return (now_ns() - t0) / (double)(batches * BULK);
}

struct par_arg {
	long n;
	pthread_barrier_t *start;
	double t0, t1; // this thread's start and end
};

static void *par_worker(void *a) {
	struct par_arg *pa = a;
	pthread_barrier_wait(pa->start);
	pa->t0 = now_ns();
	for (long i = 0; i < pa->n; i++) {
		void *p = malloc(OBJ);
		touch(p, i);
		free(p);
	}
	pa->t1 = now_ns();
	return NULL;
}

static double bench_parallel(long n, int threads) {
	pthread_t th[threads];
	struct par_arg args[threads];
	pthread_barrier_t start;
	long per = (n + threads - 1) / threads; // >= 1 pair per thread
	pthread_barrier_init(&start, NULL, threads + 1);
	for (int i = 0; i < threads; i++) {
		args[i] = (struct par_arg){.n = per, .start = &start};
		pthread_create(&th[i], NULL, par_worker, &args[i]);
	}
	pthread_barrier_wait(&start);
	// Wall time from the first thread starting to the last finishing
	// (timing in the main thread would race with the workers).
	double t0 = 0, t1 = 0;
	for (int i = 0; i < threads; i++) {
		pthread_join(th[i], NULL);
		if (i == 0 || args[i].t0 < t0)
			t0 = args[i].t0;
		if (i == 0 || args[i].t1 > t1)
			t1 = args[i].t1;
	}
	pthread_barrier_destroy(&start);
	return (t1 - t0) / (double)(per * threads);
}

struct ring {
	_Alignas(64) uint64_t n; // read-only while running
	int do_free;
	_Alignas(64) _Atomic uint64_t tail;
	_Alignas(64) _Atomic uint64_t head;
	_Alignas(64) void *buf[RING];
};

static void *cross_consumer(void *a) {
	struct ring *r = a;
	const uint64_t n = r->n;
	const int do_free = r->do_free;
	uint64_t h = 0;
	int spins = 0;
	while (h < n) {
		uint64_t t = atomic_load_explicit(&r->tail, memory_order_acquire);
		if (h == t) {
			spin_wait(&spins);
			continue;
		}
		for (; h < t; h++) {
			void *p = r->buf[h % RING];
			if (do_free)
				free(p);
			else
				sink = p;
		}
		atomic_store_explicit(&r->head, h, memory_order_release);
	}
	return NULL;
}

static double bench_cross(long n, int do_free) {
	static char prealloc[4 * RING][OBJ];
	struct ring *r = aligned_alloc(64, sizeof *r);
	memset(r, 0, sizeof *r);
	r->n = (uint64_t)n;
	r->do_free = do_free;
	pthread_t th;
	double t0 = now_ns();
	pthread_create(&th, NULL, cross_consumer, r);
	uint64_t head = 0;
	int spins = 0;
	for (uint64_t t = 0; t < (uint64_t)n; t++) {
		void *p = do_free ? malloc(OBJ) : prealloc[t % (4 * RING)];
		((volatile char *)p)[0] = (char)t;
		while (t - head >= RING) {
			atomic_store_explicit(&r->tail, t, memory_order_release);
			head = atomic_load_explicit(&r->head, memory_order_acquire);
			if (t - head >= RING)
				spin_wait(&spins);
		}
		r->buf[t % RING] = p;
		if ((t + 1) % PUBLISH == 0)
			atomic_store_explicit(&r->tail, t + 1, memory_order_release);
	}
	atomic_store_explicit(&r->tail, (uint64_t)n, memory_order_release);
	pthread_join(th, NULL);
	double t = now_ns() - t0;
	free(r);
	return t / (double)n;
}

// ---- memory modes ----

// rss_bytes returns the resident set size from /proc/self/statm.
static long long rss_bytes(void) {
	long long size = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	if (f == NULL) {
		perror("/proc/self/statm");
		exit(1);
	}
	if (fscanf(f, "%lld %lld", &size, &resident) != 2) {
		fprintf(stderr, "malloc_bench: cannot parse /proc/self/statm\n");
		exit(1);
	}
	fclose(f);
	return resident * sysconf(_SC_PAGESIZE);
}

// splitmix64 picks churn's random victims; BenchmarkChurn uses the same
// function, so the Go and C rows free the same indexes.
static uint64_t splitmix64(uint64_t x) {
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

// churn_frees reports whether churn frees object i of n.
static int churn_frees(const char *pattern, long i, long n) {
	if (strcmp(pattern, "random") == 0)
		return (splitmix64((uint64_t)i) & 3) != 0;
	return i < n / 4 * 3;
}

// new_ptr_array returns a written (resident) array of n pointers.
static void **new_ptr_array(long n) {
	void **p = malloc((size_t)n * sizeof *p);
	if (p == NULL) {
		perror("malloc");
		exit(1);
	}
	memset(p, 0, (size_t)n * sizeof *p);
	return p;
}

static void fill_objects(void **objs, long n, size_t size) {
	for (long i = 0; i < n; i++) {
		objs[i] = malloc(size);
		if (objs[i] == NULL) {
			perror("malloc");
			exit(1);
		}
		memset(objs[i], 0xa5, size);
	}
}

static void mode_rss(long n, size_t size) {
	void **objs = new_ptr_array(n);
	long long before = rss_bytes();
	fill_objects(objs, n, size);
	long long growth = rss_bytes() - before;
	double payload = (double)n * (double)size;
	printf("c/%s rss size=%zu n=%ld payload=%.0f rss-growth=%lld rss/payload=%.4f\n", ALLOC_NAME,
	       size, n, payload, growth, (double)growth / payload);
	fflush(stdout);
	sink = objs;
}

// return_memory asks the allocator to give free memory back to the OS and
// returns what it called.
static const char *return_memory(void) {
#if defined(USE_JEMALLOC)
	char name[64];
	mallctl("thread.tcache.flush", NULL, NULL, NULL, 0);
	snprintf(name, sizeof name, "arena.%u.purge", (unsigned)MALLCTL_ARENAS_ALL);
	if (mallctl(name, NULL, NULL, NULL, 0) != 0) {
		fprintf(stderr, "malloc_bench: mallctl %s failed\n", name);
		exit(1);
	}
	return "thread.tcache.flush+arena.<MALLCTL_ARENAS_ALL>.purge";
#elif defined(USE_MIMALLOC)
	mi_collect(true);
	return "mi_collect(true)";
#else
	malloc_trim(0);
	return "malloc_trim(0)";
#endif
}

static void mode_churn(long n, size_t size, const char *pattern) {
	void **objs = new_ptr_array(n);
	long long before = rss_bytes();
	fill_objects(objs, n, size);
	long long peak = rss_bytes() - before;
	long live = 0;
	for (long i = 0; i < n; i++) {
		if (churn_frees(pattern, i, n)) {
			free(objs[i]);
			objs[i] = NULL;
		} else {
			live++;
		}
	}
	long long freed = rss_bytes() - before;
	const char *how = return_memory();
	long long after = rss_bytes() - before;
	double payload = (double)live * (double)size;
	printf("c/%s churn pattern=%s size=%zu n=%ld live=%ld peak=%lld freed=%lld after=%lld rss/live=%.4f return=%s\n",
	       ALLOC_NAME, pattern, size, n, live, peak, freed, after, (double)after / payload, how);
	fflush(stdout);
	sink = objs;
}

// ---- driver ----

enum { PAIR, PARALLEL, BULK64, CROSS, HANDOFF };

static double run_one(int which, long n, int threads) {
	switch (which) {
	case PAIR:
		return bench_pair(n);
	case PARALLEL:
		return bench_parallel(n, threads);
	case BULK64:
		return bench_bulk(n);
	case CROSS:
		return bench_cross(n, 1);
	default:
		return bench_cross(n, 0);
	}
}

static const char *names[] = {"pair64", "pair64-parallel", "bulk64", "cross64", "handoff"};

static void report(const char *name, int which, long n, int threads, int reps) {
	double res[reps];
	run_one(which, n / 10 + 1, threads); // warm-up
	for (int i = 0; i < reps; i++)
		res[i] = run_one(which, n, threads);
	qsort(res, reps, sizeof res[0], cmp_double);
	printf("c/%s %s ns/op=%.2f min=%.2f max=%.2f reps=%d\n", ALLOC_NAME, name,
	       res[reps / 2], res[0], res[reps - 1], reps);
	fflush(stdout);
}

// lookup returns the index of benchmark name in names, or -1.
static int lookup(const char *name) {
	for (int w = PAIR; w <= HANDOFF; w++)
		if (strcmp(name, names[w]) == 0)
			return w;
	return -1;
}

static void bench_name(char *buf, size_t len, int w, int threads) {
	if (w == PARALLEL)
		snprintf(buf, len, "%s threads=%d", names[w], threads);
	else
		snprintf(buf, len, "%s", names[w]);
}

int main(int argc, char **argv) {
	long n = 0; // 0: the mode's default
	int threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
	int reps = 5;
	char *only = NULL;
	const char *mode = NULL, *pattern = "oldest";
	long size = OBJ;
	int opt;
	while ((opt = getopt(argc, argv, "n:t:r:b:m:s:p:")) != -1) {
		switch (opt) {
		case 'n':
			n = atol(optarg);
			if (n < 1) {
				fprintf(stderr, "malloc_bench: bad -n\n");
				return 1;
			}
			break;
		case 't':
			threads = atoi(optarg);
			break;
		case 'r':
			reps = atoi(optarg);
			break;
		case 'b':
			only = optarg;
			break;
		case 'm':
			mode = optarg;
			break;
		case 's':
			size = atol(optarg);
			break;
		case 'p':
			pattern = optarg;
			break;
		default:
			fprintf(stderr,
				"usage: %s [-n pairs] [-t threads] [-r reps] [-b bench[,bench...]]\n"
				"       %s -m rss|churn [-s size] [-n objects] [-p oldest|random]\n",
				argv[0], argv[0]);
			return 1;
		}
	}
	if (threads < 1 || reps < 1 || size < 1) {
		fprintf(stderr, "malloc_bench: bad arguments\n");
		return 1;
	}
	verify_allocator();
	if (mode != NULL) {
		if (strcmp(mode, "rss") == 0) {
			mode_rss(n ? n : 1000000, (size_t)size);
			return 0;
		}
		if (strcmp(mode, "churn") == 0) {
			if (strcmp(pattern, "oldest") != 0 && strcmp(pattern, "random") != 0) {
				fprintf(stderr, "malloc_bench: unknown churn pattern %s\n", pattern);
				return 1;
			}
			mode_churn(n ? n : 4000000, (size_t)size, pattern);
			return 0;
		}
		fprintf(stderr, "malloc_bench: unknown mode %s\n", mode);
		return 1;
	}
	if (n == 0)
		n = 20000000;
	// The benchmarks to run, in order, and their n.
	int which[16], count = 0;
	long wn[16];
	if (only != NULL) {
		for (char *tok = strtok(only, ","); tok != NULL; tok = strtok(NULL, ",")) {
			int w = lookup(tok);
			if (w < 0 || count == 16) {
				fprintf(stderr, "malloc_bench: unknown benchmark %s\n", tok);
				return 1;
			}
			which[count] = w;
			wn[count++] = n;
		}
	} else {
		for (int w = PAIR; w <= HANDOFF; w++) {
			which[count] = w;
			wn[count] = (w == CROSS || w == HANDOFF) ? n / 4 : n;
			if (wn[count] < 1)
				wn[count] = 1;
			count++;
		}
	}
	char name[64];
	if (count == 1) {
		bench_name(name, sizeof name, which[0], threads);
		report(name, which[0], wn[0], threads, reps);
		return 0;
	}
	// Run each benchmark in a fresh child process: allocator state left
	// behind by one benchmark (e.g. glibc bins after the threaded ones)
	// otherwise changes the next one's result.
	fflush(stdout);
	for (int i = 0; i < count; i++) {
		bench_name(name, sizeof name, which[i], threads);
		pid_t pid = fork();
		if (pid < 0) {
			perror("fork");
			return 1;
		}
		if (pid == 0) {
			report(name, which[i], wn[i], threads, reps);
			_exit(0);
		}
		int status;
		if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
			fprintf(stderr, "malloc_bench: %s failed\n", name);
			return 1;
		}
	}
	return 0;
}
